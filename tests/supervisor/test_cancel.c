/* test_cancel.c - rule 3: cancelling a node cancels its whole subtree; twice is
 * harmless; a FINISHED node changes nothing and says so. Rule 4 for callback tasks:
 * the cancel hook, and the default hook closing owned handles. */
#include "harness.h"

/* Rule 3: every descendant of the cancelled node is cancelled, down to the
 * grandchildren; nodes outside the subtree are not touched. */
static void rule3_cancel_subtree(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p1 = {0}, p2 = {0}, p3 = {0}, p4 = {0}, p5 = {0}, ps = {0};
  arbor_node_t *g, *g2, *g3, *t1, *t2, *t3, *t4, *t5, *s;
  arbor_node_t *sub[8];
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  /* root
   *   g            <- cancelled
   *     t1
   *     g2
   *       t2, t3 (t3 with a custom hook)
   *     t4
   *       g3
   *         t5
   *   s            <- outside the subtree */
  g = arbor_test_group(arbor_root(rt), "g");
  t1 = arbor_test_spawn(g, &p1, "t1", 0);
  g2 = arbor_test_group(g, "g2");
  t2 = arbor_test_spawn(g2, &p2, "t2", 0);
  t3 = arbor_test_spawn(g2, &p3, "t3", ARBOR_PROBE_CUSTOM_CANCEL);
  t4 = arbor_test_spawn(g, &p4, "t4", 0);
  s = arbor_test_spawn(arbor_root(rt), &ps, "s", 0);
  arbor_test_run_until(&loop, p1.starts && p2.starts && p3.starts && p4.starts && ps.starts);
  g3 = arbor_test_group(t4, "g3");
  t5 = arbor_test_spawn(g3, &p5, "t5", 0);
  arbor_test_run_until(&loop, p5.starts > 0);

  assert_code(arbor_node_cancel(g), 0);
  sub[0] = g, sub[1] = t1, sub[2] = g2, sub[3] = t2, sub[4] = t3, sub[5] = t4;
  sub[6] = g3, sub[7] = t5;
  /* the request reaches the whole subtree at once */
  for (i = 0; i < 8; i++) {
    arbor_node_info_t info;
    arbor_node_info(sub[i], &info);
    if (!arbor_node_is_cancelled(sub[i]) || !info.cancel_requested)
      fail_msg("node %s not cancelled", arbor_node_name(sub[i]));
  }
  arbor_test_run_until(&loop, p3.cancels > 0);
  arbor_test_spin(&loop, 10);
  assert_state(t3, STOPPING);
  assert_false(arbor_node_is_finished(g2));
  assert_false(arbor_node_is_finished(g));
  assert_code(arbor_task_done(t3), 0);
  /* finish callbacks may run a little after the node became FINISHED */
  arbor_test_run_until(&loop, arbor_node_is_finished(g) && p1.finishes && p2.finishes &&
                                  p3.finishes && p4.finishes && p5.finishes);
  arbor_test_spin(&loop, 5);

  for (i = 0; i < 8; i++) {
    assert_state(sub[i], FINISHED);
    assert_outcome(sub[i], CANCELLED);
    assert_null(arbor_node_error(sub[i]));
  }
  assert_int_eq(p1.finishes + p2.finishes + p3.finishes + p4.finishes + p5.finishes, 5);
  /* grandchildren finished before their ancestors */
  assert_true(p5.finish_order < p4.finish_order);
  /* every node FINISHED after its children (rule 1 holds while cancelling) */
  {
    uint64_t fin[8];
    for (i = 0; i < 8; i++)
      fin[i] = arbor_test_state_seq(rt, arbor_node_id(sub[i]), ARBOR_STATE_FINISHED);
    assert_uint_lt(fin[3], fin[2]); /* t2 before g2 */
    assert_uint_lt(fin[4], fin[2]); /* t3 before g2 */
    assert_uint_lt(fin[7], fin[6]); /* t5 before g3 */
    assert_uint_lt(fin[6], fin[5]); /* g3 before t4 */
    assert_uint_lt(fin[1], fin[0]); /* t1, g2, t4 before g */
    assert_uint_lt(fin[2], fin[0]);
    assert_uint_lt(fin[5], fin[0]);
  }
  /* s is untouched */
  assert_state(s, STARTED);
  assert_false(arbor_node_is_cancelled(s));
  assert_int_eq(ps.cancels, 0);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(s), ARBOR_EVENT_CANCEL), 0);
  assert_code(arbor_task_done(s), 0);
  arbor_test_run_until(&loop, ps.finishes > 0);
  assert_outcome(s, OK);
  arbor_test_close(rt, &loop);
}

/* Rule 3: cancelling twice is harmless: 0 both times, the hook runs once, no extra
 * state change, one finish. */
static void rule3_double_cancel_harmless(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(t), 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.cancels > 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_spin(&loop, 10);
  assert_int_eq(p.cancels, 1);
  assert_state(t, STOPPING);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(p.cancels, 1);
  assert_int_eq(p.finishes, 1);
  assert_outcome(t, CANCELLED);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(t), ARBOR_EVENT_CANCEL), 1);
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Rule 3: twice (and more) on a group and its child: one cancel request each. */
static void rule3_double_cancel_group(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *g, *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(g, &p, "t", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(g), 0);
  assert_code(arbor_node_cancel(t), 0); /* STOPPING: cancellation already requested */
  assert_code(arbor_node_cancel(g), 0);
  arbor_test_run_until(&loop, p.cancels > 0);
  assert_code(arbor_node_cancel(g), 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_spin(&loop, 10);
  assert_int_eq(p.cancels, 1);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g) && p.finishes > 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(p.finishes, 1);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(t), ARBOR_EVENT_CANCEL), 1);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(g), ARBOR_EVENT_CANCEL), 1);
  assert_outcome(g, CANCELLED);
  assert_outcome(t, CANCELLED);
  assert_path(rt, g, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Rule 3: a FINISHED node: ARBOR_EFINISHED, and nothing changes (state, outcome,
 * cancel flag, events). */
static void rule3_cancel_finished_node_returns_efinished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0}, f = {0};
  arbor_node_t *t, *failed;
  uint64_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  failed = arbor_test_spawn(arbor_root(rt), &f, "failed", 0);
  arbor_test_run_until(&loop, p.starts && f.starts);
  assert_code(arbor_task_done(t), 0);
  assert_code(arbor_task_fail(failed, -EIO, "gone"), 0);
  arbor_test_run_until(&loop, p.finishes && f.finishes);

  before = arbor_test_recorded(rt);
  assert_code(arbor_node_cancel(t), ARBOR_EFINISHED);
  assert_code(arbor_node_cancel(failed), ARBOR_EFINISHED);
  assert_uint_eq(arbor_test_recorded(rt), before);
  assert_state(t, FINISHED);
  assert_outcome(t, OK);
  assert_false(arbor_node_is_cancelled(t));
  assert_outcome(failed, FAILED);
  assert_code(arbor_error_code(arbor_node_error(failed)), -EIO);
  arbor_test_spin(&loop, 5);
  assert_int_eq(p.finishes, 1);
  assert_int_eq(p.cancels, 0);
  assert_uint_eq(arbor_test_recorded(rt), before);
  arbor_test_close(rt, &loop);
}

/* Rule 3: the root cannot be cancelled (close the runtime instead); NULL is EINVAL. */
static void rule3_cancel_root_returns_ekind(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  uint64_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  before = arbor_test_recorded(rt);
  assert_code(arbor_node_cancel(arbor_root(rt)), ARBOR_EKIND);
  assert_code(arbor_node_cancel(NULL), ARBOR_EINVAL);
  arbor_test_spin(&loop, 5);
  assert_uint_eq(arbor_test_recorded(rt), before);
  assert_state(t, STARTED);
  assert_false(arbor_node_is_cancelled(t));
  assert_int_eq(p.cancels, 0);
  arbor_test_close(rt, &loop);
}

/* Rule 3: a CREATED task cancelled finishes CANCELLED without its start being
 * called; so do the CREATED children of a cancelled group. */
static void rule3_cancel_created_never_starts(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[3] = {{0}};
  arbor_node_t *g, *t[3];
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  for (i = 0; i < 3; i++)
    t[i] = arbor_test_spawn(g, &p[i], "t", i == 1 ? ARBOR_PROBE_HANDSHAKE : 0);
  assert_code(arbor_node_cancel(g), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  arbor_test_spin(&loop, 10);
  for (i = 0; i < 3; i++) {
    assert_int_eq(p[i].starts, 0);
    assert_int_eq(p[i].cancels, 0);
    assert_int_eq(p[i].finishes, 1);
    assert_outcome(t[i], CANCELLED);
    assert_path(rt, t[i], CREATED, FINISHED);
  }
  assert_outcome(g, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* Rule 3 with a custom hook: it is called once, the task stays STOPPING until it ends
 * itself; its STOPPING is visible. */
static void rule3_custom_hook_called_once_task_stays_stopping(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  arbor_node_info_t info;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.cancels > 0);
  arbor_test_spin(&loop, 50);
  assert_int_eq(p.cancels, 1);
  assert_state(t, STOPPING);
  arbor_node_info(t, &info);
  assert_int_eq(info.cancel_requested, 1);
  assert_true(info.stop_requested_ns > 0);
  assert_outcome(t, NONE);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(t), ARBOR_EVENT_CANCEL), 1);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* Rule 4 for callback tasks: the default hook ends the task and arbor closes its
 * owned handles; FINISHED only after they closed. */
static void rule4_default_hook_closes_owned_handles(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_timer_plan_t plan = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  plan.timeout_ms = 3600 * 1000;
  t = arbor_test_spawn_timer(arbor_root(rt), &plan, "sleeper");
  arbor_test_run_until(&loop, plan.starts > 0);
  assert_true(uv_is_active((uv_handle_t *)plan.timer));
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, plan.finishes > 0);
  assert_int_eq(plan.fired, 0);
  assert_true(plan.timer_closing_at_finish);
  assert_false(plan.timer_active_at_finish);
  assert_outcome(t, CANCELLED);
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* A handshake task cancelled while STARTING with a custom hook: the hook runs, and
 * arbor_task_started is refused once it is STOPPING. */
static void rule3_cancel_starting_task_custom_hook(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", ARBOR_PROBE_HANDSHAKE | ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.cancels > 0);
  assert_state_eq(p.state_in_cancel, ARBOR_STATE_STOPPING);
  assert_code(arbor_task_started(t), ARBOR_ESTATE);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, CANCELLED);
  assert_path(rt, t, CREATED, STARTING, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(rule3_cancel_subtree),
    cmocka_unit_test(rule3_double_cancel_harmless),
    cmocka_unit_test(rule3_double_cancel_group),
    cmocka_unit_test(rule3_cancel_finished_node_returns_efinished),
    cmocka_unit_test(rule3_cancel_root_returns_ekind),
    cmocka_unit_test(rule3_cancel_created_never_starts),
    cmocka_unit_test(rule3_custom_hook_called_once_task_stays_stopping),
    cmocka_unit_test(rule4_default_hook_closes_owned_handles),
    cmocka_unit_test(rule3_cancel_starting_task_custom_hook),
};

ARBOR_TEST_MAIN(tests)
