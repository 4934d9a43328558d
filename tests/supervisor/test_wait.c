/* tests/supervisor/test_wait.c - arbor_wait (supervisor/wait.c) and the readiness
 * handshake arbor_fiber_start / arbor_fiber_started (supervisor/fiber.c). */
#include "harness.h"

#define HOUR (3600u * 1000u)

typedef struct {
  int plan;
  int rc;
  void *value;
  arbor_node_t *target;          /* waited for / started */
  arbor_node_t *group;           /* where children go */
  arbor_state_t child_state_after;
  int reached;                   /* the body got past its first wait */
  int finishes;
} w_t;

enum { C_READY_THEN_SLEEP, C_FAIL_EARLY, C_RETURN_UNREADY, C_SLOW_READY };
enum { W_WAIT, W_WAIT_SELF, W_START };

static int child_plan;
static int child_value = 42;

static int child(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  switch (child_plan) {
  case C_READY_THEN_SLEEP:
    arbor_sleep(cx, 1);
    arbor_fiber_started(cx, &child_value);
    return arbor_sleep(cx, HOUR);
  case C_FAIL_EARLY:
    arbor_yield(cx);
    return -EIO;
  case C_RETURN_UNREADY:
    return 0;
  case C_SLOW_READY:
    return arbor_sleep(cx, HOUR);
  }
  return 0;
}

static int parent(arbor_ctx_t *cx, void *arg) {
  w_t *w = arg;
  switch (w->plan) {
  case W_WAIT:
    w->rc = arbor_wait(cx, w->target);
    w->reached = 1;
    return 0;
  case W_WAIT_SELF:
    w->rc = arbor_wait(cx, arbor_ctx_node(cx));
    return 0;
  case W_START: {
    arbor_fiber_spec_t spec = {.name = "child", .fn = child};
    w->rc = arbor_fiber_start(cx, w->group, &spec, &w->value, &w->target);
    w->child_state_after = arbor_node_state(w->target);
    w->reached = 1;
    return w->rc == ARBOR_ECANCELED ? w->rc : 0;
  }
  }
  return 0;
}

static void on_finish(arbor_node_t *node, void *arg) {
  (void)node;
  ((w_t *)arg)->finishes++;
}

static arbor_node_t *spawn_parent(arbor_node_t *where, w_t *w) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = "parent", .fn = parent, .arg = w, .finish = on_finish};
  assert_code(arbor_fiber_spawn(where, &spec, &n), 0);
  return n;
}

#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 1000 && !(cond); k_++)                                           \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    assert_true(cond);                                                                 \
  } while (0)

#define OPEN(loop, rt)                                                                 \
  uv_loop_t loop;                                                                      \
  arbor_runtime_t *rt;                                                                 \
  (void)state;                                                                         \
  arbor_test_open(&loop, &rt, NULL)

/* A fiber waits for a callback task; it wakes when the task FINISHED. */
static void wait_returns_when_node_finishes(void **state) {
  OPEN(loop, rt);
  arbor_probe_t p = {0};
  w_t w = {.plan = W_WAIT};
  w.target = arbor_test_spawn(arbor_root(rt), &p, "task", 0);
  arbor_node_t *n = spawn_parent(arbor_root(rt), &w);
  arbor_test_run_until(&loop, p.starts == 1);
  arbor_test_spin(&loop, 3);
  assert_int_eq(w.reached, 0);               /* still waiting */
  assert_code(arbor_task_fail(w.target, -EIO, "gone"), 0);
  run_once_until(&loop, w.finishes == 1);
  assert_int_eq(w.rc, 0);
  assert_outcome(w.target, FAILED);
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
}

/* Rule 4 for wait: cancelled mid-wait returns ARBOR_ECANCELED; the node waited
 * for is untouched. Waiting for a finished node returns at once; for itself,
 * EDEADLK. */
static void rule4_wait_returns_ecanceled_when_cancelled(void **state) {
  OPEN(loop, rt);
  arbor_probe_t p = {0};
  w_t w = {.plan = W_WAIT}, self = {.plan = W_WAIT_SELF};
  w.target = arbor_test_spawn(arbor_root(rt), &p, "task", 0);
  arbor_node_t *n = spawn_parent(arbor_root(rt), &w);
  spawn_parent(arbor_root(rt), &self);
  arbor_test_run_until(&loop, p.starts == 1 && self.finishes == 1);
  assert_int_eq(self.rc, ARBOR_EDEADLK);
  arbor_test_spin(&loop, 2);
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, w.finishes == 1);
  assert_int_eq(w.rc, ARBOR_ECANCELED);
  assert_state(w.target, STARTED);
  assert_code(arbor_task_done(w.target), 0);
  arbor_test_close(rt, &loop);
}

static void handshake_start_returns_child_value(void **state) {
  OPEN(loop, rt);
  w_t w = {.plan = W_START};
  child_plan = C_READY_THEN_SLEEP;
  w.group = arbor_test_group(arbor_root(rt), "g");
  spawn_parent(arbor_root(rt), &w);
  run_once_until(&loop, w.reached);
  assert_int_eq(w.rc, 0);
  assert_ptr_equal(w.value, &child_value);
  assert_state_eq(w.child_state_after, ARBOR_STATE_STARTED);
  assert_path(rt, w.target, CREATED, STARTING, STARTED);
  assert_code(arbor_node_cancel(w.group), 0);
  run_once_until(&loop, arbor_node_is_finished(w.group));
  arbor_test_close(rt, &loop);
}

static void handshake_failure_before_started_reaches_parent(void **state) {
  OPEN(loop, rt);
  w_t w = {.plan = W_START};
  child_plan = C_FAIL_EARLY;
  w.group = arbor_test_group(arbor_root(rt), "g");
  spawn_parent(arbor_root(rt), &w);
  run_once_until(&loop, w.reached);
  assert_int_eq(w.rc, -EIO);
  assert_outcome(w.target, FAILED);
  run_once_until(&loop, arbor_node_is_finished(w.group));
  assert_outcome(w.group, FAILED);           /* and it propagates as usual */
  arbor_test_close(rt, &loop);
}

static void handshake_return_without_started_is_an_error(void **state) {
  OPEN(loop, rt);
  w_t w = {.plan = W_START};
  child_plan = C_RETURN_UNREADY;
  w.group = arbor_test_group(arbor_root(rt), "g");
  spawn_parent(arbor_root(rt), &w);
  run_once_until(&loop, w.reached);
  assert_int_eq(w.rc, ARBOR_ESTATE);
  assert_outcome(w.target, FAILED);
  assert_code(arbor_error_code(arbor_node_error(w.target)), ARBOR_ESTATE);
  arbor_test_close(rt, &loop);
}

static void handshake_cancelled_parent_cancels_child(void **state) {
  OPEN(loop, rt);
  w_t w = {.plan = W_START};
  child_plan = C_SLOW_READY;
  w.group = arbor_test_group(arbor_root(rt), "g");
  arbor_node_t *n = spawn_parent(arbor_root(rt), &w);
  arbor_test_spin(&loop, 4);
  assert_int_eq(w.reached, 0);
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, w.finishes == 1);
  assert_int_eq(w.rc, ARBOR_ECANCELED);
  run_once_until(&loop, arbor_node_is_finished(w.target));
  assert_outcome(w.target, CANCELLED);
  assert_state(w.group, STARTED);            /* cancelling the child is no failure */
  assert_code(arbor_fiber_started(NULL, NULL), ARBOR_EINVAL);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest wait_tests[] = {
    cmocka_unit_test(wait_returns_when_node_finishes),
    cmocka_unit_test(rule4_wait_returns_ecanceled_when_cancelled),
    cmocka_unit_test(handshake_start_returns_child_value),
    cmocka_unit_test(handshake_failure_before_started_reaches_parent),
    cmocka_unit_test(handshake_return_without_started_is_an_error),
    cmocka_unit_test(handshake_cancelled_parent_cancels_child),
};

ARBOR_TEST_MAIN(wait_tests)
