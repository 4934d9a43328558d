/* cmd/demo.c - `arbor demo`: the seed's services (examples/seed/) as one tree
 * that fails, restarts and recovers by itself (the tree is drawn in demo.h).
 *
 * What there is to see, at scale 1: a heartbeat a second and db-sync's flush
 * every two seconds; a peer discovered every 1.5 s, the oldest dropped once four
 * are connected (when that is the client, it fails and reconnects), and every
 * 7th peer greeting badly, which fails the peer manager and, rest_for_one,
 * restarts the client with it; the retry service giving up about every 15 s
 * with its error chain; the breaker opening and closing every few seconds; the
 * crashing program exiting 3 every 1-4 s, with its log.
 *
 * Why it never gives up by itself. A supervisor gives up when more than
 * `intensity` restarts fall within `period_ms`. Restarts of one child are spaced
 * by its backoff: 100, 200, 400, 800, 1600 ms, then 2000 ms each, less up to 25 %
 * jitter, and the streak resets only after a run as long as the period. So even a
 * child failing the instant it starts is restarted at most 10 times within any
 * 10 s (75 + 150 + 300 + 600 + 1200 + 1500 x 5 = 9825 ms). With every child
 * failing like that at once, net (2 children) sees at most 20 restarts and demo
 * (6 children; net itself never gives up) at most 60: intensities of 25 and 70
 * cannot be exceeded. Everything is scaled alike, so this holds at any scale.
 */
#include <stdlib.h>

#include "demo.h"
#include "../examples/seed/all.c"

/* Everything the services keep between restarts, freed with the tree. */
typedef struct {
  seed_db_t db;
  seed_heartbeat_t heartbeat;
  seed_peers_t peers;
  seed_peer_client_t client;
  seed_flaky_t retry_upstream, breaker_upstream;
  seed_retry_t retry;
  seed_breaker_t breaker;
  seed_crasher_t crasher;
} demo_t;

static uint64_t scaled(double scale, uint64_t ms) {
  double v = (double)ms * scale;
  return v < 1 ? 1 : (uint64_t)v;
}

/* The "demo" supervisor's finish callback: every service has FINISHED (and
 * their tasks' finish callbacks ran before this one), so their state can go. */
static void demo_finished(arbor_node_t *sup, void *arg) {
  demo_t *d = arg;
  (void)sup;
  seed_db_close(&d->db);
  free(d);
}

static void demo_settings(demo_t *d, double s, uint32_t seed) {
  d->db.flush_ms = scaled(s, 2000);
  d->db.flush_cost_ms = scaled(s, 5);
  d->db.flush_deadline_ms = scaled(s, 1000);
  d->heartbeat = (seed_heartbeat_t){.interval_ms = scaled(s, 1000), .db = &d->db};
  d->peers = (seed_peers_t){.discover_ms = scaled(s, 1500), .ping_ms = scaled(s, 500),
                            .max_peers = 4, .bad_peer_every = 7};
  d->client = (seed_peer_client_t){.manager = &d->peers, .ping_ms = scaled(s, 500)};
  d->retry_upstream = (seed_flaky_t){.latency_ms = scaled(s, 20), .fail_percent = 60,
                                     .seed = seed};
  d->breaker_upstream = (seed_flaky_t){.latency_ms = scaled(s, 20), .fail_percent = 50,
                                       .seed = seed * 2654435761u | 1};
  d->retry = (seed_retry_t){.upstream = &d->retry_upstream, .job_ms = scaled(s, 1000),
                            .backoff_ms = scaled(s, 100), .max_tries = 5};
  d->breaker = (seed_breaker_t){.upstream = &d->breaker_upstream, .call_ms = scaled(s, 300),
                                .threshold = 3, .cooldown_ms = scaled(s, 2000)};
  d->crasher = (seed_crasher_t){.ready_ms = scaled(s, 200), .up_ms = scaled(s, 1000)};
}

/* The supervisors' common policy (the numbers the comment at the top relies on). */
static arbor_sup_opts_t policy(double s, const char *name, arbor_strategy_t strategy,
                               int intensity) {
  return (arbor_sup_opts_t){.name = name, .strategy = strategy, .intensity = intensity,
                            .period_ms = scaled(s, 10000), .backoff_ms = scaled(s, 100),
                            .backoff_max_ms = scaled(s, 2000)};
}

/* Adds the children in start order; stops go the other way, so db-sync, first
 * up, is last down and flushes what the heartbeat wrote. */
static int demo_children(demo_t *d, arbor_node_t *demo, double s, int no_process) {
  arbor_sup_opts_t net_opts = policy(s, "net", ARBOR_REST_FOR_ONE, 25);
  arbor_node_t *net;
  int rc;
  if ((rc = seed_db_add(demo, &d->db, NULL)) < 0 ||
      (rc = seed_heartbeat_add(demo, &d->heartbeat, NULL)) < 0 ||
      (rc = arbor_supervisor_new(demo, &net_opts, &net)) < 0 ||
      (rc = seed_peers_add(net, &d->peers, NULL)) < 0 ||
      (rc = seed_peer_client_add(net, &d->client, NULL)) < 0 ||
      (rc = seed_retry_add(demo, &d->retry, NULL)) < 0 ||
      (rc = seed_breaker_add(demo, &d->breaker, NULL)) < 0)
    return rc;
  return no_process ? 0 : seed_crasher_add(demo, &d->crasher, NULL);
}

int arbor_demo_build(arbor_runtime_t *rt, arbor_node_t *parent, const arbor_demo_opts_t *opts) {
  arbor_demo_opts_t o = opts != NULL ? *opts : (arbor_demo_opts_t){.scale = 0};
  arbor_sup_opts_t demo_opts;
  arbor_node_t *demo;
  demo_t *d;
  int rc;
  if (rt == NULL || o.scale < 0 || (parent != NULL && arbor_node_runtime(parent) != rt))
    return ARBOR_EINVAL;
  if (o.scale == 0)
    o.scale = 1.0;
  if (o.seed == 0)
    o.seed = (uint32_t)uv_hrtime() | 1;
  if ((d = calloc(1, sizeof *d)) == NULL)
    return ARBOR_ENOMEM;
  demo_settings(d, o.scale, o.seed);
  if ((rc = seed_db_open(&d->db, rt)) < 0) {
    free(d);
    return rc;
  }
  demo_opts = policy(o.scale, "demo", ARBOR_ONE_FOR_ONE, 70);
  demo_opts.finish = demo_finished;
  demo_opts.arg = d;
  if ((rc = arbor_supervisor_new(parent != NULL ? parent : arbor_root(rt), &demo_opts, &demo)) <
      0) {
    demo_finished(NULL, d);
    return rc;
  }
  /* From here d belongs to the supervisor: a failed build cancels it, and its
   * finish callback frees d (a CREATED supervisor finishes without starting). */
  if ((rc = demo_children(d, demo, o.scale, o.no_process)) < 0)
    arbor_node_cancel(demo);
  return rc;
}
