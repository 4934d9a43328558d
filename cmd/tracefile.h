/* cmd/tracefile.h - the daemon's trace files (--trace-out, SIGUSR1).
 *
 * At shutdown the trace is written in one go (the loop has nothing else to do).
 * On SIGUSR1 the daemon is busy supervising, so the snapshot is taken at once
 * (one point in time) and the text is written a piece per loop iteration from
 * an idle handle: a big tree never stalls the loop for the whole file. Either
 * way the file appears whole or not at all: it is written to PATH.tmp and
 * renamed over PATH at the end.
 */
#ifndef ARBOR_CMD_TRACEFILE_H
#define ARBOR_CMD_TRACEFILE_H

#include <uv.h>

#include "arbor.h"

struct trace_export;

struct tracefile {
  uv_idle_t idle;                /* initialised by tracefile_init; the owner closes it */
  arbor_runtime_t *rt;
  struct trace_export *x;        /* the dump being written, or NULL */
  int fd;
  char *path, *tmp;
  size_t bytes;
};

int tracefile_init(struct tracefile *tf, uv_loop_t *loop, arbor_runtime_t *rt);
/* Starts a background dump to path (a dump already running is abandoned).
 * Returns 0, or a negative code (the file cannot be created: -errno). */
int tracefile_start(struct tracefile *tf, const char *path, arbor_trace_format_t format);
/* Abandons a dump in progress (its .tmp file is removed). */
void tracefile_abort(struct tracefile *tf);
/* Writes the whole trace to path now. Returns 0 or a negative code; *bytes
 * (may be NULL) gets the file's size. */
int tracefile_write_now(arbor_runtime_t *rt, const char *path, arbor_trace_format_t format,
                        size_t *bytes);

#endif /* ARBOR_CMD_TRACEFILE_H */
