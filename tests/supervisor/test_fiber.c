/* tests/supervisor/test_fiber.c - fiber tasks (supervisor/fiber.c, stack.c):
 * bodies on their own stacks, the sleep and yield checkpoints, and rule 4 for
 * them. Counts and order only: nothing asserts a duration. */
#include "harness.h"

#define HOUR (3600u * 1000u)

typedef struct {
  int plan;                      /* what the body does, see body() */
  int rc;                        /* what it returns */
  int steps;                     /* checkpoints passed */
  int ecanceled;                 /* checkpoints that returned ARBOR_ECANCELED */
  int first_cancel_rc;           /* the checkpoint that saw the cancel */
  int finishes;
  uintptr_t frame;               /* address of a local: which stack it ran on */
  arbor_ctx_t *cx;
} fib_t;

enum { PLAN_SLEEP_YIELD, PLAN_SLEEP_HOUR, PLAN_YIELD3, PLAN_FAIL, PLAN_IGNORE_CANCEL };

static int body(arbor_ctx_t *cx, void *arg) {
  fib_t *f = arg;
  volatile int local = 0;
  f->frame = (uintptr_t)&local;
  f->cx = cx;
  switch (f->plan) {
  case PLAN_SLEEP_YIELD:
    if ((f->rc = arbor_sleep(cx, 1)) < 0 || (f->rc = arbor_yield(cx)) < 0 ||
        (f->rc = arbor_sleep(cx, 0)) < 0)
      return f->rc;
    f->steps = 3;
    return 0;
  case PLAN_SLEEP_HOUR:
    f->rc = arbor_sleep(cx, HOUR);
    f->first_cancel_rc = f->rc;
    return f->rc;
  case PLAN_YIELD3:
    for (int i = 0; i < 3; i++) {
      if ((f->rc = arbor_yield(cx)) < 0)
        return f->rc;
      f->steps++;
    }
    return 0;
  case PLAN_FAIL:
    arbor_yield(cx);
    return -EIO;
  case PLAN_IGNORE_CANCEL:
    /* Level-triggered: after the cancel, every checkpoint says so at once. */
    f->first_cancel_rc = arbor_sleep(cx, HOUR);
    for (int i = 0; i < 5; i++) {
      if (arbor_sleep(cx, 0) == ARBOR_ECANCELED)
        f->ecanceled++;
      if (arbor_yield(cx) == ARBOR_ECANCELED)
        f->ecanceled++;
    }
    return ARBOR_ECANCELED;
  }
  return 0;
}

static void on_finish(arbor_node_t *node, void *arg) {
  (void)node;
  ((fib_t *)arg)->finishes++;
}

static arbor_node_t *spawn_fib(arbor_node_t *parent, fib_t *f, const char *name) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = name, .fn = body, .arg = f, .finish = on_finish};
  assert_code(arbor_fiber_spawn(parent, &spec, &n), 0);
  return n;
}

#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 1000 && !(cond); k_++)                                           \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    assert_true(cond);                                                                 \
  } while (0)

static void fiber_runs_to_completion(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.plan = PLAN_SLEEP_YIELD};
  arbor_node_t *n;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  n = spawn_fib(arbor_root(rt), &f, "sleeper");
  assert_state(n, CREATED);
  run_once_until(&loop, f.finishes == 1);
  assert_int_eq(f.steps, 3);
  assert_outcome(n, OK);
  assert_path(rt, n, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* A fiber returning a negative code fails, and (rule 2) its group cancels the
 * sibling fiber, whose sleep returns ARBOR_ECANCELED: it ends CANCELLED. */
static void fiber_failure_cancels_sibling_fiber(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t bad = {.plan = PLAN_FAIL}, sleeper = {.plan = PLAN_SLEEP_HOUR};
  arbor_node_t *g, *a, *b;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  g = arbor_test_group(arbor_root(rt), "g");
  b = spawn_fib(g, &sleeper, "sleeper");
  a = spawn_fib(g, &bad, "bad");
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  run_once_until(&loop, arbor_node_is_finished(g));
  assert_outcome(a, FAILED);
  assert_code(arbor_error_code(arbor_node_error(a)), -EIO);
  assert_int_eq(sleeper.first_cancel_rc, ARBOR_ECANCELED);
  assert_outcome(b, CANCELLED);
  assert_outcome(g, FAILED);
  assert_int_eq(arbor_error_child_count(arbor_node_error(g)), 1);
  arbor_test_close(rt, &loop);
}

/* Rule 4: a fiber parked in sleep wakes with ARBOR_ECANCELED when cancelled, and
 * every later checkpoint returns it at once, without waiting. */
static void rule4_checkpoints_return_ecanceled_level_triggered(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.plan = PLAN_IGNORE_CANCEL};
  arbor_node_t *n;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  n = spawn_fib(arbor_root(rt), &f, "persistent");
  arbor_test_run_until(&loop, f.cx != NULL);
  arbor_test_spin(&loop, 3);
  assert_state(n, STARTED);      /* parked in a 1-hour sleep */
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, f.finishes == 1);
  assert_int_eq(f.first_cancel_rc, ARBOR_ECANCELED);
  assert_int_eq(f.ecanceled, 10);
  assert_outcome(n, CANCELLED);  /* ECANCELED after a cancel is not a failure */
  assert_null(arbor_node_error(n));
  arbor_test_close(rt, &loop);
}

/* Rule 4 for yield: a fiber cancelled while queued to resume sees the cancel. */
static void rule4_yield_returns_ecanceled_when_cancelled_while_queued(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.plan = PLAN_YIELD3};
  arbor_node_t *n;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  n = spawn_fib(arbor_root(rt), &f, "yielder");
  arbor_test_run_until(&loop, f.cx != NULL);   /* started, yielded once: queued */
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, f.finishes == 1);
  assert_int_eq(f.rc, ARBOR_ECANCELED);
  assert_true(f.steps < 3);
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* Checkpoints only from their own fiber; callback-body calls refuse fibers. */
static void fiber_misuse_is_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.plan = PLAN_SLEEP_HOUR};
  arbor_node_t *n;
  arbor_fiber_spec_t no_fn = {.name = "x"};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt), &no_fn, NULL), ARBOR_EINVAL);
  assert_code(arbor_fiber_spawn(NULL, &no_fn, NULL), ARBOR_EINVAL);
  n = spawn_fib(arbor_root(rt), &f, "f");
  arbor_test_run_until(&loop, f.cx != NULL);
  assert_code(arbor_yield(f.cx), ARBOR_ESTATE);          /* from the loop's stack */
  assert_code(arbor_sleep(f.cx, 0), ARBOR_ESTATE);
  assert_code(arbor_yield(NULL), ARBOR_EINVAL);
  assert_code(arbor_task_done(n), ARBOR_EKIND);
  assert_code(arbor_task_fail(n, -EIO, "no"), ARBOR_EKIND);
  assert_code(arbor_task_after(n, 0, NULL), ARBOR_EINVAL);
  assert_null(arbor_task_data(n));
  assert_ptr_equal(arbor_ctx_node(f.cx), n);
  assert_state(n, STARTED);
  arbor_test_close(rt, &loop);
  assert_int_eq(f.first_cancel_rc, ARBOR_ECANCELED);     /* the close cancelled it */
}

/* A stack goes back to the pool when its fiber ends and is reused as it is. */
static void fiber_stack_reused_from_pool(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t a = {.plan = PLAN_YIELD3}, b = {.plan = PLAN_YIELD3};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  spawn_fib(arbor_root(rt), &a, "a");
  run_once_until(&loop, a.finishes == 1);
  spawn_fib(arbor_root(rt), &b, "b");
  run_once_until(&loop, b.finishes == 1);
  assert_true(a.frame != 0);
  assert_true(a.frame == b.frame);   /* same stack, same depth: same address */
  arbor_test_close(rt, &loop);
}

/* Many fibers interleave through yield; closing the runtime with fibers parked in
 * long sleeps cancels them all and still closes the loop cleanly. */
static void fiber_many_then_close_with_sleepers(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  enum { N = 200 };
  fib_t y[N], s[N];
  arbor_node_t *g;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  g = arbor_test_group(arbor_root(rt), "g");
  for (int i = 0; i < N; i++) {
    y[i] = (fib_t){.plan = PLAN_YIELD3};
    s[i] = (fib_t){.plan = PLAN_SLEEP_HOUR};
    spawn_fib(g, &y[i], "y");
    spawn_fib(arbor_root(rt), &s[i], "s");
  }
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  run_once_until(&loop, arbor_node_is_finished(g));
  assert_outcome(g, OK);
  for (int i = 0; i < N; i++)
    assert_int_eq(y[i].steps, 3);
  arbor_test_close(rt, &loop);
  for (int i = 0; i < N; i++) {
    assert_int_eq(s[i].first_cancel_rc, ARBOR_ECANCELED);
    assert_int_eq(s[i].finishes, 1);
  }
}

/* The snapshot shows where a parked fiber waits (checkpoint, file:line, since
 * when) and how much of its stack it has used. */
static int snapshot_line;
static int snap_body(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  volatile char deep[3000];      /* make the high-water mark visible */
  memset((char *)deep, 1, sizeof deep);
  snapshot_line = __LINE__ + 1;
  return arbor_sleep(cx, HOUR) + deep[5] - 1;
}

static void fiber_snapshot_shows_wait_site_and_stack(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *n;
  arbor_probe_t p = {0};
  arbor_fiber_info_t fi;
  arbor_fiber_spec_t spec = {.name = "snap", .fn = snap_body};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt), &spec, &n), 0);
  assert_code(arbor_node_fiber_info(n, &fi), 0);
  assert_null(fi.wait_what);                 /* not started: no stack either */
  assert_uint_eq(fi.stack_size, 0);
  arbor_test_run_until(&loop, snapshot_line != 0);
  arbor_test_spin(&loop, 2);
  assert_code(arbor_node_fiber_info(n, &fi), 0);
  assert_string_equal(fi.wait_what, "sleep");
  assert_non_null(strstr(fi.wait_file, "test_fiber.c"));
  assert_int_eq(fi.wait_line, snapshot_line);
  assert_true(fi.wait_since_ns > 0);
  assert_uint_eq(fi.stack_size, 64 * 1024);
  assert_true(fi.stack_high_water >= 3000 && fi.stack_high_water < fi.stack_size);
  /* the tree text names it too */
  char buf[4096] = {0};
  FILE *mem = fmemopen(buf, sizeof buf - 1, "w");
  assert_non_null(mem);
  arbor_tree_print(arbor_root(rt), mem);
  fclose(mem);
  assert_non_null(strstr(buf, "in sleep at"));
  /* not a fiber */
  arbor_node_t *t = arbor_test_spawn(arbor_root(rt), &p, "cb", 0);
  assert_code(arbor_node_fiber_info(t, &fi), ARBOR_EKIND);
  assert_code(arbor_node_fiber_info(NULL, &fi), ARBOR_EINVAL);
  arbor_test_close(rt, &loop);
}

/* A fiber fails with an error chain of its own: the chain reaches its group. */
static int chain_body(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_node_t *self = arbor_ctx_node(cx);
  if (arbor_task_started(self) != ARBOR_EKIND)      /* fibers use arbor_fiber_started */
    return -EINVAL;
  arbor_error_t *cause = arbor_error_new(-ECONNREFUSED, "connect to db refused");
  return arbor_fiber_fail_error(cx, arbor_error_wrap(cause, ARBOR_EFAILED, "pool unavailable"));
}

static void fiber_fails_with_its_own_error_chain(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *g, *n;
  arbor_fiber_spec_t spec = {.name = "chain", .fn = chain_body};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  g = arbor_test_group(arbor_root(rt), "g");
  assert_code(arbor_fiber_spawn(g, &spec, &n), 0);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  const arbor_error_t *e = arbor_node_error(n);
  assert_code(arbor_error_code(e), ARBOR_EFAILED);
  assert_string_equal(arbor_error_message(e), "pool unavailable");
  assert_uint_eq(arbor_error_node_id(e), arbor_node_id(n));
  assert_code(arbor_error_code(arbor_error_cause(e)), -ECONNREFUSED);
  assert_ptr_equal(arbor_error_child(arbor_node_error(g), 0), e);
  assert_code(arbor_fiber_fail_error(NULL, NULL), ARBOR_EINVAL);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest fiber_tests[] = {
    cmocka_unit_test(fiber_fails_with_its_own_error_chain),
    cmocka_unit_test(fiber_snapshot_shows_wait_site_and_stack),
    cmocka_unit_test(fiber_runs_to_completion),
    cmocka_unit_test(fiber_failure_cancels_sibling_fiber),
    cmocka_unit_test(rule4_checkpoints_return_ecanceled_level_triggered),
    cmocka_unit_test(rule4_yield_returns_ecanceled_when_cancelled_while_queued),
    cmocka_unit_test(fiber_misuse_is_refused),
    cmocka_unit_test(fiber_stack_reused_from_pool),
    cmocka_unit_test(fiber_many_then_close_with_sleepers),
};

ARBOR_TEST_MAIN(fiber_tests)
