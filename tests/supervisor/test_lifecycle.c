/* test_lifecycle.c - the lifecycle of DESIGN.md, path by path, and rule 1.
 *
 * CREATED -> STARTING -> STARTED -> STOPPING -> STOPPED -> FINISHED, with the
 * shortcuts STARTED->STOPPED, CREATED->FINISHED and STARTING->STOPPING. Each legal
 * path from CREATED to FINISHED is driven with a real task or group, and the node's
 * STATE events must be exactly that path.
 */
#include "harness.h"

#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* 1. CREATED -> FINISHED: cancelled before it ran. */
static void lifecycle_path_created_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "never-ran", 0);
  assert_state(t, CREATED);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  arbor_test_spin(&loop, 5);

  assert_int_eq(p.starts, 0);
  assert_int_eq(p.finishes, 1);
  assert_state_eq(p.finish_state, ARBOR_STATE_FINISHED);
  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_CANCELLED);
  assert_state(t, FINISHED);
  assert_outcome(t, CANCELLED);
  assert_null(arbor_node_error(t));
  assert_path(rt, t, CREATED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* 2. CREATED -> STARTED -> STOPPED -> FINISHED: the body returned on its own. */
static void lifecycle_path_created_started_stopped_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "done", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_state_eq(p.state_in_start, ARBOR_STATE_STARTED);
  assert_state(t, STARTED);
  assert_outcome(t, NONE);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  arbor_test_spin(&loop, 5);

  assert_int_eq(p.starts, 1);
  assert_int_eq(p.finishes, 1);
  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_OK);
  assert_outcome(t, OK);
  assert_null(arbor_node_error(t));
  assert_path(rt, t, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* 3. CREATED -> STARTED -> STOPPING -> STOPPED -> FINISHED: cancelled while
 * running, default cancel hook. */
static void lifecycle_path_created_started_stopping_stopped_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "cancelled", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_state(t, STARTED);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  arbor_test_spin(&loop, 5);

  assert_int_eq(p.starts, 1);
  assert_int_eq(p.finishes, 1);
  assert_outcome(t, CANCELLED);
  assert_null(arbor_node_error(t));
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* 4. CREATED -> STARTING -> STARTED -> STOPPED -> FINISHED: handshake, then done. */
static void lifecycle_path_created_starting_started_stopped_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "handshake", ARBOR_PROBE_HANDSHAKE);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_state_eq(p.state_in_start, ARBOR_STATE_STARTING);
  arbor_test_spin(&loop, 5);
  assert_state(t, STARTING); /* stays there until it reports readiness */
  assert_code(arbor_task_started(t), 0);
  assert_state(t, STARTED);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);

  assert_outcome(t, OK);
  assert_path(rt, t, CREATED, STARTING, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* 5. CREATED -> STARTING -> STARTED -> STOPPING -> STOPPED -> FINISHED. */
static void lifecycle_path_created_starting_started_stopping_stopped_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "handshake", ARBOR_PROBE_HANDSHAKE);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_task_started(t), 0);
  assert_state(t, STARTED);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);

  assert_outcome(t, CANCELLED);
  assert_null(arbor_node_error(t));
  assert_path(rt, t, CREATED, STARTING, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* 6a. CREATED -> STARTING -> STOPPING -> STOPPED -> FINISHED: cancelled during
 * STARTING. */
static void lifecycle_path_created_starting_stopping_stopped_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "handshake", ARBOR_PROBE_HANDSHAKE);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_state(t, STARTING);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);

  assert_outcome(t, CANCELLED);
  assert_null(arbor_node_error(t));
  assert_path(rt, t, CREATED, STARTING, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* 6b. A handshake task whose body ends (done) without reporting readiness fails:
 * CREATED -> STARTING -> STOPPING -> STOPPED -> FINISHED, outcome FAILED. */
static void lifecycle_path_starting_done_without_started_fails(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  const arbor_error_t *err;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "never-ready", ARBOR_PROBE_HANDSHAKE);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_state(t, STARTING);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);

  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_outcome(t, FAILED);
  err = arbor_node_error(t);
  assert_non_null(err);
  assert_true(arbor_error_code(err) < 0);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(t), ARBOR_EVENT_FAILED), 1);
  assert_path(rt, t, CREATED, STARTING, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* A failing task: CREATED -> STARTED -> STOPPED -> FINISHED, outcome FAILED with its
 * own error. */
static void lifecycle_path_failed_task_started_stopped_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  const arbor_error_t *err;
  int line;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "fails", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  line = __LINE__ + 1;
  assert_code(arbor_task_fail(t, -EIO, "disk %d broke", 3), 0);
  arbor_test_run_until(&loop, p.finishes > 0);

  assert_outcome_eq(p.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_outcome(t, FAILED);
  err = arbor_node_error(t);
  assert_non_null(err);
  assert_code(arbor_error_code(err), -EIO);
  assert_string_equal(arbor_error_message(err), "disk 3 broke");
  assert_int_eq(arbor_error_line(err), line);
  assert_path(rt, t, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Group: new -> STARTED at once; join -> STOPPED; FINISHED once children are. */
static void lifecycle_group_path_joined_ok(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0}, g = {0};
  arbor_node_t *grp, *t;
  size_t n;
  arbor_event_t *ev;
  uint64_t gid;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  gid = arbor_node_id(grp);
  assert_state(grp, STARTED);
  /* events so far for the group: CREATED, then STATE CREATED->STARTED */
  ev = arbor_test_events(rt, &n);
  assert_true(n >= 2);
  assert_uint_eq(ev[n - 2].node_id, gid);
  assert_int_eq(ev[n - 2].type, ARBOR_EVENT_CREATED);
  assert_uint_eq(ev[n - 1].node_id, gid);
  assert_int_eq(ev[n - 1].type, ARBOR_EVENT_STATE);
  assert_state_eq(ev[n - 1].from, ARBOR_STATE_CREATED);
  assert_state_eq(ev[n - 1].to, ARBOR_STATE_STARTED);
  free(ev);

  t = arbor_test_spawn(grp, &p, "child", 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  assert_int_eq(g.finishes, 0);
  assert_state(grp, STOPPED);
  arbor_test_run_until(&loop, p.starts > 0);
  arbor_test_spin(&loop, 5);
  assert_state(grp, STOPPED);
  assert_int_eq(g.finishes, 0);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, g.finishes > 0);
  arbor_test_spin(&loop, 5);

  assert_int_eq(g.finishes, 1);
  assert_outcome_eq(g.finish_outcome, ARBOR_OUTCOME_OK);
  assert_outcome(grp, OK);
  assert_null(arbor_node_error(grp));
  assert_path(rt, grp, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Group cancelled without join: CREATED -> STARTED -> STOPPING -> STOPPED -> FINISHED,
 * outcome CANCELLED. */
static void lifecycle_group_path_cancelled(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *grp, *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  t = arbor_test_spawn(grp, &p, "child", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(grp), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(grp));

  assert_outcome(grp, CANCELLED);
  assert_outcome(t, CANCELLED);
  assert_path(rt, grp, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Join an empty group: its cb is not called from inside join; it then finishes OK. */
static void lifecycle_group_join_empty(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t g = {0};
  arbor_node_t *grp;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "empty");
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  assert_int_eq(g.finishes, 0);
  arbor_test_run_until(&loop, g.finishes > 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(g.finishes, 1);
  assert_state_eq(g.finish_state, ARBOR_STATE_FINISHED);
  assert_outcome(grp, OK);
  assert_path(rt, grp, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Rule 1: a group reaches FINISHED only after every child has, even when its own
 * body (join) ended long before. */
static void rule1_no_orphans_parent_finishes_after_children(void **state) {
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
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts && p[2].starts);

  for (i = 0; i < 3; i++) {
    arbor_node_info_t info;
    arbor_node_info(grp, &info);
    assert_uint_eq(info.live_children, (uint32_t)(3 - i));
    assert_state(grp, STOPPED);
    assert_int_eq(g.finishes, 0);
    assert_code(arbor_task_done(t[i]), 0);
    arbor_test_run_until(&loop, p[i].finishes > 0);
    arbor_test_spin(&loop, 3);
  }
  arbor_test_run_until(&loop, g.finishes > 0);
  assert_int_eq(g.finishes, 1);
  assert_uint_eq(g.finish_live_children, 0);
  for (i = 0; i < 3; i++) {
    arbor_node_info_t ci, gi;
    assert_true(p[i].finish_order < g.finish_order);
    /* the group's FINISHED event comes after each child's */
    assert_uint_lt(arbor_test_state_seq(rt, arbor_node_id(t[i]), ARBOR_STATE_FINISHED),
                   arbor_test_state_seq(rt, arbor_node_id(grp), ARBOR_STATE_FINISHED));
    arbor_node_info(t[i], &ci);
    arbor_node_info(grp, &gi);
    assert_uint_le(ci.finished_ns, gi.finished_ns);
  }
  assert_outcome(grp, OK);
  arbor_test_close(rt, &loop);
}

/* Rule 1 for a task: done with a live child group leaves it STOPPED until the group
 * FINISHED. */
static void rule1_task_finishes_after_its_child_group(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t owner = {0}, leaf = {0}, g = {0};
  arbor_node_t *task, *grp, *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  task = arbor_test_spawn(arbor_root(rt), &owner, "owner", 0);
  arbor_test_run_until(&loop, owner.starts > 0);
  grp = arbor_test_group(task, "inner");
  t = arbor_test_spawn(grp, &leaf, "leaf", 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  arbor_test_run_until(&loop, leaf.starts > 0);

  assert_code(arbor_task_done(task), 0);
  arbor_test_spin(&loop, 20);
  assert_state(task, STOPPED);
  assert_outcome(task, NONE);
  assert_int_eq(owner.finishes, 0);
  assert_state(grp, STOPPED);

  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, owner.finishes > 0);
  assert_int_eq(g.finishes, 1);
  assert_true(leaf.finish_order < g.finish_order);
  assert_true(g.finish_order < owner.finish_order);
  assert_outcome(task, OK);
  assert_path(rt, task, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Every node of a mixed run moves only along legal edges. */
static int walk_collect(arbor_node_t *node, int depth, void *arg) {
  uint64_t *ids = arg;
  (void)depth;
  if (ids[0] < 63)
    ids[++ids[0]] = arbor_node_id(node);
  return 0;
}

static void lifecycle_only_legal_edges(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[6] = {{0}};
  arbor_node_t *grp, *t[6];
  arbor_event_t *ev;
  size_t n, i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  grp = arbor_test_group(arbor_root(rt), "grp");
  t[0] = arbor_test_spawn(grp, &p[0], "a", 0);
  t[1] = arbor_test_spawn(grp, &p[1], "b", ARBOR_PROBE_HANDSHAKE);
  t[2] = arbor_test_spawn(arbor_root(rt), &p[2], "c", 0);
  t[3] = arbor_test_spawn(arbor_root(rt), &p[3], "d", ARBOR_PROBE_HANDSHAKE);
  t[4] = arbor_test_spawn(arbor_root(rt), &p[4], "e", 0);
  p[5].start_rc = -EPIPE;
  t[5] = arbor_test_spawn(arbor_root(rt), &p[5], "f", 0);
  assert_code(arbor_node_cancel(t[4]), 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts && p[2].starts && p[3].starts);
  assert_code(arbor_task_started(t[1]), 0);
  assert_code(arbor_task_fail(t[0], -EIO, "a failed"), 0);
  assert_code(arbor_task_done(t[2]), 0);
  assert_code(arbor_task_done(t[3]), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(grp) && p[2].finishes &&
                                  p[3].finishes && p[4].finishes && p[5].finishes);

  ev = arbor_test_events(rt, &n);
  for (i = 0; i < n; i++) {
    if (ev[i].type != ARBOR_EVENT_STATE)
      continue;
    if (!arbor_test_edge_legal(ev[i].from, ev[i].to)) {
      print_error("illegal edge %s -> %s for node %ju\n", arbor_state_name(ev[i].from),
                  arbor_state_name(ev[i].to), (uintmax_t)ev[i].node_id);
      fail();
    }
  }
  free(ev);
  {
    uint64_t ids[64] = {0};
    assert_int_eq(arbor_tree_walk(arbor_root(rt), -1, walk_collect, ids), 0);
    for (i = 1; i <= ids[0]; i++) {
      arbor_node_t *node = arbor_node_find(rt, ids[i]);
      assert_non_null(node);
      if (arbor_node_kind(node) != ARBOR_KIND_ROOT)
        assert_state(node, FINISHED);
    }
  }
  arbor_test_close(rt, &loop);
}

/* An illegal transition is a bug inside arbor: an always-on assert (not NDEBUG's)
 * stops the process with a message naming the broken invariant. Forced through the
 * internal arbor__transition in a child process, for every illegal edge out of
 * STARTED (a group is STARTED at creation). */
static void lifecycle_illegal_transition_aborts(void **state) {
  static const arbor_state_t illegal[] = {ARBOR_STATE_CREATED, ARBOR_STATE_STARTING,
                                          ARBOR_STATE_STARTED, ARBOR_STATE_FINISHED};
  (void)state;
  for (size_t k = 0; k < sizeof illegal / sizeof illegal[0]; k++) {
    int fds[2];
    assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      uv_loop_t loop;
      arbor_runtime_t *rt;
      arbor_node_t *g;
      dup2(fds[1], 2);
      close(fds[0]);
      if (uv_loop_init(&loop) != 0 || arbor_runtime_new(&rt, &loop, NULL) != 0 ||
          arbor_group_new(arbor_root(rt), NULL, &g) != 0)
        _exit(3);
      arbor__transition(g, illegal[k]);
      _exit(0);                  /* reached only if the assert did not fire */
    }
    close(fds[1]);
    char buf[512] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
      got += (size_t)r;
    close(fds[0]);
    int status;
    assert_int_eq(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
      fail_msg("STARTED -> %s did not abort (status %d): %s", arbor_state_name(illegal[k]),
               status, buf);
    assert_non_null(strstr(buf, "internal invariant broken"));
    assert_non_null(strstr(buf, "lifecycle.c"));
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(lifecycle_illegal_transition_aborts),
    cmocka_unit_test(lifecycle_path_created_finished),
    cmocka_unit_test(lifecycle_path_created_started_stopped_finished),
    cmocka_unit_test(lifecycle_path_created_started_stopping_stopped_finished),
    cmocka_unit_test(lifecycle_path_created_starting_started_stopped_finished),
    cmocka_unit_test(lifecycle_path_created_starting_started_stopping_stopped_finished),
    cmocka_unit_test(lifecycle_path_created_starting_stopping_stopped_finished),
    cmocka_unit_test(lifecycle_path_starting_done_without_started_fails),
    cmocka_unit_test(lifecycle_path_failed_task_started_stopped_finished),
    cmocka_unit_test(lifecycle_group_path_joined_ok),
    cmocka_unit_test(lifecycle_group_path_cancelled),
    cmocka_unit_test(lifecycle_group_join_empty),
    cmocka_unit_test(rule1_no_orphans_parent_finishes_after_children),
    cmocka_unit_test(rule1_task_finishes_after_its_child_group),
    cmocka_unit_test(lifecycle_only_legal_edges),
};

ARBOR_TEST_MAIN(tests)
