/* cmd/demo.h - `arbor demo`: the seed's services as one live tree.
 *
 *   supervisor demo (one_for_one)
 *   ├─ service db-sync        batches writes, flushes them on a period and on shutdown
 *   ├─ service heartbeat      beats, writes a row per beat to db-sync
 *   ├─ supervisor net (rest_for_one)
 *   │  ├─ service peer-manager   listens on a free loopback port, a task per peer
 *   │  └─ service peer-client    connects to it and pings
 *   ├─ service retry          retries a flaky call, gives up now and then (error chain)
 *   ├─ service breaker        a circuit breaker around a flaky call ("circuit" attribute)
 *   └─ service crasher        /bin/sh that exits 3 every few seconds (a process service)
 *
 * It fails, restarts and recovers by itself, forever, and its supervisors'
 * intensities are set so that it never gives up by itself (cmd/demo.c says why).
 * The services live in examples/seed/.
 */
#ifndef ARBOR_CMD_DEMO_H
#define ARBOR_CMD_DEMO_H

#include <stdint.h>

#include <arbor.h>

typedef struct {
  double scale;                  /* every interval and period times this; 0: 1.0
                                    (tests run it at 0.02 or so) */
  uint32_t seed;                 /* the flaky upstreams' random seed; 0: the clock's */
  int no_process;                /* 1: leave out the crashing program */
} arbor_demo_opts_t;

/* Builds the demo tree under parent (NULL: the root of rt; else the root, a
 * group, a supervisor or a running task of rt) and returns at once: the tree
 * starts from the loop. Its state is freed when the "demo" supervisor has
 * FINISHED (a shutdown, a close, a cancel). opts may be NULL (the defaults).
 * Errors: ARBOR_EINVAL (NULL rt, a parent of another runtime, a negative
 * scale), then as arbor_supervisor_new / arbor_service_add; nothing is left
 * running on error. */
int arbor_demo_build(arbor_runtime_t *rt, arbor_node_t *parent, const arbor_demo_opts_t *opts);

#endif /* ARBOR_CMD_DEMO_H */
