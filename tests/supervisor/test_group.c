/* test_group.c - groups (nurseries) and rule 2: a child's failure cancels its
 * siblings and its group; the group fails with an error group of every
 * non-cancellation child error, in the order they happened; cancelling a child is not
 * a failure of its group. */
#include "harness.h"

/* Rule 2: one child fails, the others are cancelled, the group fails with EGROUP
 * holding exactly that child's error. */
static void rule2_failure_cancels_siblings(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[3] = {{0}}, g = {0};
  arbor_node_t *grp, *t[3];
  const arbor_error_t *gerr, *child;
  uint64_t failed_seq;
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  for (i = 0; i < 3; i++)
    t[i] = arbor_test_spawn(grp, &p[i], "child", 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts && p[2].starts);

  assert_code(arbor_task_fail(t[1], -EIO, "child 1 broke"), 0);
  arbor_test_run_until(&loop, g.finishes > 0);
  arbor_test_spin(&loop, 5);

  assert_int_eq(g.finishes, 1);
  for (i = 0; i < 3; i++) {
    assert_int_eq(p[i].finishes, 1);
    assert_true(p[i].finish_order < g.finish_order);
  }
  assert_outcome(t[0], CANCELLED);
  assert_outcome(t[1], FAILED);
  assert_outcome(t[2], CANCELLED);
  assert_true(arbor_node_is_cancelled(t[0]));
  assert_true(arbor_node_is_cancelled(t[2]));
  assert_path(rt, t[0], CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  assert_path(rt, t[2], CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  assert_null(arbor_node_error(t[0]));
  assert_null(arbor_node_error(t[2]));

  assert_outcome(grp, FAILED);
  gerr = arbor_node_error(grp);
  assert_non_null(gerr);
  assert_code(arbor_error_code(gerr), ARBOR_EGROUP);
  assert_uint_eq(arbor_error_child_count(gerr), 1);
  child = arbor_error_child(gerr, 0);
  assert_non_null(child);
  assert_code(arbor_error_code(child), -EIO);
  assert_string_equal(arbor_error_message(child), "child 1 broke");

  /* the siblings' cancel requests follow the failure */
  failed_seq = arbor_test_event_seq(rt, arbor_node_id(t[1]), ARBOR_EVENT_FAILED);
  assert_true(failed_seq > 0);
  assert_uint_lt(failed_seq, arbor_test_event_seq(rt, arbor_node_id(t[0]), ARBOR_EVENT_CANCEL));
  assert_uint_lt(failed_seq, arbor_test_event_seq(rt, arbor_node_id(t[2]), ARBOR_EVENT_CANCEL));
  arbor_test_close(rt, &loop);
}

/* Rule 2: the error group lists child errors in the order they happened, not in the
 * order the children were created; cancelled children contribute nothing. */
static void rule2_error_group_order(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[4] = {{0}}, g = {0};
  arbor_node_t *grp, *t[4];
  const arbor_error_t *gerr;
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  for (i = 0; i < 4; i++)
    t[i] = arbor_test_spawn(grp, &p[i], "child", ARBOR_PROBE_CUSTOM_CANCEL);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts && p[2].starts && p[3].starts);

  /* t[2] fails first; t[0], t[1], t[3] are asked to cancel and wind down */
  assert_code(arbor_task_fail(t[2], -EIO, "third failed first"), 0);
  arbor_test_run_until(&loop, p[0].cancels && p[1].cancels && p[3].cancels);
  assert_int_eq(p[2].cancels, 0);
  assert_state(t[0], STOPPING);
  assert_state(t[1], STOPPING);
  assert_state(t[3], STOPPING);
  assert_state(grp, STOPPED); /* joined before the failure: stays STOPPED */
  /* then t[0] fails while stopping, t[3] fails, t[1] ends normally (CANCELLED) */
  assert_code(arbor_task_fail(t[0], -EPIPE, "first failed second"), 0);
  arbor_test_spin(&loop, 3);
  assert_code(arbor_task_done(t[1]), 0);
  arbor_test_spin(&loop, 3);
  assert_code(arbor_task_fail(t[3], -ENOTCONN, "fourth failed third"), 0);
  arbor_test_run_until(&loop, g.finishes > 0);

  assert_outcome(t[0], FAILED);
  assert_outcome(t[1], CANCELLED);
  assert_outcome(t[2], FAILED);
  assert_outcome(t[3], FAILED);
  assert_outcome(grp, FAILED);
  gerr = arbor_node_error(grp);
  assert_non_null(gerr);
  assert_code(arbor_error_code(gerr), ARBOR_EGROUP);
  assert_uint_eq(arbor_error_child_count(gerr), 3);
  assert_code(arbor_error_code(arbor_error_child(gerr, 0)), -EIO);
  assert_string_equal(arbor_error_message(arbor_error_child(gerr, 0)), "third failed first");
  assert_code(arbor_error_code(arbor_error_child(gerr, 1)), -EPIPE);
  assert_string_equal(arbor_error_message(arbor_error_child(gerr, 1)), "first failed second");
  assert_code(arbor_error_code(arbor_error_child(gerr, 2)), -ENOTCONN);
  assert_string_equal(arbor_error_message(arbor_error_child(gerr, 2)), "fourth failed third");
  assert_path(rt, grp, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Rule 2: cancelling one child is not a failure: the siblings keep running, the group
 * stays STARTED and finishes OK. */
static void rule2_cancellation_is_not_failure(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[3] = {{0}}, g = {0};
  arbor_node_t *grp, *t[3];
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  for (i = 0; i < 3; i++)
    t[i] = arbor_test_spawn(grp, &p[i], "child", 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts && p[2].starts);

  assert_code(arbor_node_cancel(t[1]), 0);
  arbor_test_run_until(&loop, p[1].finishes > 0);
  arbor_test_spin(&loop, 10);
  assert_outcome(t[1], CANCELLED);
  assert_state(grp, STARTED);
  assert_false(arbor_node_is_cancelled(grp));
  assert_state(t[0], STARTED);
  assert_state(t[2], STARTED);
  assert_false(arbor_node_is_cancelled(t[0]));
  assert_false(arbor_node_is_cancelled(t[2]));
  assert_int_eq(p[0].cancels + p[2].cancels, 0);

  assert_code(arbor_task_done(t[0]), 0);
  assert_code(arbor_task_done(t[2]), 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, g.finishes > 0);
  assert_outcome(grp, OK);
  assert_null(arbor_node_error(grp));
  assert_outcome(t[0], OK);
  assert_outcome(t[2], OK);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(grp), ARBOR_EVENT_FAILED), 0);
  assert_path(rt, grp, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Rule 2: a cancelled child whose body passes ARBOR_ECANCELED on (as every
 * checkpoint returns it once cancelled) is cancelled, not failed: the group records
 * no error for it. A child that was not cancelled and fails with ECANCELED did fail. */
static void rule2_ecanceled_from_cancelled_child_is_not_failure(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[2] = {{0}}, g = {0};
  arbor_node_t *grp, *t[2];
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  grp = arbor_test_group(arbor_root(rt), "grp");
  p[0].cancel_action = ARBOR_PROBE_CANCEL_FAIL;    /* its hook fails with ECANCELED */
  p[0].fail_code = ARBOR_ECANCELED;
  t[0] = arbor_test_spawn(grp, &p[0], "passes-it-on", ARBOR_PROBE_CUSTOM_CANCEL);
  t[1] = arbor_test_spawn(grp, &p[1], "sibling", 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts);
  assert_code(arbor_node_cancel(t[0]), 0);
  assert_outcome(t[0], CANCELLED);
  assert_null(arbor_node_error(t[0]));
  assert_state(t[1], STARTED);     /* the sibling was not cancelled */
  /* Not cancelled, yet fails with ECANCELED: a real failure of the group. */
  assert_code(arbor_task_fail(t[1], ARBOR_ECANCELED, "an inner operation was cancelled"), 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, g.finishes > 0);
  assert_outcome(t[1], FAILED);
  assert_outcome(grp, FAILED);
  assert_int_eq(arbor_error_child_count(arbor_node_error(grp)), 1);
  arbor_test_close(rt, &loop);
}

/* Rule 2: a cancelled group ends CANCELLED, without join, with no error; join after
 * the cancel still registers its callback. */
static void rule2_cancelled_group_ends_cancelled(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[2] = {{0}}, g = {0};
  arbor_node_t *grp, *t[2];
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  t[0] = arbor_test_spawn(grp, &p[0], "a", 0);
  t[1] = arbor_test_spawn(grp, &p[1], "b", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts);
  assert_code(arbor_node_cancel(grp), 0);
  assert_true(arbor_node_is_cancelled(grp));
  arbor_test_run_until(&loop, p[1].cancels > 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_spin(&loop, 10);
  assert_int_eq(g.finishes, 0); /* t[1] still stopping */
  assert_false(arbor_node_is_finished(grp));
  assert_code(arbor_task_done(t[1]), 0);
  arbor_test_run_until(&loop, g.finishes > 0);

  assert_outcome(grp, CANCELLED);
  assert_null(arbor_node_error(grp));
  assert_outcome(t[0], CANCELLED);
  assert_outcome(t[1], CANCELLED);
  assert_path(rt, grp, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* A failed group ends its body by itself: no join needed. Not joined, it goes
 * STARTED -> STOPPING. */
static void rule2_failed_group_ends_without_join(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[2] = {{0}};
  arbor_node_t *grp, *t[2];
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  t[0] = arbor_test_spawn(grp, &p[0], "a", 0);
  p[1].start_rc = -EACCES;
  t[1] = arbor_test_spawn(grp, &p[1], "b", 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(grp));

  assert_outcome(grp, FAILED);
  assert_outcome(t[1], FAILED);
  assert_outcome(t[0], CANCELLED);
  assert_code(arbor_error_code(arbor_node_error(grp)), ARBOR_EGROUP);
  assert_uint_eq(arbor_error_child_count(arbor_node_error(grp)), 1);
  assert_code(arbor_error_code(arbor_error_child(arbor_node_error(grp), 0)), -EACCES);
  assert_path(rt, grp, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* A failing inner group's EGROUP error is one child error of the outer group. */
static void rule2_nested_group_error_is_one_child(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t leaf = {0}, sib = {0}, outer_sib = {0}, go = {0};
  arbor_node_t *outer, *inner, *t_leaf, *t_sib, *t_outer_sib;
  const arbor_error_t *oerr, *ierr;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  outer = arbor_test_group(arbor_root(rt), "outer");
  inner = arbor_test_group(outer, "inner");
  t_leaf = arbor_test_spawn(inner, &leaf, "leaf", 0);
  t_sib = arbor_test_spawn(inner, &sib, "inner-sibling", 0);
  t_outer_sib = arbor_test_spawn(outer, &outer_sib, "outer-sibling", 0);
  assert_code(arbor_group_join(outer, arbor_probe_join_cb, &go), 0);
  arbor_test_run_until(&loop, leaf.starts && sib.starts && outer_sib.starts);

  assert_code(arbor_task_fail(t_leaf, -ENOENT, "leaf lost"), 0);
  arbor_test_run_until(&loop, go.finishes > 0);

  assert_outcome(t_sib, CANCELLED);
  assert_outcome(t_outer_sib, CANCELLED);
  assert_outcome(inner, FAILED);
  assert_outcome(outer, FAILED);
  ierr = arbor_node_error(inner);
  oerr = arbor_node_error(outer);
  assert_non_null(ierr);
  assert_non_null(oerr);
  assert_code(arbor_error_code(ierr), ARBOR_EGROUP);
  assert_uint_eq(arbor_error_child_count(ierr), 1);
  assert_code(arbor_error_code(arbor_error_child(ierr, 0)), -ENOENT);
  assert_code(arbor_error_code(oerr), ARBOR_EGROUP);
  assert_uint_eq(arbor_error_child_count(oerr), 1);
  assert_code(arbor_error_code(arbor_error_child(oerr, 0)), ARBOR_EGROUP);
  assert_uint_eq(arbor_error_child_count(arbor_error_child(oerr, 0)), 1);
  assert_code(arbor_error_code(arbor_error_child(arbor_error_child(oerr, 0), 0)), -ENOENT);
  assert_string_equal(arbor_error_message(arbor_error_child(arbor_error_child(oerr, 0), 0)),
                      "leaf lost");
  arbor_test_close(rt, &loop);
}

/* Under the root (no group) a failing top-level task does not cancel its siblings;
 * the failure is recorded. */
static void rule2_root_failure_does_not_cancel_siblings(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t a = {0}, b = {0};
  arbor_node_t *ta, *tb;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  ta = arbor_test_spawn(arbor_root(rt), &a, "a", 0);
  tb = arbor_test_spawn(arbor_root(rt), &b, "b", 0);
  arbor_test_run_until(&loop, a.starts && b.starts);
  assert_code(arbor_task_fail(ta, -EIO, "top-level failure"), 0);
  arbor_test_run_until(&loop, a.finishes > 0);
  arbor_test_spin(&loop, 10);

  assert_outcome(ta, FAILED);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(ta), ARBOR_EVENT_FAILED), 1);
  assert_state(tb, STARTED);
  assert_false(arbor_node_is_cancelled(tb));
  assert_int_eq(b.cancels, 0);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(tb), ARBOR_EVENT_CANCEL), 0);
  assert_code(arbor_task_done(tb), 0);
  arbor_test_run_until(&loop, b.finishes > 0);
  assert_outcome(tb, OK);
  arbor_test_close(rt, &loop);
}

/* A group under a task: the task's child; failure stays within the group and does not
 * touch a sibling of the task. */
static void group_under_task(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t owner = {0}, leaf = {0}, g = {0};
  arbor_node_t *task, *grp, *t;
  arbor_node_info_t info;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  task = arbor_test_spawn(arbor_root(rt), &owner, "owner", 0);
  arbor_test_run_until(&loop, owner.starts > 0);
  grp = arbor_test_group(task, "inner");
  assert_ptr_equal(arbor_node_parent(grp), task);
  assert_int_eq(arbor_node_kind(grp), ARBOR_KIND_GROUP);
  arbor_node_info(task, &info);
  assert_uint_eq(info.children, 1);
  assert_uint_eq(info.live_children, 1);
  t = arbor_test_spawn(grp, &leaf, "leaf", 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, leaf.starts > 0);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, g.finishes > 0);
  assert_outcome(grp, OK);
  assert_state(task, STARTED);
  arbor_node_info(task, &info);
  assert_uint_eq(info.live_children, 0);
  assert_code(arbor_task_done(task), 0);
  arbor_test_run_until(&loop, owner.finishes > 0);
  assert_outcome(task, OK);
  arbor_test_close(rt, &loop);
}

/* Default group name, kind, join refusals. */
static void group_defaults_and_join_twice(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t g = {0}, h = {0};
  arbor_node_t *grp = NULL;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  assert_code(arbor_group_new(arbor_root(rt), NULL, &grp), 0);
  assert_non_null(grp);
  assert_string_equal(arbor_node_name(grp), "group");
  assert_int_eq(arbor_node_kind(grp), ARBOR_KIND_GROUP);
  assert_state(grp, STARTED);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &h), ARBOR_EALREADY);
  arbor_test_run_until(&loop, g.finishes > 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(g.finishes, 1);
  assert_int_eq(h.finishes, 0); /* refused: never called */
  arbor_test_close(rt, &loop);
}

/* Join with a NULL callback is allowed. */
static void group_join_without_callback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *grp, *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(grp, &p, "t", 0);
  assert_code(arbor_group_join(grp, NULL, NULL), 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(grp));
  assert_outcome(grp, OK);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(rule2_failure_cancels_siblings),
    cmocka_unit_test(rule2_error_group_order),
    cmocka_unit_test(rule2_cancellation_is_not_failure),
    cmocka_unit_test(rule2_ecanceled_from_cancelled_child_is_not_failure),
    cmocka_unit_test(rule2_cancelled_group_ends_cancelled),
    cmocka_unit_test(rule2_failed_group_ends_without_join),
    cmocka_unit_test(rule2_nested_group_error_is_one_child),
    cmocka_unit_test(rule2_root_failure_does_not_cancel_siblings),
    cmocka_unit_test(group_under_task),
    cmocka_unit_test(group_defaults_and_join_twice),
    cmocka_unit_test(group_join_without_callback),
};

ARBOR_TEST_MAIN(tests)
