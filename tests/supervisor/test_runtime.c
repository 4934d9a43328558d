/* test_runtime.c - runtime creation, close and arbor_run. */
#include "harness.h"

#include <signal.h>

static void runtime_new_and_accessors(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *root;
  arbor_node_info_t info;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  assert_ptr_equal(arbor_runtime_loop(rt), &loop);
  root = arbor_root(rt);
  assert_non_null(root);
  assert_ptr_equal(arbor_root(rt), root);
  assert_int_eq(arbor_node_kind(root), ARBOR_KIND_ROOT);
  assert_null(arbor_node_parent(root));
  assert_ptr_equal(arbor_node_runtime(root), rt);
  assert_ptr_equal(arbor_node_find(rt, arbor_node_id(root)), root);
  arbor_node_info(root, &info);
  assert_uint_eq(info.parent_id, 0);
  assert_uint_eq(info.id, arbor_node_id(root));
  assert_true(info.id != 0);
  assert_uint_eq(info.children, 0);
  assert_false(arbor_node_is_finished(root));
  arbor_test_close(rt, &loop);
}

static void runtime_new_rejects_bad_arguments(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt = NULL;
  (void)state;
  assert_int_eq(uv_loop_init(&loop), 0);
  assert_code(arbor_runtime_new(NULL, &loop, NULL), ARBOR_EINVAL);
  assert_code(arbor_runtime_new(&rt, NULL, NULL), ARBOR_EINVAL);
  assert_null(rt);
  assert_code(arbor_runtime_close(NULL, NULL, NULL), ARBOR_EINVAL);
  assert_int_eq(uv_loop_close(&loop), 0); /* nothing was added to the loop */
}

/* Closing an empty runtime: the callback runs from the loop, once. */
static void runtime_close_empty(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_close(rt, &loop);
}

/* Closing twice: EALREADY, and the first callback still runs exactly once. */
static void runtime_close_twice_ealready(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  int closed, second = 0;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_close_begin(rt, &closed);
  assert_code(arbor_runtime_close(rt, arbor_test_close_cb_, &second), ARBOR_EALREADY);
  arbor_test_close_end(&loop, &closed);
  assert_int_eq(second, 0);
}

/* A NULL close callback is allowed. */
static void runtime_close_without_callback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_runtime_close(rt, NULL, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* Close with a live tree: everything is cancelled and FINISHED (finish callbacks run)
 * before the close callback; the 1-hour timer never fires; the loop closes clean. */
static int close_order;
static void close_cb_order(arbor_runtime_t *rt, void *arg) {
  (void)rt;
  (void)arg;
  close_order = arbor_test_next_order();
}

static void runtime_close_cancels_live_tree(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_timer_plan_t plan = {0};
  arbor_probe_t p[4] = {{0}}, g = {0};
  arbor_node_t *grp;
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  plan.timeout_ms = 3600 * 1000;
  arbor_test_spawn_timer(arbor_root(rt), &plan, "sleeper");
  grp = arbor_test_group(arbor_root(rt), "grp");
  arbor_test_spawn(grp, &p[0], "plain", 0);
  p[1].cancel_action = ARBOR_PROBE_CANCEL_DONE;
  arbor_test_spawn(grp, &p[1], "hook-done", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_spawn(grp, &p[2], "handshake", ARBOR_PROBE_HANDSHAKE);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, plan.starts && p[0].starts && p[1].starts && p[2].starts);
  arbor_test_spawn(grp, &p[3], "never-started", 0); /* still CREATED at close */

  close_order = 0;
  assert_code(arbor_runtime_close(rt, close_cb_order, NULL), 0);
  assert_int_eq(close_order, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(close_order > 0);

  assert_int_eq(plan.fired, 0);
  assert_int_eq(plan.finishes, 1);
  assert_true(plan.timer_closing_at_finish);
  assert_outcome_eq(plan.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_true(plan.finish_order < close_order);
  for (i = 0; i < 4; i++) {
    assert_int_eq(p[i].finishes, 1);
    assert_outcome_eq(p[i].finish_outcome, ARBOR_OUTCOME_CANCELLED);
    assert_true(p[i].finish_order < g.finish_order);
  }
  assert_int_eq(p[1].cancels, 1);
  assert_int_eq(p[3].starts, 0);
  assert_int_eq(g.finishes, 1);
  assert_outcome_eq(g.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_true(g.finish_order < close_order);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* Close waits for a task whose custom hook has not ended it yet. */
static void runtime_close_waits_for_stopping_task(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  int closed;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "slow", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  arbor_test_close_begin(rt, &closed);
  arbor_test_run_until(&loop, p.cancels > 0);
  arbor_test_spin(&loop, 50);
  assert_int_eq(closed, 0);
  assert_state(t, STOPPING);
  assert_int_eq(p.finishes, 0);
  assert_code(arbor_task_done(t), 0);
  arbor_test_close_end(&loop, &closed);
  assert_int_eq(p.finishes, 1);
  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_CANCELLED);
}

/* Spawning while the runtime closes is refused; nothing is called. */
static void runtime_spawn_while_closing_eclosing(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_task_spec_t spec;
  arbor_node_t *t = NULL, *g = NULL;
  int closed;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  arbor_test_close_begin(rt, &closed);
  spec = arbor_probe_spec(&p, "late", 0);
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), ARBOR_ECLOSING);
  assert_code(arbor_group_new(arbor_root(rt), NULL, &g), ARBOR_ECLOSING);
  arbor_test_close_end(&loop, &closed);
  assert_int_eq(p.starts, 0);
  assert_int_eq(p.finishes, 0);
}

/* arbor_run: a small tree that finishes returns 0, and everything is cleaned up. */
static void runtime_run_returns_zero_when_tree_finishes(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_timer_plan_t a = {0}, b = {0}, c = {0};
  arbor_probe_t g = {0};
  arbor_node_t *grp;
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);

  a.action = b.action = c.action = ARBOR_TIMER_DONE;
  grp = arbor_test_group(arbor_root(rt), "grp");
  arbor_test_spawn_timer(grp, &a, "a");
  arbor_test_spawn_timer(grp, &b, "b");
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  c.timeout_ms = 1;
  arbor_test_spawn_timer(arbor_root(rt), &c, "c");

  assert_code(arbor_run(rt), 0);
  assert_int_eq(a.finishes + b.finishes + c.finishes, 3);
  assert_outcome_eq(a.finish_outcome, ARBOR_OUTCOME_OK);
  assert_outcome_eq(b.finish_outcome, ARBOR_OUTCOME_OK);
  assert_outcome_eq(c.finish_outcome, ARBOR_OUTCOME_OK);
  assert_int_eq(g.finishes, 1);
  assert_outcome_eq(g.finish_outcome, ARBOR_OUTCOME_OK);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* arbor_run with an empty tree returns 0 at once. */
static void runtime_run_empty_tree(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);
  assert_code(arbor_run(rt), 0);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* arbor_run returns the code of the first top-level failure. */
static void runtime_run_returns_first_top_level_failure(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_timer_plan_t a = {0}, ok = {0};
  arbor_probe_t b = {0};
  arbor_node_t *tb;
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);

  tb = arbor_test_spawn(arbor_root(rt), &b, "second-failure", 0);
  a.action = ARBOR_TIMER_FAIL;
  a.code = -EIO;
  a.also_fail = tb; /* b fails right after a, from the same callback */
  a.also_code = -EPIPE;
  arbor_test_spawn_timer(arbor_root(rt), &a, "first-failure");
  ok.action = ARBOR_TIMER_DONE;
  arbor_test_spawn_timer(arbor_root(rt), &ok, "fine");

  assert_code(arbor_run(rt), -EIO);
  assert_outcome_eq(a.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_outcome_eq(b.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_outcome_eq(ok.finish_outcome, ARBOR_OUTCOME_OK);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* arbor_run: a STARTED task with nothing left to wake it is a deadlock: EDEADLK, and
 * the task is cancelled. */
static void runtime_run_deadlock_edeadlk(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t p = {0}, q = {0};
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);

  arbor_test_spawn(arbor_root(rt), &p, "waits-forever", 0);
  q.done_in_start = 1;
  arbor_test_spawn(arbor_root(rt), &q, "finishes", 0);
  assert_code(arbor_run(rt), ARBOR_EDEADLK);
  assert_int_eq(p.starts, 1);
  assert_int_eq(p.finishes, 1);
  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_outcome_eq(q.finish_outcome, ARBOR_OUTCOME_OK);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* Rule 8: arbor_run's shutdown gives up on a task whose cancel hook never ends it
 * (nothing in the loop can end it any more) with an error, instead of hanging or
 * spinning: EDEADLK, the task FAILED with an EDEADLK chain, the loop closes. */
static void rule8_run_gives_up_on_task_that_never_ends(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t p = {0};
  arbor_node_t *g;
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);
  g = arbor_test_group(arbor_root(rt), "g");
  p.cancel_action = ARBOR_PROBE_CANCEL_STAY;   /* the hook records and returns */
  arbor_test_spawn(g, &p, "stuck", ARBOR_PROBE_CUSTOM_CANCEL);
  assert_code(arbor_run(rt), ARBOR_EDEADLK);
  assert_int_eq(p.cancels, 1);
  assert_int_eq(p.finishes, 1);
  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* Closing from inside a callback (a task deciding to shut everything down). */
struct closer {
  arbor_probe_t probe;          /* first: start/finish use it */
  arbor_runtime_t *rt;
  int close_rc, closed;
};

static int close_from_start(arbor_node_t *task, void *arg) {
  struct closer *c = arg;
  (void)task;
  c->probe.starts++;
  c->close_rc = arbor_runtime_close(c->rt, arbor_test_close_cb_, &c->closed);
  return 0;
}

static void runtime_close_from_inside_a_callback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  struct closer c;
  arbor_probe_t other = {0};
  arbor_task_spec_t spec;
  arbor_node_t *t;
  (void)state;
  memset(&c, 0, sizeof c);
  arbor_test_open(&loop, &rt, NULL);

  c.rt = rt;
  arbor_test_spawn(arbor_root(rt), &other, "other", 0);
  spec = arbor_probe_spec(&c.probe, "closer", 0);
  spec.start = close_from_start;
  spec.arg = &c;
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_code(c.close_rc, 0);
  assert_int_eq(c.closed, 1);
  assert_int_eq(c.probe.finishes, 1);
  assert_outcome_eq(c.probe.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_int_eq(other.finishes, 1);
  assert_outcome_eq(other.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* An idle runtime does not keep the loop alive: with every node FINISHED (or
 * waiting with nothing to wake it), uv_run returns instead of blocking. */
static void runtime_idle_does_not_keep_loop_alive(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0}, q = {0};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  uv_run(&loop, UV_RUN_DEFAULT);         /* empty: returns */
  p.done_in_start = 1;
  arbor_test_spawn(arbor_root(rt), &p, "quick", 0);
  uv_run(&loop, UV_RUN_DEFAULT);         /* runs it, then returns */
  assert_int_eq(p.finishes, 1);
  arbor_test_spawn(arbor_root(rt), &q, "waits", 0);
  uv_run(&loop, UV_RUN_DEFAULT);         /* starts it, then nothing left: returns */
  assert_int_eq(q.starts, 1);
  assert_int_eq(q.finishes, 0);
  assert_int_eq(uv_loop_alive(&loop), 0);
  arbor_test_close(rt, &loop);
  assert_outcome_eq(q.finish_outcome, ARBOR_OUTCOME_CANCELLED);
}

/* arbor_run: a failing top-level group makes arbor_run return its code, EGROUP. */
static void runtime_run_group_failure_returns_egroup(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_timer_plan_t a = {0}, b = {0};
  arbor_probe_t g = {0};
  arbor_node_t *grp;
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);

  grp = arbor_test_group(arbor_root(rt), "grp");
  a.action = ARBOR_TIMER_FAIL;
  a.code = -ENOEXEC;
  arbor_test_spawn_timer(grp, &a, "fails");
  b.timeout_ms = 3600 * 1000;
  arbor_test_spawn_timer(grp, &b, "sleeps");
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  assert_code(arbor_run(rt), ARBOR_EGROUP);
  assert_outcome_eq(g.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_outcome_eq(a.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_outcome_eq(b.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_int_eq(b.fired, 0);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* arbor_run with signals: SIGTERM cancels the whole tree; cancellation is no
 * failure, so it returns 0. */
static void raise_sigterm(uv_timer_t *timer) {
  (void)timer;
  raise(SIGTERM);
}

static void runtime_run_sigterm_cancels_tree(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_timer_plan_t sleeper = {0};
  arbor_probe_t p = {0};
  uv_timer_t kick;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);   /* signals on */

  sleeper.timeout_ms = 3600 * 1000;
  arbor_test_spawn_timer(arbor_root(rt), &sleeper, "sleeper");
  arbor_test_spawn(arbor_root(rt), &p, "waiter", ARBOR_PROBE_CUSTOM_CANCEL);
  p.cancel_action = ARBOR_PROBE_CANCEL_DONE;
  assert_int_eq(uv_timer_init(&loop, &kick), 0);
  assert_int_eq(uv_timer_start(&kick, raise_sigterm, 0, 0), 0);
  uv_unref((uv_handle_t *)&kick);
  assert_code(arbor_run(rt), 0);
  assert_outcome_eq(sleeper.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_int_eq(p.cancels, 1);
  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  uv_close((uv_handle_t *)&kick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* A reference that is never dropped dies with the runtime (no leak under ASan). */
static void runtime_close_frees_referenced_nodes(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t p[3] = {{0}};
  int i;
  (void)state;
  opts.retain_finished = 1;
  arbor_test_open(&loop, &rt, &opts);

  for (i = 0; i < 3; i++) {
    p[i].done_in_start = 1;
    arbor_test_spawn(arbor_root(rt), &p[i], "t", 0);
  }
  arbor_node_ref(p[0].node);             /* will be evicted, kept by the reference */
  arbor_node_ref(p[2].node);             /* retained */
  arbor_test_run_until(&loop, p[0].finishes && p[1].finishes && p[2].finishes);
  arbor_test_spin(&loop, 5);
  assert_null(arbor_node_find(rt, p[0].id));
  arbor_test_close(rt, &loop);
}

/* A callback closes the runtime while arbor_run runs it: arbor_run returns once the
 * close is complete and never touches the freed runtime (ASan checks). */
static int close_rt_in_start(arbor_node_t *task, void *arg) {
  struct closer *c = arg;
  (void)task;
  c->probe.starts++;
  c->close_rc = arbor_runtime_close(c->rt, arbor_test_close_cb_, &c->closed);
  return 0;
}

static void runtime_run_survives_close_from_a_callback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  struct closer c;
  memset(&c, 0, sizeof c);
  arbor_task_spec_t spec = {.name = "closer", .start = close_rt_in_start, .arg = &c};
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);
  c.rt = rt;
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, NULL), 0);
  assert_code(arbor_run(rt), 0);
  assert_int_eq(c.close_rc, 0);
  assert_int_eq(c.closed, 1);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* A uv_stop from a handle of the program's own ends arbor_run like a signal would,
 * without calling it a deadlock: the loop was not empty. */
static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }
static void never_fires(arbor_node_t *task, void *arg) {
  (void)task;
  (void)arg;
  fail_msg("a 1-hour timer fired");
}
static int sleep_an_hour(arbor_node_t *task, void *arg) {
  (void)arg;
  return arbor_task_after(task, 3600u * 1000u, never_fires);
}

static void runtime_run_uv_stop_is_not_deadlock(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  uv_timer_t mine;
  arbor_node_t *task;
  arbor_task_spec_t spec = {.name = "sleeper", .start = sleep_an_hour};
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);
  assert_int_eq(uv_timer_init(&loop, &mine), 0);
  assert_int_eq(uv_timer_start(&mine, stop_loop, 1, 0), 0);
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &task), 0);
  assert_code(arbor_run(rt), 0);      /* the close cancelled the sleeper: no failure */
  uv_close((uv_handle_t *)&mine, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_eq(uv_loop_close(&loop), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(runtime_run_survives_close_from_a_callback),
    cmocka_unit_test(runtime_run_uv_stop_is_not_deadlock),
    cmocka_unit_test(runtime_new_and_accessors),
    cmocka_unit_test(runtime_new_rejects_bad_arguments),
    cmocka_unit_test(runtime_close_empty),
    cmocka_unit_test(runtime_close_twice_ealready),
    cmocka_unit_test(runtime_close_without_callback),
    cmocka_unit_test(runtime_close_cancels_live_tree),
    cmocka_unit_test(runtime_close_waits_for_stopping_task),
    cmocka_unit_test(runtime_spawn_while_closing_eclosing),
    cmocka_unit_test(runtime_run_returns_zero_when_tree_finishes),
    cmocka_unit_test(runtime_run_empty_tree),
    cmocka_unit_test(runtime_run_returns_first_top_level_failure),
    cmocka_unit_test(runtime_run_deadlock_edeadlk),
    cmocka_unit_test(rule8_run_gives_up_on_task_that_never_ends),
    cmocka_unit_test(runtime_close_from_inside_a_callback),
    cmocka_unit_test(runtime_idle_does_not_keep_loop_alive),
    cmocka_unit_test(runtime_run_group_failure_returns_egroup),
    cmocka_unit_test(runtime_run_sigterm_cancels_tree),
    cmocka_unit_test(runtime_close_frees_referenced_nodes),
};

ARBOR_TEST_MAIN(tests)
