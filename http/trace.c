/* http/trace.c - GET /api/v1/trace?format=chrome|otlp&root=ID: the trace export
 * (tracing/trace.h), streamed.
 *
 * The snapshot is taken in the handler (one point in time); the text is then
 * formatted a piece at a time as MHD asks for it, through the stream machinery
 * (stream.c), which hands out at most 64 KiB per loop iteration: a 100,000-node
 * trace does not stall the loop while it is sent (bench/bench_trace.c).
 */
#include <stdlib.h>

#include "resources.h"
#include "trace.h"

static ssize_t trace_fill(void *state, char *buf, size_t max, int heartbeat) {
  (void)heartbeat;
  ssize_t n = trace_export_read(state, buf, max);
  /* 0: the document is complete; < 0: out of memory, a document cut short that
   * must not look whole (a 200 has gone out already). */
  return n > 0 ? n : n == 0 ? -1 : -2;
}

static void trace_done(void *state) {
  trace_export_free(state);
  free(state);
}

static const struct http_stream_ops trace_ops = {trace_fill, trace_done};

enum MHD_Result http_trace_get(struct http_req *r) {
  const char *fmt = http_query(r, "format");
  int format = fmt == NULL ? ARBOR_TRACE_CHROME : arbor_trace_format_parse(fmt);
  if (format < 0)
    return http_error(r, 400, "bad_request",
                      "query parameter format must be \"chrome\" or \"otlp\"");
  arbor_node_t *root = arbor_root(r->rt);
  const char *q = http_query(r, "root");
  if (q != NULL) {
    uint64_t id;
    if (http_parse_u64(q, 0, UINT64_MAX, &id) != 0 || id == 0)
      return http_error(r, 400, "bad_request", "query parameter root must be a node id");
    if ((root = arbor_node_find(r->rt, id)) == NULL)
      return http_error(r, 404, "not_found", "no node %llu (never existed, or evicted)",
                        (unsigned long long)id);
  }
  struct trace_export *x = malloc(sizeof *x);
  if (x == NULL)
    return http_oom(r);
  if (trace_export_init(x, root, (arbor_trace_format_t)format, NULL) < 0) {
    free(x);
    return http_oom(r);
  }
  return http_stream(r, "application/json", &trace_ops, x, 0);
}
