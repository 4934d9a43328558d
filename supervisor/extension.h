/* supervisor/extension.h - what arbor's other modules (http/, the admin server)
 * may use of the core besides the public API. Not installed.
 *
 * Those modules read the tree only through the observation API (arbor.h); from
 * the core they need two things more: to take part in the runtime's close (their
 * libuv handles must be closed before the runtime frees itself, so that
 * uv_loop_close succeeds), and to learn when events are recorded (an SSE stream
 * that waits for the next event must not poll).
 */
#ifndef ARBOR_SUPERVISOR_EXTENSION_H
#define ARBOR_SUPERVISOR_EXTENSION_H

#include "arbor.h"

/* A module that owns libuv handles on the runtime's loop. Once every node has
 * FINISHED, the runtime's close calls close(c) (after unlinking it); the module
 * then closes its handles. For each handle it must have called
 * arbor__runtime_hold once (when it opened it) and must call
 * arbor__runtime_release from its close callback: the runtime frees itself, and
 * calls the user's close callback, only after the last release. */
struct arbor__closer {
  void (*close)(struct arbor__closer *c);
  struct arbor__closer *next, *prev;
};
void arbor__runtime_add_closer(arbor_runtime_t *rt, struct arbor__closer *c);
void arbor__runtime_remove_closer(arbor_runtime_t *rt, struct arbor__closer *c);
void arbor__runtime_hold(arbor_runtime_t *rt);
void arbor__runtime_release(arbor_runtime_t *rt);
/* 1 once arbor_runtime_close was called (new nodes are refused). */
int arbor__runtime_closing(const arbor_runtime_t *rt);

/* The wall clock (Unix epoch, ns) of a monotonic time of this runtime's clock
 * (uv_hrtime), from the pair read together at arbor_runtime_new. */
int64_t arbor__wall_ns(const arbor_runtime_t *rt, uint64_t mono_ns);

/* Learning of new events without polling. A module embeds a subscription and
 * adds it once; each arbor__events_arm then calls fn(arg) once, at the next event
 * recorded, synchronously, inside whatever tree operation records it: fn must
 * only schedule work (start a zero timer, resume a connection), never touch the
 * tree. Any number of subscriptions (two admin servers, an OTLP exporter ...).
 * With no_events nothing is recorded, so nothing fires. */
struct arbor__events_sub {
  void (*fn)(void *arg);
  void *arg;
  int armed;
  struct arbor__events_sub *next, *prev;
};
void arbor__events_subscribe(arbor_runtime_t *rt, struct arbor__events_sub *sub);
void arbor__events_unsubscribe(arbor_runtime_t *rt, struct arbor__events_sub *sub);
void arbor__events_arm(arbor_runtime_t *rt, struct arbor__events_sub *sub);

/* The runtime's OTLP exporter (tracing/otlp_push.c), so that GET /metrics can
 * report it: one per runtime, NULL when there is none. */
void arbor__runtime_set_otlp(arbor_runtime_t *rt, arbor_otlp_t *otlp);
arbor_otlp_t *arbor__runtime_otlp(const arbor_runtime_t *rt);

#endif /* ARBOR_SUPERVISOR_EXTENSION_H */
