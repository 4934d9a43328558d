/* tracing/export.c - a snapshot written out piece by piece in either format,
 * and the public export API (arbor_trace_write ...).
 *
 * A trace of a big tree is tens of megabytes. The admin server must not build
 * it in one loop iteration (DESIGN.md, "Threading"), so trace_export_read
 * formats a batch of nodes (about PIECE bytes) each time it runs dry, and the
 * server hands the pieces out across iterations. Only the snapshot itself is
 * taken in one go, so the document is one point in time.
 */
#include <errno.h>
#include <string.h>

#include "trace.h"

#define PIECE (32 * 1024)        /* bytes formatted per refill, about */

/* Chrome's track metadata goes out in pieces too: one wide group gives a
 * track per node (100,000 tracks: 10 MB of metadata). */
enum { PHASE_BEGIN, PHASE_TRACKS, PHASE_NODES, PHASE_END, PHASE_DONE };

int trace_export_init(struct trace_export *x, arbor_node_t *root, arbor_trace_format_t format,
                      const char *service_name) {
  memset(x, 0, sizeof *x);
  if (root == NULL || (format != ARBOR_TRACE_CHROME && format != ARBOR_TRACE_OTLP))
    return ARBOR_EINVAL;
  int rc = trace_snapshot_take(&x->snap, root, service_name);
  if (rc < 0)
    return rc;
  if (format == ARBOR_TRACE_CHROME && chrome_assign_tracks(&x->snap) < 0) {
    trace_snapshot_free(&x->snap);
    return ARBOR_ENOMEM;
  }
  x->format = format;
  jw_init(&x->w, 0);
  return 0;
}

/* Formats the next piece into x->w (emptied first). */
static void refill(struct trace_export *x) {
  struct jw *w = &x->w;
  int chrome = x->format == ARBOR_TRACE_CHROME;
  jw_clear(w);
  x->off = 0;
  switch (x->phase) {
  case PHASE_BEGIN:
    if (chrome)
      chrome_begin(w, &x->snap);
    else
      otlp_begin(w, &x->snap.res);
    x->phase = chrome ? PHASE_TRACKS : PHASE_NODES;
    break;
  case PHASE_TRACKS:
    while (x->next < x->snap.ntracks && w->len < PIECE)
      chrome_track(w, &x->snap, x->next++);
    if (x->next == x->snap.ntracks) {
      x->next = 0;
      x->phase = PHASE_NODES;
    }
    break;
  case PHASE_NODES:
    while (x->next < x->snap.nnodes && w->len < PIECE) {
      if (chrome)
        chrome_node(w, &x->snap, x->next);
      else
        otlp_span(w, &x->snap.res, &x->snap.nodes[x->next], x->snap.now_ns);
      x->next++;
    }
    if (x->next == x->snap.nnodes)
      x->phase = PHASE_END;
    break;
  case PHASE_END:
    if (chrome)
      chrome_end(w);
    else
      otlp_end(w);
    jw_newline(w);               /* a text file ends in a newline */
    x->phase = PHASE_DONE;
    break;
  default:
    break;
  }
}

ssize_t trace_export_read(struct trace_export *x, char *buf, size_t max) {
  size_t got = 0;
  while (got < max) {
    if (x->off == x->w.len) {
      if (x->phase == PHASE_DONE)
        break;
      refill(x);
      if (x->w.err)
        return ARBOR_ENOMEM;
      continue;
    }
    size_t n = x->w.len - x->off;
    if (n > max - got)
      n = max - got;
    memcpy(buf + got, x->w.buf + x->off, n);
    x->off += n;
    got += n;
  }
  return (ssize_t)got;
}

void trace_export_free(struct trace_export *x) {
  trace_snapshot_free(&x->snap);
  jw_free(&x->w);
}

/* ------------------------------------------------------------ public API */

int arbor_trace_format_parse(const char *name) {
  if (name == NULL)
    return ARBOR_EINVAL;
  if (strcmp(name, "chrome") == 0)
    return ARBOR_TRACE_CHROME;
  if (strcmp(name, "otlp") == 0)
    return ARBOR_TRACE_OTLP;
  return ARBOR_EINVAL;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

arbor_trace_format_t arbor_trace_format_for_path(const char *path) {
  if (path != NULL && (ends_with(path, ".otlp.json") || ends_with(path, ".otlp")))
    return ARBOR_TRACE_OTLP;
  return ARBOR_TRACE_CHROME;
}

int arbor_trace_write(arbor_runtime_t *rt, arbor_trace_format_t format, FILE *out) {
  if (rt == NULL || out == NULL)
    return ARBOR_EINVAL;
  struct trace_export x;
  int rc = trace_export_init(&x, arbor_root(rt), format, NULL);
  if (rc < 0)
    return rc;
  char buf[64 * 1024];
  ssize_t n;
  while ((n = trace_export_read(&x, buf, sizeof buf)) > 0) {
    if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
      rc = errno != 0 ? -errno : -EIO;
      break;
    }
  }
  if (n < 0)
    rc = (int)n;
  if (rc == 0 && fflush(out) != 0)
    rc = errno != 0 ? -errno : -EIO;
  trace_export_free(&x);
  return rc;
}
