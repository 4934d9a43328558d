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

/* ---- more: dropped on every way a body ends, STOPPING tasks, fan-out, close ---- */

#define HOUR_MS (3600u * 1000u)

typedef struct {
  arbor_probe_t probe;          /* first: the probe callbacks get this struct */
  int fired, other_fired, fired_order;
  int done_on_fire;
  int ticks_left;
  uint64_t rearm_ms;
  void *arg_seen;
  arbor_node_t *task_seen;
  int arm_rc;
} tt_t;

static int fire_counter;

static void on_fire(arbor_node_t *task, void *arg) {
  tt_t *t = arg;
  t->fired++;
  t->fired_order = ++fire_counter;
  t->arg_seen = arg;
  t->task_seen = task;
  if (t->ticks_left > 0) {
    t->ticks_left--;
    t->arm_rc = arbor_task_after(task, t->rearm_ms, on_fire);
    return;
  }
  if (t->done_on_fire)
    arbor_task_done(task);
}

static void on_other(arbor_node_t *task, void *arg) {
  tt_t *t = arg;
  (void)task;
  t->other_fired++;
}

static arbor_node_t *spawn_tt(arbor_node_t *parent, tt_t *t, int flags) {
  return arbor_test_spawn(parent, &t->probe, "timed", flags);
}

static void timer_after_fires_once_from_loop(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tt_t t;
  arbor_node_t *task;
  (void)state;
  memset(&t, 0, sizeof t);
  arbor_test_open(&loop, &rt, NULL);
  t.done_on_fire = 1;
  task = spawn_tt(arbor_root(rt), &t, 0);
  arbor_test_run_until(&loop, t.probe.starts > 0);
  assert_code(arbor_task_after(task, 0, on_fire), 0);
  assert_int_eq(t.fired, 0);                      /* never from inside the call */
  run_once_until(&loop, t.probe.finishes > 0);
  assert_int_eq(t.fired, 1);
  assert_ptr_equal(t.task_seen, task);
  assert_ptr_equal(t.arg_seen, &t);               /* the task's arg */
  assert_outcome(task, OK);
  arbor_test_close(rt, &loop);
}

/* "unless the body has ended by then": done, fail and the default cancel hook
 * drop the pending timer and the task does not wait for it. */
static void timer_after_dropped_when_body_ends(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tt_t a, b, c;
  arbor_node_t *ta, *tb, *tc;
  (void)state;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  arbor_test_open(&loop, &rt, NULL);
  ta = spawn_tt(arbor_root(rt), &a, 0);
  tb = spawn_tt(arbor_root(rt), &b, 0);
  tc = spawn_tt(arbor_root(rt), &c, 0);
  arbor_test_run_until(&loop, a.probe.starts && b.probe.starts && c.probe.starts);
  assert_code(arbor_task_after(ta, 0, on_fire), 0);
  assert_code(arbor_task_after(tb, 0, on_fire), 0);
  assert_code(arbor_task_after(tc, HOUR_MS, on_fire), 0);
  assert_code(arbor_task_done(ta), 0);
  assert_code(arbor_task_fail(tb, -EIO, "gone"), 0);
  assert_code(arbor_node_cancel(tc), 0);
  uv_run(&loop, UV_RUN_DEFAULT);                 /* returns: the 1-hour one is gone */
  assert_int_eq(a.fired + b.fired + c.fired, 0);
  assert_int_eq(a.probe.finishes + b.probe.finishes + c.probe.finishes, 3);
  assert_outcome(ta, OK);
  assert_outcome(tb, FAILED);
  assert_outcome(tc, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* A task with a custom cancel hook still runs while STOPPING: its timer fires. */
static void hook_arms_cleanup_timer(arbor_node_t *task, void *arg) {
  tt_t *t = arg;
  t->probe.cancels++;
  t->done_on_fire = 1;
  t->arm_rc = arbor_task_after(task, 0, on_fire);
}

static void timer_after_fires_while_stopping(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tt_t t;
  arbor_task_spec_t spec;
  arbor_node_t *task;
  (void)state;
  memset(&t, 0, sizeof t);
  arbor_test_open(&loop, &rt, NULL);
  spec = arbor_probe_spec(&t.probe, "slow-stop", 0);
  spec.cancel = hook_arms_cleanup_timer;
  spec.arg = &t;
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &task), 0);
  arbor_test_run_until(&loop, t.probe.starts > 0);
  assert_code(arbor_node_cancel(task), 0);
  arbor_test_run_until(&loop, t.probe.cancels > 0);
  assert_code(t.arm_rc, 0);
  assert_state(task, STOPPING);
  run_once_until(&loop, t.probe.finishes > 0);
  assert_int_eq(t.fired, 1);
  assert_outcome(task, CANCELLED);
  assert_path(rt, task, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* 64 tasks, timeouts 0..7 ms, some re-armed, some stopped: every remaining one
 * fires once, none fires before one with an earlier deadline, stopped ones never. */
#define NT 64
static void timer_after_fire_in_deadline_order(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  static tt_t t[NT];
  arbor_node_t *task[NT];
  uint64_t ms[NT];
  int i, j, expect_fired = 0;
  unsigned seed = 12345;
  (void)state;
  memset(t, 0, sizeof t);
  fire_counter = 0;
  arbor_test_open(&loop, &rt, NULL);
  for (i = 0; i < NT; i++)
    task[i] = spawn_tt(arbor_root(rt), &t[i], 0);
  arbor_test_run_until(&loop, t[NT - 1].probe.starts > 0);
  uv_update_time(&loop);
  for (i = 0; i < NT; i++) {
    seed = seed * 1103515245u + 12345u;
    ms[i] = (seed >> 16) % 8;
    t[i].done_on_fire = 1;
    assert_code(arbor_task_after(task[i], ms[i], on_fire), 0);
  }
  for (i = 0; i < NT; i += 5) {
    ms[i] = 7 - ms[i];
    assert_code(arbor_task_after(task[i], ms[i], on_fire), 0);
  }
  for (i = 3; i < NT; i += 7)
    assert_code(arbor_task_after_stop(task[i]), 0);
  for (i = 0; i < NT; i++)
    if (!(i >= 3 && (i - 3) % 7 == 0))
      expect_fired++;
  run_once_until(&loop, fire_counter == expect_fired);
  arbor_test_spin(&loop, 5);
  assert_int_eq(fire_counter, expect_fired);
  for (i = 0; i < NT; i++)
    assert_int_eq(t[i].fired, (i >= 3 && (i - 3) % 7 == 0) ? 0 : 1);
  for (i = 0; i < NT; i++)
    for (j = 0; j < NT; j++)
      if (t[i].fired && t[j].fired && ms[i] < ms[j] && t[i].fired_order > t[j].fired_order)
        fail_msg("task %d (%ju ms) fired after task %d (%ju ms)", i, (uintmax_t)ms[i], j,
                 (uintmax_t)ms[j]);
  for (i = 0; i < NT; i++)
    if (!t[i].fired) {
      assert_state(task[i], STARTED);
      assert_code(arbor_task_done(task[i]), 0);
    }
  arbor_test_close(rt, &loop);
}

#define FAN 1000
static void timer_after_wide_fan_out(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  static tt_t t[FAN];
  arbor_node_t *g;
  arbor_probe_t gp = {0};
  int i, finished;
  (void)state;
  memset(t, 0, sizeof t);
  arbor_test_open(&loop, &rt, NULL);
  g = arbor_test_group(arbor_root(rt), "fan");
  for (i = 0; i < FAN; i++) {
    t[i].done_on_fire = 1;
    spawn_tt(g, &t[i], 0);
  }
  assert_code(arbor_group_join(g, arbor_probe_join_cb, &gp), 0);
  arbor_test_run_until(&loop, t[FAN - 1].probe.starts > 0);
  for (i = 0; i < FAN; i++)
    assert_code(arbor_task_after(t[i].probe.node, 0, on_fire), 0);
  run_once_until(&loop, gp.finishes > 0);
  for (i = 0, finished = 0; i < FAN; i++)
    finished += t[i].fired == 1 && t[i].probe.finishes == 1;
  assert_int_eq(finished, FAN);
  assert_outcome_eq(gp.finish_outcome, ARBOR_OUTCOME_OK);
  arbor_test_close(rt, &loop);
}

/* A pending timer will wake its task: arbor_run waits for it (no EDEADLK). */
static int arm_in_start(arbor_node_t *task, void *arg) {
  tt_t *t = arg;
  t->probe.starts++;
  t->done_on_fire = 1;
  return arbor_task_after(task, 1, on_fire);
}

static void timer_after_keeps_arbor_run_alive(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  tt_t t;
  arbor_task_spec_t spec;
  (void)state;
  memset(&t, 0, sizeof t);
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);
  spec = arbor_probe_spec(&t.probe, "armed", 0);
  spec.start = arm_in_start;
  spec.arg = &t;
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, NULL), 0);
  assert_code(arbor_run(rt), 0);
  assert_int_eq(t.fired, 1);
  assert_outcome_eq(t.probe.finish_outcome, ARBOR_OUTCOME_OK);
  assert_int_eq(uv_loop_close(&loop), 0);
}

static void timer_after_pending_at_close(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tt_t t[3];
  int i;
  (void)state;
  memset(t, 0, sizeof t);
  arbor_test_open(&loop, &rt, NULL);
  for (i = 0; i < 3; i++)
    spawn_tt(arbor_root(rt), &t[i], 0);
  arbor_test_run_until(&loop, t[2].probe.starts > 0);
  for (i = 0; i < 3; i++)
    assert_code(arbor_task_after(t[i].probe.node, HOUR_MS, on_fire), 0);
  arbor_test_close(rt, &loop);
  for (i = 0; i < 3; i++) {
    assert_int_eq(t[i].fired, 0);
    assert_outcome_eq(t[i].probe.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  }
}

/* Replacing a 0 ms timer by a 1-hour one, then stopping it: nothing fires and
 * nothing keeps the loop alive. */
static void timer_after_replace_then_stop_leaves_loop_idle(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tt_t t;
  arbor_node_t *task;
  (void)state;
  memset(&t, 0, sizeof t);
  arbor_test_open(&loop, &rt, NULL);
  task = spawn_tt(arbor_root(rt), &t, 0);
  arbor_test_run_until(&loop, t.probe.starts > 0);
  assert_code(arbor_task_after(task, 0, on_fire), 0);
  assert_code(arbor_task_after(task, HOUR_MS, on_other), 0);
  arbor_test_spin(&loop, 20);
  assert_int_eq(t.fired + t.other_fired, 0);
  assert_code(arbor_task_after_stop(task), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_eq(t.fired + t.other_fired, 0);
  assert_code(arbor_task_done(task), 0);
  arbor_test_run_until(&loop, t.probe.finishes > 0);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest timer_tests[] = {
    cmocka_unit_test(timer_fires_by_deadline_then_arming_order),
    cmocka_unit_test(timer_dropped_when_task_cancelled),
    cmocka_unit_test(timer_rearm_replaces_and_stop_disarms),
    cmocka_unit_test(timer_zero_rearm_waits_for_next_pass),
    cmocka_unit_test(timer_bad_input),
    cmocka_unit_test(timer_after_fires_once_from_loop),
    cmocka_unit_test(timer_after_dropped_when_body_ends),
    cmocka_unit_test(timer_after_fires_while_stopping),
    cmocka_unit_test(timer_after_fire_in_deadline_order),
    cmocka_unit_test(timer_after_wide_fan_out),
    cmocka_unit_test(timer_after_keeps_arbor_run_alive),
    cmocka_unit_test(timer_after_pending_at_close),
    cmocka_unit_test(timer_after_replace_then_stop_leaves_loop_idle),
};

ARBOR_TEST_MAIN(timer_tests)
