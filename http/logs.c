/* http/logs.c - GET /api/v1/nodes/{id}/log?offset=O&limit=L: the captured
 * stdout and stderr of a process service, from a byte offset, so a client can
 * tail it (read, then read again from next_offset).
 *
 * Offsets are arbor's: bytes ever captured, across incarnations
 * (arbor_service_log_read). When the ring overwrote bytes the client asked for,
 * the answer starts at the oldest kept and says how many were missed. The bytes
 * go out as a JSON string: invalid UTF-8 as U+FFFD, and a character cut by the
 * limit is left for the next read (next_offset stops before it), so a reader
 * that follows next_offset never sees a character split in two.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "resources.h"

/* The offset just past the last byte captured: read to the end from `from`
 * into a scratch buffer (the ring holds at most log_size bytes, so this is one
 * bounded pass of memcpy). */
static uint64_t log_end(const arbor_node_t *svc, uint64_t from) {
  char scratch[4096];
  while (arbor_service_log_read(svc, &from, scratch, sizeof scratch, NULL) > 0) {
  }
  return from;
}

enum MHD_Result http_node_log(struct http_req *r) {
  enum MHD_Result ret;
  arbor_node_t *node = http_node_param(r, &ret);
  if (node == NULL)
    return ret;
  uint64_t offset, limit;
  if (http_query_u64(r, "offset", 0, UINT64_MAX, &offset, &ret) != 0 ||
      http_query_u64(r, "limit", HTTP_LOG_DEFAULT, HTTP_LOG_MAX, &limit, &ret) != 0)
    return ret;

  uint64_t at = offset, missed = 0;
  int n = arbor_service_log_read(node, &at, NULL, 0, NULL);   /* only: is it one? */
  if (n == ARBOR_EKIND)
    return http_error(r, 400, "not_a_process",
                      "node %" PRIu64 " is a %s, not a process service", arbor_node_id(node),
                      arbor_kind_name(arbor_node_kind(node)));
  char *bytes = malloc(limit > 0 ? (size_t)limit : 1);
  /* JSON text: a quote, at most 6 bytes per input byte, a quote, NUL. */
  char *text = malloc((size_t)limit * 6 + 3);
  if (bytes == NULL || text == NULL) {
    free(bytes);
    free(text);
    return http_oom(r);
  }
  at = offset;
  n = arbor_service_log_read(node, &at, bytes, (size_t)limit, &missed);
  if (n < 0) {
    free(bytes);
    free(text);
    return http_error(r, 500, "internal", "reading the log of node %" PRIu64 ": %s",
                      arbor_node_id(node), arbor_strerror(n));
  }
  uint64_t start = at - (uint64_t)n;   /* past offset when bytes were missed */
  size_t len = (size_t)n;
  if (len == limit && len > 0) {
    /* More may follow: do not end inside a character. */
    size_t whole = jw_utf8_complete(bytes, len);
    if (whole > 0)
      len = whole;
  }
  uint64_t next = start + len;
  /* From a byte we just read when there was one; else from the start, since
   * `at` may lie past the end. */
  uint64_t size = log_end(node, n > 0 ? at : 0);
  if (start > size)
    start = next = size;         /* an offset past the end (say, from before a daemon
                                    restart): say where the end is, so the client
                                    can go on from there */

  text[0] = '"';
  size_t tl = 1 + http_json_escape(bytes, len, text + 1);
  text[tl++] = '"';
  text[tl] = '\0';
  free(bytes);

  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) {
    free(text);
    return http_oom(r);
  }
  http_jadd_u64(&cx, o, "offset", start);
  http_jadd_u64(&cx, o, "next_offset", next);
  http_jadd_u64(&cx, o, "missed", missed);
  http_jadd_u64(&cx, o, "size", size);
  http_jadd(&cx, o, "data", cJSON_CreateRaw(text));
  free(text);
  return http_jsend(r, &cx, 200, o);
}
