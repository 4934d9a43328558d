/* tests/supervisor/test_timer.c - arbor_task_after, the runtime's task timers
 * (supervisor/timer.c). Order and counts only: nothing asserts a duration. */
#include "harness.h"

/* A task that arms arbor_task_after(timeout) in its start and records the order in
 * which timers fire. */
typedef struct {
  uint64_t timeout;
  int fired;
  int order;
  int rearm_zero;              /* the callback arms a new zero timer, up to 3 times */
} timed_t;

static int fire_order;

static void on_after(arbor_node_t *task, void *arg) {
  timed_t *t = arg;
  t->fired++;
  t->order = ++fire_order;
  if (t->rearm_zero && t->fired < 3) {
    assert_code(arbor_task_after(task, 0, on_after), 0);
    return;
  }
  assert_code(arbor_task_done(task), 0);
}

static int timed_start(arbor_node_t *task, void *arg) {
  timed_t *t = arg;
  return arbor_task_after(task, t->timeout, on_after);
}

static arbor_node_t *spawn_timed(arbor_node_t *parent, timed_t *t, const char *name) {
  arbor_node_t *task = NULL;
  arbor_task_spec_t spec = {.name = name, .start = timed_start, .arg = t};
  assert_code(arbor_task_spawn(parent, &spec, &task), 0);
  return task;
}

/* Runs the loop, blocking, until cond holds (bounded in loop turns, not time). */
#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 1000 && !(cond); k_++)                                           \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    assert_true(cond);                                                                 \
  } while (0)

static void timer_fires_by_deadline_then_arming_order(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  timed_t t[4] = {{.timeout = 30}, {.timeout = 10}, {.timeout = 10}, {.timeout = 0}};
  arbor_node_t *g;
  (void)state;
  fire_order = 0;
  arbor_test_open(&loop, &rt, NULL);
  g = arbor_test_group(arbor_root(rt), "g");
  for (int i = 0; i < 4; i++)
    spawn_timed(g, &t[i], "timed");
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  run_once_until(&loop, arbor_node_is_finished(g));
  assert_int_eq(t[3].order, 1);  /* 0 ms */
  assert_int_eq(t[1].order, 2);  /* 10 ms, armed first */
  assert_int_eq(t[2].order, 3);  /* 10 ms, armed second */
  assert_int_eq(t[0].order, 4);  /* 30 ms */
  assert_outcome(g, OK);
  arbor_test_close(rt, &loop);
}

/* A cancelled task's pending timer is dropped: its callback never runs, and a
 * pending 1-hour timer no longer keeps the loop alive. */
static void timer_dropped_when_task_cancelled(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  timed_t t = {.timeout = 3600u * 1000u};
  arbor_node_t *task;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  task = spawn_timed(arbor_root(rt), &t, "sleeper");
  arbor_test_spin(&loop, 2);
  assert_state(task, STARTED);
  assert_true(uv_loop_alive(&loop));      /* the timer is real pending work */
  assert_code(arbor_node_cancel(task), 0);
  assert_state(task, FINISHED);
  assert_outcome(task, CANCELLED);
  /* Nothing is left to wait for: uv_run must return at once, not in an hour. */
  assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_eq(t.fired, 0);
  arbor_test_close(rt, &loop);
}

/* Arming again replaces the pending timer; stop disarms it. */
static void timer_rearm_replaces_and_stop_disarms(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  timed_t t = {.timeout = 3600u * 1000u};
  arbor_node_t *a, *b;
  timed_t u = {.timeout = 3600u * 1000u};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  a = spawn_timed(arbor_root(rt), &t, "a");
  b = spawn_timed(arbor_root(rt), &u, "b");
  arbor_test_spin(&loop, 2);
  assert_code(arbor_task_after(a, 0, on_after), 0);      /* replaces the 1-hour one */
  assert_code(arbor_task_after_stop(b), 0);
  assert_code(arbor_task_after_stop(b), ARBOR_ENOENT);
  run_once_until(&loop, arbor_node_is_finished(a));
  assert_int_eq(t.fired, 1);
  assert_int_eq(u.fired, 0);
  assert_state(b, STARTED);       /* no timer, but still running */
  assert_code(arbor_task_done(b), 0);
  arbor_test_close(rt, &loop);
}

/* A zero timer armed from a timer callback waits for a later loop pass, so a task
 * that keeps re-arming cannot starve the loop: one pass fires it at most once. */
static void timer_zero_rearm_waits_for_next_pass(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  timed_t t = {.timeout = 0, .rearm_zero = 1};
  arbor_node_t *task;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  task = spawn_timed(arbor_root(rt), &t, "spinner");
  for (int i = 0; i < 100 && t.fired < 3; i++) {
    int before = t.fired;
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(t.fired - before <= 1);
  }
  assert_int_eq(t.fired, 3);
  run_once_until(&loop, arbor_node_is_finished(task));
  assert_outcome(task, OK);
  arbor_test_close(rt, &loop);
}

static void noop_after(arbor_node_t *task, void *arg) {
  (void)task;
  (void)arg;
}

/* Bad input returns a clear code and arms nothing. */
static void timer_bad_input(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *g, *task;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  g = arbor_test_group(arbor_root(rt), "g");
  task = arbor_test_spawn(g, &p, "t", 0);
  assert_code(arbor_task_after(NULL, 0, noop_after), ARBOR_EINVAL);
  assert_code(arbor_task_after(task, 0, NULL), ARBOR_EINVAL);
  assert_code(arbor_task_after(g, 0, noop_after), ARBOR_EKIND);
  assert_code(arbor_task_after(task, 0, noop_after), ARBOR_ESTATE);   /* CREATED */
  assert_code(arbor_task_after_stop(g), ARBOR_EKIND);
  assert_code(arbor_task_after_stop(NULL), ARBOR_EINVAL);
  arbor_test_run_until(&loop, p.starts == 1);
  assert_code(arbor_task_done(task), 0);
  assert_code(arbor_task_after(task, 0, noop_after), ARBOR_ESTATE);   /* body ended */
  assert_code(arbor_task_after_stop(task), ARBOR_ENOENT);
  assert_false(uv_loop_alive(&loop) && !arbor_node_is_finished(task));
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest timer_tests[] = {
    cmocka_unit_test(timer_fires_by_deadline_then_arming_order),
    cmocka_unit_test(timer_dropped_when_task_cancelled),
    cmocka_unit_test(timer_rearm_replaces_and_stop_disarms),
    cmocka_unit_test(timer_zero_rearm_waits_for_next_pass),
    cmocka_unit_test(timer_bad_input),
};

ARBOR_TEST_MAIN(timer_tests)
