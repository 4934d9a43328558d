/* tests/supervisor/test_supervise.c - supervisors, services and the service
 * manager (supervisor/supervisor.c, supervisor/service.c): strategies, restart
 * types, intensity, backoff, order, rule 7 (daemons), rule 8 (stuck, shutdown).
 *
 * Service bodies follow a plan per service (struct body) and write what they do
 * into one log ("start A", "ready A", "stop A"), so tests check orders as text. */
#include <string.h>

#include "harness.h"

#define HOUR (3600u * 1000u)

#define OPEN(loop, rt)                                                                 \
  uv_loop_t loop;                                                                      \
  arbor_runtime_t *rt;                                                                 \
  (void)state;                                                                         \
  log_reset();                                                                         \
  arbor_test_open(&loop, &rt, NULL)

/* ------------------------------------------------------------------ the log */

static char logbuf[4096];

static void log_reset(void) { logbuf[0] = '\0'; }

static void logf_(const char *what, const char *name) {
  size_t len = strlen(logbuf);
  snprintf(logbuf + len, sizeof logbuf - len, "%s%s %s", len > 0 ? ", " : "", what, name);
}

/* ---------------------------------------------------------------- bodies */

enum {
  P_FOREVER,        /* ready, then sleeps until cancelled */
  P_FAIL_FIRST,     /* the first run fails with -EIO, later runs are P_FOREVER */
  P_FAIL_FIRST_LATE, /* the same, once `after` has run (not after a set time:
                       a loaded machine can take longer to start a sibling) */
  P_FAIL_ALWAYS,    /* every run fails with -EIO */
  P_EXIT_OK,        /* every run returns 0 at once */
  P_EXIT_OK_FIRST,  /* the first run returns 0, later runs are P_FOREVER */
  P_SLOW_READY,     /* handshake: ready after a short sleep, then P_FOREVER */
  P_PERSISTENT,       /* on cancel: sleeps an hour inside a shield */
  P_LIVE_THEN_FAIL, /* lives `ms`, then fails */
  P_DAEMON_EXITS,   /* runs a daemon task that returns 0, then sleeps */
  P_DAEMON_FAILS,   /* runs a daemon task that fails with -EIO, then sleeps */
  P_DAEMON_STAYS,   /* runs a daemon task that lives until cancelled */
  P_DAEMON_SERVICE, /* runs a daemon child service that returns 0 */
  P_TASKS,          /* runs 3 tasks that return, waits for them, then sleeps */
};

typedef struct {
  const char *name;
  int plan;
  int runs;
  int stops;                     /* runs that saw ECANCELED */
  uint64_t ms;
  const void *after;             /* P_FAIL_FIRST_LATE: the body_t to wait for */
  const int *gate;               /* P_SLOW_READY: ready once *gate, not after 5 ms */
} body_t;

static int sleep_forever(arbor_ctx_t *cx, body_t *b) {
  int rc;
  while ((rc = arbor_sleep(cx, HOUR)) == 0)
    ;
  b->stops++;
  logf_("stop", b->name);
  return rc;
}

static int returns_zero(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_yield(cx);
  return 0;
}

static int fails_eio(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_yield(cx);
  return -EIO;
}

static int lives_until_cancelled(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  int rc;
  while ((rc = arbor_sleep(cx, HOUR)) == 0)
    ;
  return 0;                      /* a daemon that returns quietly when cancelled */
}

static int body(arbor_ctx_t *cx, void *arg) {
  body_t *b = arg;
  int run = ++b->runs;
  logf_("start", b->name);
  switch (b->plan) {
  case P_FAIL_FIRST:
    if (run == 1) {
      arbor_yield(cx);
      return -EIO;
    }
    break;
  case P_FAIL_FIRST_LATE:
    if (run == 1) {
      const body_t *after = b->after;
      do
        arbor_sleep(cx, 1);
      while (after != NULL && after->runs == 0);
      return -EIO;
    }
    break;
  case P_FAIL_ALWAYS:
    arbor_yield(cx);
    return -EIO;
  case P_EXIT_OK:
    arbor_yield(cx);
    return 0;
  case P_EXIT_OK_FIRST:
    if (run == 1) {
      arbor_yield(cx);
      return 0;
    }
    break;
  case P_SLOW_READY:
    /* A test that reads the STARTING phase gates it: 5 ms can pass within one
     * loop iteration under valgrind. */
    if (b->gate != NULL)
      while (!*b->gate)
        arbor_sleep(cx, 1);
    else
      arbor_sleep(cx, 5);
    logf_("ready", b->name);
    arbor_fiber_started(cx, NULL);
    break;
  case P_PERSISTENT: {
    arbor_sleep(cx, HOUR);
    arbor_scope_t shield;
    arbor_scope_enter(cx, &shield, &(arbor_scope_opts_t){.shield = 1});
    arbor_sleep(cx, HOUR);
    arbor_scope_exit(cx, &shield);
    return ARBOR_ECANCELED;
  }
  case P_LIVE_THEN_FAIL:
    if (arbor_sleep(cx, b->ms) < 0)
      return ARBOR_ECANCELED;
    return -EIO;
  case P_DAEMON_EXITS:
    arbor_service_run_daemon_task(cx, &(arbor_fiber_spec_t){.name = "d", .fn = returns_zero},
                                  NULL);
    break;
  case P_DAEMON_FAILS:
    arbor_service_run_daemon_task(cx, &(arbor_fiber_spec_t){.name = "d", .fn = fails_eio},
                                  NULL);
    break;
  case P_DAEMON_STAYS:
    arbor_service_run_daemon_task(
        cx, &(arbor_fiber_spec_t){.name = "d", .fn = lives_until_cancelled}, NULL);
    break;
  case P_DAEMON_SERVICE:
    arbor_service_run_daemon_child_service(
        cx, &(arbor_service_spec_t){.name = "child", .fiber = returns_zero}, NULL);
    break;
  case P_TASKS: {
    arbor_node_t *t[3];
    for (int i = 0; i < 3; i++)
      assert_code(arbor_service_run_task(
                      cx, &(arbor_fiber_spec_t){.name = "t", .fn = returns_zero}, &t[i]),
                  0);
    for (int i = 0; i < 3; i++)
      arbor_wait(cx, t[i]);
    break;
  }
  default:
    break;
  }
  return sleep_forever(cx, b);
}

static arbor_node_t *add(arbor_node_t *parent, body_t *b, arbor_restart_t restart) {
  arbor_node_t *n = NULL;
  assert_code(arbor_service_add(parent,
                                &(arbor_service_spec_t){.name = b->name,
                                                        .fiber = body,
                                                        .arg = b,
                                                        .restart = restart,
                                                        .handshake = b->plan == P_SLOW_READY,
                                                        .shutdown_timeout_ms = 20},
                                &n),
              0);
  assert_non_null(n);
  return n;
}

static arbor_node_t *sup_new(arbor_node_t *parent, const char *name, arbor_strategy_t strategy,
                             int intensity) {
  arbor_node_t *g = NULL;
  assert_code(arbor_supervisor_new(parent,
                                   &(arbor_sup_opts_t){.name = name,
                                                       .strategy = strategy,
                                                       .intensity = intensity,
                                                       .period_ms = 60000,
                                                       .no_backoff = 1},
                                   &g),
              0);
  return g;
}

static uint32_t restarts(const arbor_node_t *n) {
  arbor_node_info_t info;
  arbor_node_info(n, &info);
  return info.restarts;
}

static arbor_service_info_t sinfo(const arbor_node_t *n) {
  arbor_service_info_t info;
  assert_code(arbor_service_info(n, &info), 0);
  return info;
}

static int phase_is(const arbor_node_t *n, arbor_phase_t p) { return sinfo(n).phase == p; }

/* --------------------------------------------------------- order of start */

/* Children start in order, each STARTED (ready) before the next starts; the
 * supervisor is STARTING until the last is ready, then STARTED. */
static void sup_children_start_in_order_each_started_before_next(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_SLOW_READY}, b = {.name = "B", .plan = P_SLOW_READY}, c = {.name = "C", .plan = P_SLOW_READY};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  add(g, &b, ARBOR_PERMANENT);
  arbor_node_t *nc = add(g, &c, ARBOR_PERMANENT);
  assert_state(g, CREATED);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTING);
  assert_state(nc, CREATED);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  assert_string_equal(logbuf, "start A, ready A, start B, ready B, start C, ready C");
  assert_state(na, STARTED);
  assert_true(arbor_service_is_started(g));
  assert_true(arbor_test_state_seq(rt, arbor_node_id(nc), ARBOR_STATE_STARTED) <
              arbor_test_state_seq(rt, arbor_node_id(g), ARBOR_STATE_STARTED));
  arbor_test_close(rt, &loop);
}

/* While a child is STARTING, the later ones are idle and say it is what they
 * wait for (what the tree and the dashboard show: "waiting for A: STARTING");
 * once all run, nothing waits. */
static void sup_waiting_child_names_the_sibling_it_waits_for(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_SLOW_READY}, b = {.name = "B", .plan = P_FOREVER}, c = {.name = "C", .plan = P_FOREVER};
  int a_ready = 0;
  a.gate = &a_ready;
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  arbor_node_t *nc = add(g, &c, ARBOR_PERMANENT);
  /* Before the first start (the supervisor starts on the loop), A is due first. */
  assert_uint_eq(sinfo(nb).waiting_for, arbor_node_id(na));
  arbor_test_run_once_until(&loop, a.runs == 1);
  assert_true(phase_is(na, ARBOR_PHASE_STARTING));
  assert_uint_eq(sinfo(na).waiting_for, 0);
  assert_true(phase_is(nb, ARBOR_PHASE_IDLE));
  assert_uint_eq(sinfo(nb).waiting_for, arbor_node_id(na));
  assert_uint_eq(sinfo(nc).waiting_for, arbor_node_id(na));
  assert_uint_eq(sinfo(g).waiting_for, 0);    /* not a supervisor's child */
  a_ready = 1;
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  assert_uint_eq(sinfo(nb).waiting_for, 0);
  assert_uint_eq(sinfo(nc).waiting_for, 0);
  arbor_test_close(rt, &loop);
}

/* A handshake body whose first run fails before it is ready; later runs report
 * ready and live until cancelled. */
static int fails_before_ready_once(arbor_ctx_t *cx, void *arg) {
  body_t *b = arg;
  int run = ++b->runs;
  logf_("start", b->name);
  if (run == 1) {
    arbor_yield(cx);
    return -EIO;
  }
  arbor_sleep(cx, 5);
  logf_("ready", b->name);
  arbor_fiber_started(cx, NULL);
  return sleep_forever(cx, b);
}

/* one_for_one goes past a child in its restart delay and starts the next ones,
 * but not one told to start after it (arbor_service_start_after): B waits,
 * naming A, until A's second run is STARTED; C, independent, starts at once. */
static void sup_start_after_holds_child_while_dependency_backs_off(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A"}, b = {.name = "B", .plan = P_FOREVER}, c = {.name = "C", .plan = P_FOREVER};
  arbor_node_t *g = NULL;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.name = "sup", .intensity = 5,
                                                       .period_ms = 60000, .backoff_ms = 50,
                                                       .no_jitter = 1},
                                   &g),
              0);
  arbor_node_t *na = NULL;
  assert_code(arbor_service_add(g, &(arbor_service_spec_t){.name = "A", .fiber = fails_before_ready_once,
                                                           .arg = &a, .handshake = 1},
                                &na),
              0);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  arbor_node_t *nc = add(g, &c, ARBOR_PERMANENT);
  assert_code(arbor_service_start_after(nb, na), 0);
  assert_code(arbor_service_start_after(nb, na), 0);          /* twice: the same */
  assert_code(arbor_service_start_after(na, nb), ARBOR_EINVAL);   /* not an earlier one */
  assert_code(arbor_service_start_after(nb, nb), ARBOR_EINVAL);
  assert_code(arbor_service_start_after(g, na), ARBOR_EKIND);     /* not supervised */
  assert_code(arbor_service_start_after(NULL, na), ARBOR_EINVAL);

  arbor_test_run_once_until(&loop, c.runs == 1);
  assert_true(phase_is(na, ARBOR_PHASE_BACKOFF));
  assert_int_eq(b.runs, 0);
  assert_state(nb, CREATED);
  assert_uint_eq(sinfo(nb).waiting_for, arbor_node_id(na));
  assert_uint_eq(sinfo(nc).waiting_for, 0);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  assert_string_equal(logbuf, "start A, start C, start A, ready A, start B");
  assert_uint_eq(sinfo(nb).waiting_for, 0);
  arbor_test_close(rt, &loop);
}

/* Forgetting the dependencies (earlier NULL) lets a held child start. */
static void sup_start_after_null_releases_held_child(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A"}, b = {.name = "B", .plan = P_FOREVER};
  arbor_node_t *g = NULL;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.name = "sup", .intensity = 5,
                                                       .period_ms = 60000, .backoff_ms = 3600000},
                                   &g),
              0);
  arbor_node_t *na = NULL;
  assert_code(arbor_service_add(g, &(arbor_service_spec_t){.name = "A", .fiber = fails_before_ready_once,
                                                           .arg = &a, .handshake = 1},
                                &na),
              0);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  assert_code(arbor_service_start_after(nb, na), 0);
  arbor_test_run_once_until(&loop, phase_is(na, ARBOR_PHASE_BACKOFF));
  arbor_test_spin(&loop, 5);
  assert_int_eq(b.runs, 0);
  assert_code(arbor_service_start_after(nb, NULL), 0);
  arbor_test_run_once_until(&loop, b.runs == 1);
  assert_uint_eq(sinfo(nb).waiting_for, 0);
  arbor_test_close(rt, &loop);
}

/* Cancelling a supervisor stops its children newest first, each FINISHED
 * before the previous one is cancelled; the supervisor ends CANCELLED. */
static void sup_children_stop_in_reverse_order(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FOREVER}, c = {.name = "C", .plan = P_FOREVER};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  arbor_node_t *nc = add(g, &c, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  log_reset();
  assert_code(arbor_node_cancel(g), 0);
  assert_state(g, STOPPING);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(g));
  assert_string_equal(logbuf, "stop C, stop B, stop A");
  assert_true(arbor_test_state_seq(rt, arbor_node_id(nc), ARBOR_STATE_FINISHED) <
              arbor_test_event_seq(rt, arbor_node_id(nb), ARBOR_EVENT_CANCEL));
  assert_true(arbor_test_state_seq(rt, arbor_node_id(nb), ARBOR_STATE_FINISHED) <
              arbor_test_event_seq(rt, arbor_node_id(na), ARBOR_EVENT_CANCEL));
  assert_outcome(g, CANCELLED);
  assert_outcome(na, CANCELLED);
  assert_true(arbor_service_is_cancelled(na));
  assert_true(arbor_service_is_finished(na));
  assert_false(arbor_service_is_running(na));
  arbor_test_close(rt, &loop);
}

/* parallel_stop: every child is cancelled at once (newest first), without
 * waiting for the newer ones to finish. */
static void sup_parallel_stop_cancels_all_children_at_once(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FOREVER},
         c = {.name = "C", .plan = P_FOREVER};
  arbor_node_t *g;
  assert_code(arbor_supervisor_new(arbor_root(rt), &(arbor_sup_opts_t){.parallel_stop = 1}, &g),
              0);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  arbor_node_t *nc = add(g, &c, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  assert_code(arbor_node_cancel(g), 0);
  assert_true(arbor_node_is_cancelled(na));  /* all three, within the call */
  assert_true(arbor_node_is_cancelled(nb));
  assert_true(arbor_test_event_seq(rt, arbor_node_id(nc), ARBOR_EVENT_CANCEL) <
              arbor_test_event_seq(rt, arbor_node_id(na), ARBOR_EVENT_CANCEL));
  assert_false(arbor_node_is_finished(nc));
  arbor_test_run_once_until(&loop, arbor_node_is_finished(g));
  assert_outcome(g, CANCELLED);
  assert_outcome(na, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------ strategies */

/* one_for_one: only the child that failed restarts; its id stays, its count
 * rises, its incarnation is new, the failure is in its history. */
static void strategy_one_for_one_restarts_only_failed_child(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FAIL_FIRST}, c = {.name = "C", .plan = P_FOREVER};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  add(g, &c, ARBOR_PERMANENT);
  uint64_t id = arbor_node_id(nb);
  arbor_test_run_once_until(&loop, b.runs == 2 && c.runs == 1 && phase_is(nb, ARBOR_PHASE_RUNNING));
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  assert_int_eq(a.runs, 1);
  assert_int_eq(c.runs, 1);
  assert_uint_eq(arbor_node_id(nb), id);
  assert_uint_eq(restarts(nb), 1);
  assert_uint_eq(arbor_test_count_events(rt, id, ARBOR_EVENT_RESTART), 1);
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(nb, 0, &f), 0);
  assert_int_eq(arbor_error_code(f.error), -EIO);
  assert_true(f.restarted);
  assert_true(sinfo(nb).incarnation_id != f.incarnation_id);
  assert_code(arbor_service_failure(nb, 1, &f), ARBOR_ENOENT);
  assert_true(arbor_service_did_error(nb));
  assert_state(nb, STARTED);     /* a restart is no stop of the service */
  arbor_test_close(rt, &loop);
}

/* one_for_all: every other child stops (newest first) and all start again in
 * order. */
static void strategy_one_for_all_restarts_all_in_order(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FAIL_FIRST}, c = {.name = "C", .plan = P_FOREVER};
  b.plan = P_FAIL_FIRST_LATE;
  b.after = &c;
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ALL, 0);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  arbor_node_t *nc = add(g, &c, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, a.runs == 2 && b.runs == 2 && c.runs == 2 &&
                            phase_is(nc, ARBOR_PHASE_RUNNING));
  /* B fails after C started; then C and A stop, newest first, and A, B, C start
   * again. */
  assert_string_equal(logbuf, "start A, start B, start C, stop C, stop A, start A, start B, start C");
  assert_uint_eq(restarts(na), 1);
  assert_uint_eq(restarts(nb), 1);
  assert_uint_eq(restarts(nc), 1);
  arbor_test_close(rt, &loop);
}

/* rest_for_one: the children started after the failed one restart with it; the
 * ones before it are left alone. */
static void strategy_rest_for_one_restarts_later_children(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FAIL_FIRST}, c = {.name = "C", .plan = P_FOREVER};
  b.plan = P_FAIL_FIRST_LATE;
  b.after = &c;
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_REST_FOR_ONE, 0);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  add(g, &b, ARBOR_PERMANENT);
  arbor_node_t *nc = add(g, &c, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, b.runs == 2 && c.runs == 2 && phase_is(nc, ARBOR_PHASE_RUNNING));
  assert_string_equal(logbuf, "start A, start B, start C, stop C, start B, start C");
  assert_int_eq(a.runs, 1);
  assert_uint_eq(restarts(na), 0);
  assert_uint_eq(restarts(nc), 1);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------- intensity */

/* More restarts than the intensity within the period: the supervisor stops its
 * children and fails with EINTENSITY caused by the child's error; under a
 * group, the group fails with it (rule 2). */
static void intensity_exceeded_fails_supervisor_with_cause(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FAIL_ALWAYS};
  arbor_node_t *grp = arbor_test_group(arbor_root(rt), "grp");
  arbor_node_t *g = sup_new(grp, "sup", ARBOR_ONE_FOR_ONE, 2);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(grp));
  assert_int_eq(b.runs, 3);      /* the first run and two restarts */
  assert_outcome(g, FAILED);
  const arbor_error_t *e = arbor_node_error(g);
  assert_int_eq(arbor_error_code(e), ARBOR_EINTENSITY);
  assert_non_null(strstr(arbor_error_message(e), "restart intensity exceeded"));
  assert_int_eq(arbor_error_code(arbor_error_cause(e)), -EIO);
  assert_outcome(na, CANCELLED);
  assert_outcome(nb, CANCELLED);
  assert_outcome(grp, FAILED);
  const arbor_error_t *ge = arbor_node_error(grp);
  assert_int_eq(arbor_error_child_count(ge), 1);
  assert_ptr_equal(arbor_error_child(ge, 0), e);
  arbor_test_close(rt, &loop);
}

/* Escalation: a nested supervisor that gives up is restarted by its parent as a
 * whole (same id, count up); when the parent gives up too, its error's chain
 * goes down to the service's own error. */
static void intensity_escalates_to_parent_with_chain_intact(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_FAIL_ALWAYS};
  arbor_node_t *outer = sup_new(arbor_root(rt), "outer", ARBOR_ONE_FOR_ONE, 1);
  arbor_node_t *inner = sup_new(outer, "inner", ARBOR_ONE_FOR_ONE, 1);
  add(inner, &b, ARBOR_PERMANENT);
  uint64_t inner_id = arbor_node_id(inner);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(outer));
  assert_uint_eq(restarts(inner), 1);
  assert_uint_eq(arbor_node_id(inner), inner_id);
  assert_int_eq(b.runs, 4);      /* two runs of inner, two of B in each */
  const arbor_error_t *e = arbor_node_error(outer);
  assert_int_eq(arbor_error_code(e), ARBOR_EINTENSITY);
  const arbor_error_t *c1 = arbor_error_cause(e);
  assert_int_eq(arbor_error_code(c1), ARBOR_EINTENSITY);
  assert_non_null(strstr(arbor_error_message(c1), "inner"));
  assert_int_eq(arbor_error_code(arbor_error_cause(c1)), -EIO);
  assert_outcome(outer, FAILED);
  /* A top-level failure: the runtime remembers it for arbor_run. */
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------ restart types */

static void restart_types_follow_erlang(void **state) {
  OPEN(loop, rt);
  body_t p = {.name = "perm", .plan = P_EXIT_OK_FIRST}, t_ok = {.name = "trans-ok", .plan = P_EXIT_OK},
         t_fail = {.name = "trans-fail", .plan = P_FAIL_FIRST}, tmp = {.name = "temp", .plan = P_FAIL_ALWAYS};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 10);
  arbor_node_t *np = add(g, &p, ARBOR_PERMANENT);
  arbor_node_t *nto = add(g, &t_ok, ARBOR_TRANSIENT);
  arbor_node_t *ntf = add(g, &t_fail, ARBOR_TRANSIENT);
  arbor_node_t *ntmp = add(g, &tmp, ARBOR_TEMPORARY);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(ntmp) && p.runs == 2 && t_fail.runs == 2 &&
                            arbor_node_is_finished(nto));
  assert_uint_eq(restarts(np), 1);          /* permanent: even after a normal exit */
  assert_outcome(nto, OK);                  /* transient, normal exit: done */
  assert_uint_eq(restarts(nto), 0);
  assert_uint_eq(restarts(ntf), 1);         /* transient, failed: restarted */
  assert_outcome(ntmp, FAILED);             /* temporary: never restarted */
  assert_int_eq(tmp.runs, 1);
  assert_int_eq(arbor_error_code(arbor_node_error(ntmp)), -EIO);
  assert_false(arbor_node_is_finished(g));  /* a temporary child's failure is no
                                               failure of the supervisor */
  assert_true(arbor_service_did_error(ntmp));
  arbor_test_close(rt, &loop);
}

/* --------------------------------------------------------------- backoff */

static void failing_service(arbor_node_t *g, body_t *b, arbor_node_t **out) {
  assert_code(arbor_service_add(g, &(arbor_service_spec_t){.name = b->name, .fiber = body,
                                                           .arg = b},
                                out),
              0);
}

/* Exponential from backoff_ms, doubled per restart in a row, capped. */
static void backoff_doubles_and_caps(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_FAIL_ALWAYS};
  arbor_node_t *g, *n;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.intensity = 100, .period_ms = 60000,
                                                       .backoff_ms = 2, .backoff_max_ms = 16,
                                                       .no_jitter = 1},
                                   &g),
              0);
  failing_service(g, &b, &n);
  arbor_test_run_once_until(&loop, b.runs == 7);
  uint32_t kept = sinfo(n).history;
  assert_true(kept >= 6);
  uint64_t want[] = {2, 4, 8, 16, 16, 16};  /* oldest first */
  for (size_t i = 0; i < 6; i++) {
    arbor_service_failure_t f;
    assert_code(arbor_service_failure(n, kept - 1 - i, &f), 0);
    assert_uint_eq(f.backoff_ms, want[i]);
  }
  arbor_test_close(rt, &loop);
}

/* With jitter, each delay lies in [75 %, 100 %] of the policy's. */
static void backoff_jitter_stays_within_policy(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_FAIL_ALWAYS};
  arbor_node_t *g, *n;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.intensity = 100, .period_ms = 60000,
                                                       .backoff_ms = 8, .backoff_max_ms = 32},
                                   &g),
              0);
  failing_service(g, &b, &n);
  arbor_test_run_once_until(&loop, b.runs == 5);
  uint32_t kept = sinfo(n).history;
  assert_true(kept >= 4);
  uint64_t policy[] = {8, 16, 32, 32};     /* oldest first */
  for (size_t i = 0; i < 4; i++) {
    arbor_service_failure_t f;
    assert_code(arbor_service_failure(n, kept - 1 - i, &f), 0);
    assert_true(f.backoff_ms * 4 >= policy[i] * 3);
    assert_uint_le(f.backoff_ms, policy[i]);
  }
  arbor_test_close(rt, &loop);
}

/* The default: a first restart after 100 ms at most (75 at least), and the
 * service in BACKOFF meanwhile with the time of its next start. */
static void backoff_default_starts_at_100ms(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_FAIL_FIRST};
  arbor_node_t *g, *n;
  assert_code(arbor_supervisor_new(arbor_root(rt), NULL, &g), 0);
  failing_service(g, &b, &n);
  arbor_test_run_once_until(&loop, phase_is(n, ARBOR_PHASE_BACKOFF));
  arbor_service_info_t si = sinfo(n);
  assert_true(si.last_backoff_ms >= 75 && si.last_backoff_ms <= 100);
  assert_true(si.next_restart_ns > 0);
  arbor_test_run_once_until(&loop, b.runs == 2);
  arbor_test_close(rt, &loop);
}

/* A run that stayed up for the supervisor's period resets the streak. */
static void backoff_resets_after_a_long_run(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_LIVE_THEN_FAIL, .ms = 30};
  arbor_node_t *g, *n;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.intensity = 100, .period_ms = 20,
                                                       .backoff_ms = 5, .no_jitter = 1},
                                   &g),
              0);
  failing_service(g, &b, &n);
  arbor_test_run_once_until(&loop, b.runs == 4);
  for (size_t i = 0; i < 3; i++) {
    arbor_service_failure_t f;
    assert_code(arbor_service_failure(n, i, &f), 0);
    assert_uint_eq(f.backoff_ms, 5);
  }
  arbor_test_close(rt, &loop);
}

/* ---------------------------------------------------- identity and history */

/* The failure history keeps the newest ARBOR_SERVICE_HISTORY chains, each of a
 * different incarnation; the service's id never changes. */
static void service_history_is_bounded_newest_first(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_FAIL_ALWAYS};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 100);
  arbor_node_t *n = add(g, &b, ARBOR_PERMANENT);
  uint64_t id = arbor_node_id(n);
  arbor_test_run_once_until(&loop, b.runs == ARBOR_SERVICE_HISTORY + 3);
  assert_uint_eq(arbor_node_id(n), id);
  assert_uint_eq(sinfo(n).history, ARBOR_SERVICE_HISTORY);
  uint64_t prev = UINT64_MAX;
  for (size_t i = 0; i < ARBOR_SERVICE_HISTORY; i++) {
    arbor_service_failure_t f;
    assert_code(arbor_service_failure(n, i, &f), 0);
    assert_true(f.incarnation_id < prev);
    prev = f.incarnation_id;
    assert_int_eq(arbor_error_code(f.error), -EIO);
  }
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(n, ARBOR_SERVICE_HISTORY, &f), ARBOR_ENOENT);
  arbor_test_close(rt, &loop);
}

/* arbor_service_restart: a new incarnation at once, the same id, the count up, a
 * RESTART event; for a supervisor, all its children in order. */
static void service_restart_on_request(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FOREVER};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nb = add(g, &b, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  uint64_t inc = sinfo(nb).incarnation_id;
  assert_code(arbor_service_restart(nb), 0);
  arbor_test_run_once_until(&loop, b.runs == 2 && phase_is(nb, ARBOR_PHASE_RUNNING));
  assert_uint_eq(restarts(nb), 1);
  assert_true(sinfo(nb).incarnation_id != inc);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(nb), ARBOR_EVENT_RESTART), 1);
  assert_int_eq(a.runs, 1);
  assert_false(arbor_service_did_error(nb));
  log_reset();
  assert_code(arbor_service_restart(g), 0);
  arbor_test_run_once_until(&loop, a.runs == 2 && b.runs == 3 && phase_is(g, ARBOR_PHASE_RUNNING));
  assert_string_equal(logbuf, "stop B, stop A, start A, start B");
  assert_uint_eq(restarts(g), 1);
  /* Refusals. */
  assert_code(arbor_service_restart(NULL), ARBOR_EINVAL);
  assert_code(arbor_service_restart(arbor_root(rt)), ARBOR_EKIND);
  arbor_node_t *inc_node = arbor_node_find(rt, sinfo(na).incarnation_id);
  assert_code(arbor_service_restart(inc_node), ARBOR_EKIND);
  assert_code(arbor_node_cancel(na), 0);
  assert_code(arbor_service_restart(na), ARBOR_ESTATE);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(na));
  assert_code(arbor_service_restart(na), ARBOR_EFINISHED);
  arbor_test_close(rt, &loop);
}

/* arbor_service_fail: the run FAILED with the given error (its chain what a
 * health check found), stopped as a restart stops it, and counted as a failure:
 * restarted per the restart type, kept in the history; unsupervised, the service
 * FAILED with it. */
static void service_fail_ends_run_failed_with_the_error(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, t = {.name = "T", .plan = P_FOREVER};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 5);
  arbor_node_t *na = add(g, &a, ARBOR_PERMANENT);
  arbor_node_t *nt = add(g, &t, ARBOR_TEMPORARY);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  uint64_t inc = sinfo(na).incarnation_id;
  assert_code(arbor_service_fail(na, arbor_error_new(-ETIMEDOUT, "liveness probe failed")),
              0);
  /* While it stops, a second verdict is refused: the run is already ending. */
  assert_code(arbor_service_fail(na, arbor_error_new(-EIO, "late")), ARBOR_ESTATE);
  arbor_test_run_once_until(&loop, a.runs == 2 && phase_is(na, ARBOR_PHASE_RUNNING));
  assert_int_eq(a.stops, 1);     /* its body was cancelled, as for a stop */
  assert_uint_eq(restarts(na), 1);
  assert_true(arbor_service_did_error(na));
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(na, 0, &f), 0);
  assert_uint_eq(f.incarnation_id, inc);
  assert_true(f.restarted);
  assert_int_eq(arbor_error_code(f.error), -ETIMEDOUT);
  assert_string_equal(arbor_error_message(f.error), "liveness probe failed");
  const arbor_node_t *old = arbor_node_find(rt, inc);
  if (old != NULL)               /* still kept: it ended FAILED, not CANCELLED */
    assert_int_eq(arbor_node_outcome(old), ARBOR_OUTCOME_FAILED);
  /* A temporary service is not restarted: it is done, FAILED with the error. */
  assert_code(arbor_service_fail(nt, arbor_error_new(-EIO, "unhealthy")), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(nt));
  assert_int_eq(t.runs, 1);
  assert_int_eq(arbor_node_outcome(nt), ARBOR_OUTCOME_FAILED);
  assert_string_equal(arbor_error_message(arbor_node_error(nt)), "unhealthy");
  /* Refusals: the error is taken even then (the test runs under ASan). */
  assert_code(arbor_service_fail(NULL, arbor_error_new(-EIO, "x")), ARBOR_EINVAL);
  assert_code(arbor_service_fail(na, NULL), ARBOR_EINVAL);
  assert_code(arbor_service_fail(g, arbor_error_new(-EIO, "x")), ARBOR_EKIND);
  assert_code(arbor_service_fail(nt, arbor_error_new(-EIO, "x")), ARBOR_ESTATE);
  arbor_test_close(rt, &loop);
}

/* arbor_service_update: the next incarnation runs the new body and arg; the id
 * and the count carry on. A service not started yet starts with the new spec. */
static void service_update_runs_new_body_keeping_id(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FOREVER};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *n = add(g, &a, ARBOR_PERMANENT);
  uint64_t id = arbor_node_id(n);
  arbor_test_run_once_until(&loop, phase_is(n, ARBOR_PHASE_RUNNING));
  assert_code(arbor_service_update(n, &(arbor_service_spec_t){.fiber = body, .arg = &b,
                                                              .restart = ARBOR_TRANSIENT}),
              0);
  arbor_test_run_once_until(&loop, b.runs == 1 && phase_is(n, ARBOR_PHASE_RUNNING));
  assert_int_eq(a.runs, 1);
  assert_int_eq(a.stops, 1);
  assert_uint_eq(arbor_node_id(n), id);
  assert_uint_eq(restarts(n), 1);
  assert_int_eq(sinfo(n).restart, ARBOR_TRANSIENT);
  assert_code(arbor_service_update(g, &(arbor_service_spec_t){.fiber = body}), ARBOR_EKIND);
  assert_code(arbor_node_cancel(n), 0);
  assert_code(arbor_service_update(n, &(arbor_service_spec_t){.fiber = body}), ARBOR_ESTATE);
  arbor_test_close(rt, &loop);
}

/* -------------------------------------------------------------- rule 7 */

/* A daemon task that returns while its service runs fails the incarnation with
 * "daemon task exited unexpectedly"; a temporary service then ends FAILED. */
static void rule7_daemon_task_exit_fails_service(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_DAEMON_EXITS};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *n = add(g, &b, ARBOR_TEMPORARY);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(n));
  assert_outcome(n, FAILED);
  const arbor_error_t *e = arbor_node_error(n);
  assert_int_eq(arbor_error_code(e), ARBOR_EDAEMON);
  assert_non_null(strstr(arbor_error_message(e), "daemon task exited unexpectedly"));
  assert_null(arbor_error_cause(e));
  assert_int_eq(b.stops, 1);     /* the body was cancelled by the failure */
  arbor_test_close(rt, &loop);
}

/* A daemon that fails: the same error, caused by the daemon's own. */
static void rule7_daemon_task_failure_is_the_cause(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_DAEMON_FAILS};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *n = add(g, &b, ARBOR_TEMPORARY);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(n));
  const arbor_error_t *e = arbor_node_error(n);
  assert_int_eq(arbor_error_code(e), ARBOR_EDAEMON);
  assert_int_eq(arbor_error_code(arbor_error_cause(e)), -EIO);
  arbor_test_close(rt, &loop);
}

/* A daemon child service counts as a daemon task. */
static void rule7_daemon_child_service_exit_fails_service(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_DAEMON_SERVICE};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *n = add(g, &b, ARBOR_TEMPORARY);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(n));
  assert_int_eq(arbor_error_code(arbor_node_error(n)), ARBOR_EDAEMON);
  arbor_test_close(rt, &loop);
}

/* Not when the service is stopping: a daemon that returns because it was
 * cancelled with its service fails nothing. */
static void rule7_daemon_exit_while_stopping_is_no_failure(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_DAEMON_STAYS};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *n = add(g, &b, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED && b.runs == 1);
  arbor_test_spin(&loop, 4);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(n));
  assert_outcome(n, CANCELLED);
  assert_null(arbor_node_error(n));
  assert_false(arbor_service_did_error(n));
  arbor_test_close(rt, &loop);
}

/* ---------------------------------------------------- the service manager */

typedef struct {
  arbor_node_t *svc;
  int started_rc, stop_rc;
  int was_started, was_finished, done;
} outside_t;

static int outside(arbor_ctx_t *cx, void *arg) {
  outside_t *o = arg;
  o->started_rc = arbor_service_wait_started(cx, o->svc);
  o->was_started = arbor_service_is_started(o->svc) && arbor_service_is_running(o->svc);
  o->stop_rc = arbor_service_stop(cx, o->svc);
  o->was_finished = arbor_service_is_finished(o->svc);
  o->done = 1;
  return 0;
}

/* From outside: wait_started, is_*, stop (cancel + wait); inside: run_task and
 * the stats of tasks run and finished. */
static void service_manager_api(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_TASKS};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "B", .fiber = body, .arg = &b},
                                &svc),
              0);
  outside_t o = {.svc = svc};
  assert_code(arbor_fiber_spawn(arbor_root(rt), &(arbor_fiber_spec_t){.fn = outside, .arg = &o},
                                NULL),
              0);
  assert_false(arbor_service_is_started(svc));
  arbor_test_run_once_until(&loop, o.done);
  assert_int_eq(o.started_rc, 0);
  assert_true(o.was_started);
  assert_int_eq(o.stop_rc, 0);
  assert_true(o.was_finished);
  assert_true(arbor_service_is_cancelled(svc));
  arbor_service_info_t si = sinfo(svc);
  assert_uint_eq(si.tasks_total, 3);
  assert_uint_eq(si.tasks_finished, 3);
  assert_int_eq(arbor_service_is_started(arbor_root(rt)), 0);
  assert_code(arbor_service_info(arbor_root(rt), &si), ARBOR_EKIND);
  arbor_test_close(rt, &loop);
}

/* run_task outside a service is refused. */
static int not_in_service(arbor_ctx_t *cx, void *arg) {
  *(int *)arg = arbor_service_run_task(cx, &(arbor_fiber_spec_t){.fn = returns_zero}, NULL);
  return 0;
}

static void service_manager_outside_a_service_is_refused(void **state) {
  OPEN(loop, rt);
  int rc = 1;
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.fn = not_in_service, .arg = &rc}, NULL),
              0);
  arbor_test_run_once_until(&loop, rc != 1);
  assert_int_eq(rc, ARBOR_EKIND);
  arbor_test_close(rt, &loop);
}

/* -------------------------------------------------------------- rule 8 */

/* An incarnation still STOPPING after the shutdown timeout is marked stuck, an
 * event says so, and the stopping service is stuck too. */
static void rule8_stuck_incarnation_is_marked(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  (void)state;
  log_reset();
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.shutdown_timeout_ms = 30});
  body_t b = {.name = "B", .plan = P_PERSISTENT};
  arbor_node_t *g = sup_new(arbor_root(rt), "sup", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *n = add(g, &b, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_state(g) == ARBOR_STATE_STARTED);
  arbor_node_t *inc = arbor_node_find(rt, sinfo(n).incarnation_id);
  assert_false(arbor_node_is_stuck(inc));
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_stuck(inc));
  assert_true(arbor_node_is_stuck(n));
  arbor_node_info_t info;
  arbor_node_info(inc, &info);
  assert_true(info.stuck);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(inc), ARBOR_EVENT_STUCK), 1);
  assert_false(arbor_node_is_finished(inc));
  /* The runtime's close gives up on it after its grace period: FAILED, EDEADLK. */
  arbor_test_close(rt, &loop);
}

/* Shuts down once body b runs (so it is parked in its first sleep, and the
 * shutdown's cancel reaches the persistent body, not one that never started:
 * under valgrind on a loaded machine a fixed delay passed before B began). */
struct shutdown_when {
  arbor_runtime_t *rt;
  const body_t *b;
};

static void shutdown_when_running(uv_timer_t *t) {
  struct shutdown_when *w = t->data;
  if (w->b->runs == 0)
    return;
  uv_timer_stop(t);
  arbor_shutdown(w->rt, 0);
}

/* Graceful shutdown: top-level nodes stop newest first; a fiber that does not
 * stop is given up on after the grace period with an error, not a hang, and
 * arbor_run says so. */
static void rule8_shutdown_gives_up_after_grace(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  (void)state;
  log_reset();
  arbor_test_open(&loop, &rt,
                  &(arbor_runtime_opts_t){.shutdown_timeout_ms = 30, .no_signals = 1});
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_PERSISTENT};
  arbor_node_t *ga = sup_new(arbor_root(rt), "first", ARBOR_ONE_FOR_ONE, 0);
  add(ga, &a, ARBOR_PERMANENT);
  arbor_node_t *gb = sup_new(arbor_root(rt), "second", ARBOR_ONE_FOR_ONE, 0);
  add(gb, &b, ARBOR_PERMANENT);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  struct shutdown_when w = {rt, &b};
  t.data = &w;
  uv_timer_start(&t, shutdown_when_running, 1, 1);
  uv_unref((uv_handle_t *)&t);
  int rc = arbor_run(rt);        /* frees rt: the order is checked below */
  assert_int_eq(rc, ARBOR_EDEADLK);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* Reverse creation order at the top level, and the second call is immediate. */
static void shutdown_stops_top_level_newest_first(void **state) {
  OPEN(loop, rt);
  body_t a = {.name = "A", .plan = P_FOREVER}, b = {.name = "B", .plan = P_FOREVER}, c = {.name = "C", .plan = P_PERSISTENT};
  arbor_node_t *ga = sup_new(arbor_root(rt), "first", ARBOR_ONE_FOR_ONE, 0);
  add(ga, &a, ARBOR_PERMANENT);
  arbor_node_t *gb = sup_new(arbor_root(rt), "second", ARBOR_ONE_FOR_ONE, 0);
  add(gb, &b, ARBOR_PERMANENT);
  arbor_node_t *gc = sup_new(arbor_root(rt), "third", ARBOR_ONE_FOR_ONE, 0);
  arbor_node_t *nc = add(gc, &c, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_state(gc) == ARBOR_STATE_STARTED &&
                            arbor_node_state(ga) == ARBOR_STATE_STARTED);
  assert_code(arbor_shutdown(NULL, 0), ARBOR_EINVAL);
  assert_code(arbor_shutdown(rt, 0), 0);
  assert_code(arbor_shutdown(rt, 0), ARBOR_EALREADY);
  assert_true(arbor_test_event_seq(rt, arbor_node_id(gc), ARBOR_EVENT_CANCEL) <
              arbor_test_event_seq(rt, arbor_node_id(gb), ARBOR_EVENT_CANCEL));
  assert_true(arbor_test_event_seq(rt, arbor_node_id(gb), ARBOR_EVENT_CANCEL) <
              arbor_test_event_seq(rt, arbor_node_id(ga), ARBOR_EVENT_CANCEL));
  arbor_test_run_once_until(&loop, arbor_node_is_finished(ga) && arbor_node_is_finished(gb));
  assert_false(arbor_node_is_finished(gc));
  /* Immediate: stuck marked and given up on now, without waiting for a grace;
   * the fiber is woken inside its shield and fails with EDEADLK. */
  arbor_node_t *inc = arbor_node_find(rt, sinfo(nc).incarnation_id);
  assert_code(arbor_shutdown(rt, 1), 0);
  assert_code(arbor_shutdown(rt, 1), ARBOR_EALREADY);
  assert_true(arbor_node_is_stuck(nc));
  assert_true(arbor_node_is_stuck(inc));
  arbor_test_run_once_until(&loop, arbor_node_is_finished(gc));
  assert_outcome(inc, FAILED);
  assert_int_eq(arbor_error_code(arbor_node_error(inc)), ARBOR_EDEADLK);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------- bad input */

static void bad_specs_are_refused_and_start_nothing(void **state) {
  OPEN(loop, rt);
  arbor_node_t *root = arbor_root(rt), *g = NULL, *n = NULL;
  uint64_t before = arbor_test_recorded(rt);
  assert_code(arbor_supervisor_new(NULL, NULL, &g), ARBOR_EINVAL);
  assert_code(arbor_supervisor_new(root, &(arbor_sup_opts_t){.intensity = -1}, &g),
              ARBOR_EINVAL);
  assert_code(arbor_supervisor_new(root, &(arbor_sup_opts_t){.strategy = 7}, &g), ARBOR_EINVAL);
  assert_code(arbor_supervisor_new(root, &(arbor_sup_opts_t){.restart = 9}, &g), ARBOR_EINVAL);
  assert_code(arbor_service_add(root, NULL, &n), ARBOR_EINVAL);
  assert_code(arbor_service_add(root, &(arbor_service_spec_t){.name = "none"}, &n),
              ARBOR_EINVAL);
  char *argv[] = {"/bin/true", NULL};
  assert_code(arbor_service_add(root, &(arbor_service_spec_t){.fiber = body, .argv = argv}, &n),
              ARBOR_EINVAL);
  assert_code(arbor_service_add(root, &(arbor_service_spec_t){.fiber = body, .restart = 5}, &n),
              ARBOR_EINVAL);
  assert_uint_eq(arbor_test_recorded(rt), before);
  assert_null(g);
  assert_null(n);
  /* A service cannot hold services: its children are its incarnations. */
  body_t b = {.name = "B", .plan = P_FOREVER};
  arbor_node_t *svc = add(root, &b, ARBOR_PERMANENT);
  before = arbor_test_recorded(rt);
  assert_code(arbor_service_add(svc, &(arbor_service_spec_t){.fiber = body, .arg = &b}, &n),
              ARBOR_EKIND);
  assert_code(arbor_supervisor_new(svc, NULL, &g), ARBOR_EKIND);
  assert_uint_eq(arbor_test_recorded(rt), before);
  assert_string_equal(arbor_strategy_name(ARBOR_REST_FOR_ONE), "rest_for_one");
  assert_string_equal(arbor_restart_name(ARBOR_TRANSIENT), "transient");
  assert_string_equal(arbor_phase_name(ARBOR_PHASE_BACKOFF), "backoff");
  arbor_test_close(rt, &loop);
}

/* An unsupervised service runs once: its failure is its parent's (rule 2). */
static void unsupervised_service_failure_reaches_its_group(void **state) {
  OPEN(loop, rt);
  body_t b = {.name = "B", .plan = P_FAIL_ALWAYS};
  arbor_node_t *grp = arbor_test_group(arbor_root(rt), "grp");
  arbor_node_t *n = add(grp, &b, ARBOR_PERMANENT);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(grp));
  assert_int_eq(b.runs, 1);
  assert_outcome(n, FAILED);
  assert_outcome(grp, FAILED);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest supervise_tests[] = {
    cmocka_unit_test(sup_children_start_in_order_each_started_before_next),
    cmocka_unit_test(sup_waiting_child_names_the_sibling_it_waits_for),
    cmocka_unit_test(sup_start_after_holds_child_while_dependency_backs_off),
    cmocka_unit_test(sup_start_after_null_releases_held_child),
    cmocka_unit_test(sup_children_stop_in_reverse_order),
    cmocka_unit_test(sup_parallel_stop_cancels_all_children_at_once),
    cmocka_unit_test(strategy_one_for_one_restarts_only_failed_child),
    cmocka_unit_test(strategy_one_for_all_restarts_all_in_order),
    cmocka_unit_test(strategy_rest_for_one_restarts_later_children),
    cmocka_unit_test(intensity_exceeded_fails_supervisor_with_cause),
    cmocka_unit_test(intensity_escalates_to_parent_with_chain_intact),
    cmocka_unit_test(restart_types_follow_erlang),
    cmocka_unit_test(backoff_doubles_and_caps),
    cmocka_unit_test(backoff_jitter_stays_within_policy),
    cmocka_unit_test(backoff_default_starts_at_100ms),
    cmocka_unit_test(backoff_resets_after_a_long_run),
    cmocka_unit_test(service_history_is_bounded_newest_first),
    cmocka_unit_test(service_restart_on_request),
    cmocka_unit_test(service_update_runs_new_body_keeping_id),
    cmocka_unit_test(service_fail_ends_run_failed_with_the_error),
    cmocka_unit_test(rule7_daemon_task_exit_fails_service),
    cmocka_unit_test(rule7_daemon_task_failure_is_the_cause),
    cmocka_unit_test(rule7_daemon_child_service_exit_fails_service),
    cmocka_unit_test(rule7_daemon_exit_while_stopping_is_no_failure),
    cmocka_unit_test(service_manager_api),
    cmocka_unit_test(service_manager_outside_a_service_is_refused),
    cmocka_unit_test(rule8_stuck_incarnation_is_marked),
    cmocka_unit_test(rule8_shutdown_gives_up_after_grace),
    cmocka_unit_test(shutdown_stops_top_level_newest_first),
    cmocka_unit_test(bad_specs_are_refused_and_start_nothing),
    cmocka_unit_test(unsupervised_service_failure_reaches_its_group),
};

ARBOR_TEST_MAIN(supervise_tests)
