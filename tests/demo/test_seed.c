/* tests/demo/test_seed.c - the seed's services (examples/seed/) one by one on a
 * real runtime, then the whole demo tree (cmd/demo.c): it fails, restarts and
 * recovers by itself, and a graceful shutdown finishes everything.
 *
 * The services run on real time at small intervals; the loop is driven with
 * UV_RUN_ONCE until a condition holds, with an iteration cap as the hang guard,
 * never a clock: nothing here bounds how long anything takes. The services
 * come in through cmd/demo.c, which includes them (examples/seed/all.c). */
#include <errno.h>
#include <string.h>

#include "harness.h"

#include "../../cmd/demo.c"

#define HOUR (3600u * 1000u)

/* Runs the loop one pass at a time until cond holds (at most a million passes:
 * a hang guard, not a time limit). */
#define run_until(loop, cond)                                                          \
  do {                                                                                 \
    long k_;                                                                           \
    for (k_ = 0; k_ < 1000000 && !(cond); k_++)                                        \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    if (!(cond)) {                                                                     \
      print_error("condition never held: %s\n", #cond);                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

#define OPEN(loop, rt)                                                                 \
  uv_loop_t loop;                                                                      \
  arbor_runtime_t *rt;                                                                 \
  (void)state;                                                                         \
  arbor_test_open(&loop, &rt, NULL)

/* A supervisor that restarts at once and never gives up within a test. */
static arbor_node_t *sup_new(arbor_runtime_t *rt, arbor_strategy_t strategy) {
  arbor_node_t *sup = NULL;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.name = "sup", .strategy = strategy,
                                                       .intensity = 1000, .period_ms = 1000,
                                                       .backoff_ms = 1, .backoff_max_ms = 2,
                                                       .no_jitter = 1},
                                   &sup),
              0);
  return sup;
}

/* Cancels sup and runs the loop until it FINISHED CANCELLED: every service
 * stopped without failing. */
static void stop_sup(uv_loop_t *loop, arbor_node_t *sup) {
  arbor_node_ref(sup);
  assert_code(arbor_node_cancel(sup), 0);
  run_until(loop, arbor_node_is_finished(sup));
  assert_outcome(sup, CANCELLED);
  arbor_node_unref(sup);
}

static uint32_t restarts_of(const arbor_node_t *n) {
  arbor_node_info_t info;
  arbor_node_info(n, &info);
  return info.restarts;
}

static int attr_is(const arbor_node_t *n, const char *key, const char *want) {
  const char *v = arbor_node_attr_get(n, key);
  return v != NULL && strcmp(v, want) == 0;
}

static uint64_t attr_u64(const arbor_node_t *n, const char *key) {
  const char *v = arbor_node_attr_get(n, key);
  return v != NULL ? strtoull(v, NULL, 10) : 0;
}

/* The current (or last) incarnation of a service. */
static arbor_node_t *incarnation(arbor_runtime_t *rt, const arbor_node_t *svc) {
  arbor_service_info_t info;
  assert_code(arbor_service_info(svc, &info), 0);
  return arbor_node_find(rt, info.incarnation_id);
}

static arbor_node_t *child_named(const arbor_node_t *parent, const char *name) {
  arbor_node_t *c;
  for (c = arbor_node_first_child(parent); c != NULL; c = arbor_node_next_sibling(c))
    if (strcmp(arbor_node_name(c), name) == 0)
      return c;
  return NULL;
}

/* Unfinished children of node whose name starts with prefix. */
static int live_children_named(const arbor_node_t *node, const char *prefix) {
  arbor_node_t *c;
  int n = 0;
  for (c = arbor_node_first_child(node); c != NULL; c = arbor_node_next_sibling(c))
    if (!arbor_node_is_finished(c) && strncmp(arbor_node_name(c), prefix, strlen(prefix)) == 0)
      n++;
  return n;
}

/* ---------------------------------------------------------------- heartbeat */

/* It beats on its interval, counts, and shows the count as "beats". */
static void heartbeat_counts_beats_in_attribute(void **state) {
  OPEN(loop, rt);
  seed_heartbeat_t h = {.interval_ms = 2};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *svc = NULL;
  assert_code(seed_heartbeat_add(sup, &h, &svc), 0);
  run_until(&loop, h.beats >= 5);
  assert_uint_eq(attr_u64(svc, "beats"), h.beats);
  assert_uint_eq(restarts_of(svc), 0);
  stop_sup(&loop, sup);
  assert_false(arbor_service_did_error(svc));
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------- peer manager */

/* Three clients connect: the manager accepts each, runs one task per peer and
 * keeps them in its table; each client gets answers to its pings. */
static void peers_accepts_clients_one_task_per_peer(void **state) {
  OPEN(loop, rt);
  seed_peers_t p = {.discover_ms = HOUR, .max_peers = 8};
  seed_peer_client_t c[3];
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *mgr = NULL;
  int i;
  assert_code(seed_peers_add(sup, &p, &mgr), 0);
  for (i = 0; i < 3; i++) {
    c[i] = (seed_peer_client_t){.manager = &p, .ping_ms = 2};
    assert_code(seed_peer_client_add(sup, &c[i], NULL), 0);
  }
  run_until(&loop, c[0].pongs >= 2 && c[1].pongs >= 2 && c[2].pongs >= 2);
  assert_int_eq(p.peers, 3);
  assert_uint_eq(p.accepted, 3);
  assert_true(p.port > 0);
  assert_uint_eq(attr_u64(mgr, "port"), (uint64_t)p.port);
  assert_true(attr_is(mgr, "peers", "3"));
  assert_true(attr_is(mgr, "table", "1,2,3"));
  /* one task per peer, beside the two daemons */
  arbor_node_t *inc = incarnation(rt, mgr);
  assert_non_null(inc);
  assert_int_eq(live_children_named(inc, "peer-"), 3);
  assert_int_eq(live_children_named(inc, "accept"), 1);
  assert_int_eq(live_children_named(inc, "discovery"), 1);
  assert_uint_eq(restarts_of(mgr), 0);
  stop_sup(&loop, sup);
  assert_int_eq(p.peers, 0);     /* every peer left the table as its task finished */
  arbor_test_close(rt, &loop);
}

/* Discovery dials peers, drops the oldest when the table is full, and a bad
 * greeting fails the manager (rule 2): it is restarted with the error kept. */
static void peers_discovery_drops_oldest_and_bad_peer_restarts_manager(void **state) {
  OPEN(loop, rt);
  seed_peers_t p = {.discover_ms = 2, .ping_ms = 1, .max_peers = 2, .bad_peer_every = 4};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *mgr = NULL;
  arbor_service_failure_t f;
  assert_code(seed_peers_add(sup, &p, &mgr), 0);
  run_until(&loop, restarts_of(mgr) >= 1 && p.dropped >= 1);
  assert_true(p.bad >= 1);
  assert_code(arbor_service_failure(mgr, 0, &f), 0);
  assert_code(arbor_error_code(f.error), -EPROTO);
  assert_non_null(strstr(arbor_error_message(f.error), "bad greeting"));
  stop_sup(&loop, sup);
  assert_int_eq(p.peers, 0);
  arbor_test_close(rt, &loop);
}

/* A client whose manager goes away fails with ECONNRESET; under rest_for_one a
 * restart of the manager restarts the client after it. */
static void peers_client_follows_manager_restart_rest_for_one(void **state) {
  OPEN(loop, rt);
  seed_peers_t p = {.discover_ms = HOUR, .max_peers = 4};
  seed_peer_client_t c = {.manager = &p, .ping_ms = 1};
  arbor_node_t *sup = sup_new(rt, ARBOR_REST_FOR_ONE), *mgr = NULL, *cli = NULL;
  assert_code(seed_peers_add(sup, &p, &mgr), 0);
  assert_code(seed_peer_client_add(sup, &c, &cli), 0);
  run_until(&loop, c.pongs >= 2);
  int old_port = p.port;
  assert_code(arbor_service_restart(mgr), 0);
  run_until(&loop, restarts_of(cli) >= 1 && p.port != 0 && c.pongs >= 4 &&
                       arbor_service_is_running(cli));
  assert_uint_eq(restarts_of(mgr), 1);
  assert_true(p.port != 0);
  (void)old_port;                /* a new listener: the port may or may not be the same */
  stop_sup(&loop, sup);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------------ db-sync */

typedef struct {
  seed_db_t *db;
  int rows;
  int written;
} writer_t;

static int writer(arbor_ctx_t *cx, void *arg) {
  writer_t *w = arg;
  int rc;
  for (; w->written < w->rows; w->written++)
    if ((rc = seed_db_write(cx, w->db, (uint64_t)w->written + 1, (uint64_t)w->written + 1)) < 0)
      return rc;
  return 0;
}

/* Rows written and not yet flushed when the service is stopped are all applied
 * by the final flush (shielded, with its own deadline): nothing is lost, and the
 * stop is no failure. The flush period is an hour, so only a full batch and the
 * final flush can apply anything. */
static void dbsync_final_flush_applies_every_row_on_stop(void **state) {
  OPEN(loop, rt);
  seed_db_t db = {.flush_ms = HOUR, .flush_cost_ms = 2, .flush_deadline_ms = HOUR};
  writer_t w = {.db = &db, .rows = 100};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *svc = NULL, *wr = NULL;
  assert_code(seed_db_open(&db, rt), 0);
  assert_code(seed_db_add(sup, &db, &svc), 0);
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "writer", .fn = writer, .arg = &w},
                                &wr),
              0);
  arbor_node_ref(wr);
  run_until(&loop, arbor_node_is_finished(wr));
  assert_outcome(wr, OK);
  arbor_node_unref(wr);
  assert_int_eq(w.written, 100);
  assert_true(db.rows < 100);    /* some rows still wait: the flush on stop has work */
  stop_sup(&loop, sup);
  assert_uint_eq(db.rows, 100);
  assert_uint_eq(db.sum, 5050);
  assert_uint_eq(db.last_key, 100);
  assert_true(db.final_flushes >= 1);
  assert_false(arbor_service_did_error(svc));
  seed_db_close(&db);
  arbor_test_close(rt, &loop);
}

/* Rule 5 inside rule 6: a final flush that cannot finish is cut short by its
 * own deadline: the run fails with a timeout instead of hanging the stop. */
static void dbsync_final_flush_deadline_fails_with_timeout(void **state) {
  OPEN(loop, rt);
  seed_db_t db = {.flush_ms = HOUR, .flush_cost_ms = HOUR, .flush_deadline_ms = 20};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *svc = NULL, *inc;
  assert_code(seed_db_open(&db, rt), 0);
  assert_code(seed_db_add(sup, &db, &svc), 0);
  run_until(&loop, arbor_service_is_running(svc));
  assert_code(seed_db_try_write(&db, 1, 1), 0);
  run_until(&loop, db.batch_len == 1);
  inc = incarnation(rt, svc);
  arbor_node_ref(inc);
  arbor_node_ref(sup);
  assert_code(arbor_node_cancel(sup), 0);
  run_until(&loop, arbor_node_is_finished(sup));
  assert_outcome(inc, FAILED);
  assert_code(arbor_error_code(arbor_node_error(inc)), ARBOR_ETIMEDOUT);
  assert_uint_eq(db.rows, 0);
  arbor_node_unref(inc);
  arbor_node_unref(sup);
  seed_db_close(&db);
  arbor_test_close(rt, &loop);
}

/* -------------------------------------------------------------------- retry */

/* An upstream that always fails: after max_tries the service fails with "gave
 * up after 5 tries" caused by the last try's error, and is restarted. */
static void retry_gives_up_with_error_chain(void **state) {
  OPEN(loop, rt);
  seed_flaky_t up = {.pattern = "x"};
  seed_retry_t r = {.upstream = &up, .job_ms = 1, .backoff_ms = 1, .max_tries = 5};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *svc = NULL;
  arbor_service_failure_t f;
  assert_code(seed_retry_add(sup, &r, &svc), 0);
  run_until(&loop, restarts_of(svc) >= 1);
  assert_code(arbor_service_failure(svc, 0, &f), 0);
  assert_string_equal(arbor_error_message(f.error), "gave up after 5 tries");
  assert_code(arbor_error_code(f.error), -ECONNREFUSED);
  const arbor_error_t *cause = arbor_error_cause(f.error);
  assert_non_null(cause);
  assert_string_equal(arbor_error_message(cause), "upstream call 5 failed: connection refused");
  assert_code(arbor_error_code(cause), -ECONNREFUSED);
  assert_null(arbor_error_cause(cause));
  assert_true(r.gave_up >= 1);
  assert_uint_eq(r.succeeded, 0);
  stop_sup(&loop, sup);
  arbor_test_close(rt, &loop);
}

/* Failures fewer than max_tries in a row are retried away: jobs succeed. */
static void retry_succeeds_within_its_tries(void **state) {
  OPEN(loop, rt);
  seed_flaky_t up = {.pattern = "xxxx."};
  seed_retry_t r = {.upstream = &up, .job_ms = 1, .backoff_ms = 1, .max_tries = 5};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *svc = NULL;
  assert_code(seed_retry_add(sup, &r, &svc), 0);
  run_until(&loop, r.succeeded >= 3);
  assert_uint_eq(r.gave_up, 0);
  assert_uint_eq(restarts_of(svc), 0);
  assert_uint_eq(attr_u64(svc, "succeeded"), r.succeeded);
  stop_sup(&loop, sup);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------------ breaker */

/* closed -> open after 3 failures in a row; after the cool-down half-open, and
 * a failure there opens it again; the next half-open call succeeds and closes
 * it. Rejected calls never reach the upstream: it sees exactly 5. */
static void breaker_opens_half_opens_and_closes(void **state) {
  OPEN(loop, rt);
  seed_flaky_t up = {.pattern = "xxxx..............................."};
  seed_breaker_t b = {.upstream = &up, .call_ms = 1, .threshold = 3, .cooldown_ms = 5};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *svc = NULL;
  assert_code(seed_breaker_add(sup, &b, &svc), 0);
  run_until(&loop, b.closed >= 1);
  assert_string_equal(b.trail, "OHOHC");
  assert_uint_eq(up.calls, 5);
  assert_uint_eq(b.opened, 2);
  assert_uint_eq(b.half_opened, 2);
  assert_true(attr_is(svc, "circuit", "closed"));
  assert_uint_eq(restarts_of(svc), 0);   /* the breaker itself never fails */
  stop_sup(&loop, sup);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------------ crasher */

/* The program reports ready on fd 3 (the service reaches STARTED), then exits
 * with status 3: the supervisor restarts it and keeps each failure's chain,
 * whose text has the status and the program's last stderr line. */
static void crasher_restarts_with_exit_status_3_in_history(void **state) {
  OPEN(loop, rt);
  seed_crasher_t c = {.ready_ms = 1, .up_ms = 5};
  arbor_node_t *sup = sup_new(rt, ARBOR_ONE_FOR_ONE), *svc = NULL;
  arbor_service_failure_t f;
  char log[4096];
  uint64_t offset = 0;
  assert_code(seed_crasher_add(sup, &c, &svc), 0);
  run_until(&loop, restarts_of(svc) >= 2);
  assert_state(svc, STARTED);    /* readiness came through the notify fd */
  assert_code(arbor_service_failure(svc, 0, &f), 0);
  assert_code(arbor_error_code(f.error), ARBOR_EEXIT);
  assert_non_null(strstr(arbor_error_message(f.error), "exited with status 3"));
  assert_non_null(strstr(arbor_error_message(f.error), "fatal: simulated crash"));
  assert_true(f.restarted);
  int n = arbor_service_log_read(svc, &offset, log, sizeof log - 1, NULL);
  assert_true(n > 0);
  log[n] = '\0';
  assert_non_null(strstr(log, ": starting"));
  assert_non_null(strstr(log, ": ready"));
  stop_sup(&loop, sup);
  arbor_test_close(rt, &loop);
}

/* --------------------------------------------------------------- the demo */

typedef struct {
  const char *name;
  arbor_node_t *node;
} named_t;

/* The whole demo at 1/50 of its intervals: its services fail and are restarted
 * (the crasher, retry, the peer manager and with it the client), the breaker
 * opens, every top-level node stays alive through it; then a graceful shutdown
 * finishes everything CANCELLED, db-sync's final flush has applied every
 * heartbeat's row, and the loop closes clean. */
static void demo_fails_restarts_recovers_and_shuts_down(void **state) {
  OPEN(loop, rt);
  arbor_node_t *demo, *net;
  named_t top[] = {{"db-sync", NULL}, {"heartbeat", NULL}, {"net", NULL},
                   {"retry", NULL},   {"breaker", NULL},   {"crasher", NULL}};
  size_t i, n = sizeof top / sizeof top[0];
  assert_code(arbor_demo_build(rt, NULL, &(arbor_demo_opts_t){.scale = 0.02, .seed = 12345}),
              0);
  demo = child_named(arbor_root(rt), "demo");
  assert_non_null(demo);
  arbor_node_ref(demo);
  for (i = 0; i < n; i++) {
    top[i].node = child_named(demo, top[i].name);
    assert_non_null(top[i].node);
    arbor_node_ref(top[i].node);
  }
  net = top[2].node;
  arbor_node_t *mgr = child_named(net, "peer-manager"), *cli = child_named(net, "peer-client");
  assert_non_null(mgr);
  assert_non_null(cli);

  run_until(&loop, restarts_of(top[5].node) >= 2 && restarts_of(top[3].node) >= 1 &&
                       restarts_of(mgr) >= 1 && restarts_of(cli) >= 1 &&
                       arbor_node_attr_get(top[4].node, "circuit") != NULL &&
                       attr_u64(top[1].node, "beats") >= 5 && attr_u64(top[0].node, "rows") >= 1);
  /* everything at the top is still up: nothing escalated */
  assert_state(demo, STARTED);
  for (i = 0; i < n; i++)
    assert_false(arbor_node_is_finished(top[i].node));
  assert_uint_eq(restarts_of(net), 0);
  assert_false(arbor_node_is_finished(mgr));
  assert_false(arbor_node_is_finished(cli));

  assert_code(arbor_shutdown(rt, 0), 0);
  run_until(&loop, arbor_node_is_finished(demo));
  assert_outcome(demo, CANCELLED);
  for (i = 0; i < n; i++)
    assert_outcome(top[i].node, CANCELLED);
  /* the heartbeat stopped before db-sync, whose final flush took every row */
  assert_uint_eq(attr_u64(top[0].node, "rows"), attr_u64(top[1].node, "beats"));

  for (i = 0; i < n; i++)
    arbor_node_unref(top[i].node);
  arbor_node_unref(demo);
  arbor_test_close(rt, &loop);
}

/* Bad arguments are refused and build nothing. */
static void demo_bad_arguments_build_nothing(void **state) {
  OPEN(loop, rt);
  uv_loop_t loop2;
  arbor_runtime_t *rt2;
  arbor_test_open(&loop2, &rt2, NULL);
  assert_code(arbor_demo_build(NULL, NULL, NULL), ARBOR_EINVAL);
  assert_code(arbor_demo_build(rt, NULL, &(arbor_demo_opts_t){.scale = -1}), ARBOR_EINVAL);
  assert_code(arbor_demo_build(rt, arbor_root(rt2), NULL), ARBOR_EINVAL);
  assert_null(arbor_node_first_child(arbor_root(rt)));
  arbor_test_close(rt2, &loop2);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(heartbeat_counts_beats_in_attribute),
    cmocka_unit_test(peers_accepts_clients_one_task_per_peer),
    cmocka_unit_test(peers_discovery_drops_oldest_and_bad_peer_restarts_manager),
    cmocka_unit_test(peers_client_follows_manager_restart_rest_for_one),
    cmocka_unit_test(dbsync_final_flush_applies_every_row_on_stop),
    cmocka_unit_test(dbsync_final_flush_deadline_fails_with_timeout),
    cmocka_unit_test(retry_gives_up_with_error_chain),
    cmocka_unit_test(retry_succeeds_within_its_tries),
    cmocka_unit_test(breaker_opens_half_opens_and_closes),
    cmocka_unit_test(crasher_restarts_with_exit_status_3_in_history),
    cmocka_unit_test(demo_fails_restarts_recovers_and_shuts_down),
    cmocka_unit_test(demo_bad_arguments_build_nothing),
};

ARBOR_TEST_MAIN(tests)
