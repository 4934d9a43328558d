/* test_badinput.c - refused calls: the right code, and nothing changes (no child,
 * no event, no callback ever). */
#include "harness.h"

/* What a refused call must leave alone. */
typedef struct {
  uint64_t recorded;
  uint32_t children;
  uint64_t children_total;
} snapshot_t;

static snapshot_t snap(arbor_runtime_t *rt, arbor_node_t *parent) {
  snapshot_t s;
  arbor_node_info_t info;
  s.recorded = arbor_test_recorded(rt);
  arbor_node_info(parent, &info);
  s.children = info.children;
  s.children_total = info.children_total;
  return s;
}

#define assert_unchanged(rt, parent, before)                                           \
  do {                                                                                 \
    snapshot_t now_ = snap((rt), (parent));                                            \
    assert_uint_eq(now_.recorded, (before).recorded);                                  \
    assert_uint_eq(now_.children, (before).children);                                  \
    assert_uint_eq(now_.children_total, (before).children_total);                      \
  } while (0)

static void badinput_spawn_null_and_no_start(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_task_spec_t spec;
  arbor_node_t *t = NULL;
  snapshot_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  before = snap(rt, arbor_root(rt));
  spec = arbor_probe_spec(&p, "x", 0);
  assert_code(arbor_task_spawn(NULL, &spec, &t), ARBOR_EINVAL);
  assert_code(arbor_task_spawn(arbor_root(rt), NULL, &t), ARBOR_EINVAL);
  spec.start = NULL;
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), ARBOR_EINVAL);
  assert_code(arbor_group_new(NULL, NULL, &t), ARBOR_EINVAL);
  assert_unchanged(rt, arbor_root(rt), before);
  arbor_test_spin(&loop, 10);
  assert_int_eq(p.starts + p.finishes, 0);
  assert_null(arbor_node_first_child(arbor_root(rt)));
  arbor_test_close(rt, &loop);
  assert_int_eq(p.starts + p.finishes, 0);
}

/* A task cannot have task children. */
static void badinput_spawn_into_task_ekind(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t owner = {0}, p = {0};
  arbor_task_spec_t spec;
  arbor_node_t *task, *t = NULL;
  snapshot_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  task = arbor_test_spawn(arbor_root(rt), &owner, "owner", 0);
  arbor_test_run_until(&loop, owner.starts > 0);
  before = snap(rt, task);
  spec = arbor_probe_spec(&p, "x", 0);
  assert_code(arbor_task_spawn(task, &spec, &t), ARBOR_EKIND);
  assert_unchanged(rt, task, before);
  arbor_test_spin(&loop, 10);
  assert_int_eq(p.starts + p.finishes, 0);
  arbor_test_close(rt, &loop);
  assert_int_eq(p.starts + p.finishes, 0);
}

/* Into a FINISHED group: EFINISHED, for tasks and groups. */
static void badinput_spawn_into_finished_group_efinished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_task_spec_t spec;
  arbor_node_t *g, *t = NULL, *g2 = NULL;
  snapshot_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  before = snap(rt, g);
  spec = arbor_probe_spec(&p, "late", 0);
  assert_code(arbor_task_spawn(g, &spec, &t), ARBOR_EFINISHED);
  assert_code(arbor_group_new(g, NULL, &g2), ARBOR_EFINISHED);
  assert_unchanged(rt, g, before);
  arbor_test_spin(&loop, 10);
  assert_int_eq(p.starts + p.finishes, 0);
  assert_state(g, FINISHED);
  assert_outcome(g, OK);
  arbor_test_close(rt, &loop);
  assert_int_eq(p.starts + p.finishes, 0);
}

/* Into a cancelled (not yet finished) group: ECANCELED. */
static void badinput_spawn_into_cancelled_group_ecanceled(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t keep = {0}, p = {0};
  arbor_task_spec_t spec;
  arbor_node_t *g, *k, *t = NULL, *g2 = NULL;
  snapshot_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  k = arbor_test_spawn(g, &keep, "keeps-group-alive", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, keep.starts > 0);
  assert_code(arbor_node_cancel(g), 0);
  arbor_test_run_until(&loop, keep.cancels > 0);
  assert_false(arbor_node_is_finished(g));
  before = snap(rt, g);
  spec = arbor_probe_spec(&p, "late", 0);
  assert_code(arbor_task_spawn(g, &spec, &t), ARBOR_ECANCELED);
  assert_code(arbor_group_new(g, NULL, &g2), ARBOR_ECANCELED);
  assert_unchanged(rt, g, before);
  assert_code(arbor_task_done(k), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  assert_int_eq(p.starts + p.finishes, 0);
  arbor_test_close(rt, &loop);
  assert_int_eq(p.starts + p.finishes, 0);
}

/* A failed group (stopping because a child failed) takes no new children either. */
static void badinput_spawn_into_failing_group_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t keep = {0}, bad = {0}, p = {0};
  arbor_task_spec_t spec;
  arbor_node_t *g, *k, *b, *t = NULL;
  snapshot_t before;
  int rc;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  k = arbor_test_spawn(g, &keep, "keeps-group-alive", ARBOR_PROBE_CUSTOM_CANCEL);
  b = arbor_test_spawn(g, &bad, "fails", 0);
  arbor_test_run_until(&loop, keep.starts && bad.starts);
  assert_code(arbor_task_fail(b, -EIO, "x"), 0);
  arbor_test_run_until(&loop, keep.cancels > 0);
  before = snap(rt, g);
  spec = arbor_probe_spec(&p, "late", 0);
  rc = arbor_task_spawn(g, &spec, &t);
  assert_code(rc, ARBOR_ECANCELED);
  assert_unchanged(rt, g, before);
  assert_code(arbor_task_done(k), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  assert_outcome(g, FAILED);
  assert_uint_eq(arbor_error_child_count(arbor_node_error(g)), 1);
  arbor_test_close(rt, &loop);
  assert_int_eq(p.starts + p.finishes, 0);
}

/* done/fail/started on the wrong kind or in the wrong state. */
static void badinput_task_calls_wrong_kind_or_state(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0}, q = {0};
  arbor_node_t *g, *t, *u;
  uint64_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  u = arbor_test_spawn(arbor_root(rt), &q, "u", ARBOR_PROBE_HANDSHAKE);

  /* not running yet */
  before = arbor_test_recorded(rt);
  assert_code(arbor_task_done(t), ARBOR_ESTATE);
  assert_code(arbor_task_fail(t, -EIO, "too early"), ARBOR_ESTATE);
  assert_code(arbor_task_started(u), ARBOR_ESTATE);
  /* a task takes children only while its body runs: not before its start */
  assert_code(arbor_group_new(t, NULL, NULL), ARBOR_ESTATE);
  assert_uint_eq(arbor_test_recorded(rt), before);
  assert_state(t, CREATED);
  assert_state(u, CREATED);

  /* wrong kind */
  assert_code(arbor_task_done(g), ARBOR_EKIND);
  assert_code(arbor_task_fail(g, -EIO, "not a task"), ARBOR_EKIND); /* frees the error */
  assert_code(arbor_task_started(g), ARBOR_EKIND);
  assert_code(arbor_task_done(arbor_root(rt)), ARBOR_EKIND);
  assert_code(arbor_group_join(t, NULL, NULL), ARBOR_EKIND);
  assert_code(arbor_group_join(arbor_root(rt), NULL, NULL), ARBOR_EKIND);
  assert_code(arbor_group_join(NULL, NULL, NULL), ARBOR_EINVAL);
  assert_null(arbor_task_data(g));
  assert_uint_eq(arbor_test_recorded(rt), before);
  assert_state(g, STARTED);

  arbor_test_run_until(&loop, p.starts && q.starts);
  assert_state(t, STARTED);
  /* started on a task without handshake (STARTED, not STARTING) */
  assert_code(arbor_task_started(t), ARBOR_ESTATE);
  assert_code(arbor_task_started(u), 0);
  assert_code(arbor_task_started(u), ARBOR_ESTATE);

  /* done twice; fail after done */
  assert_code(arbor_task_done(t), 0);
  before = arbor_test_recorded(rt);
  assert_code(arbor_task_done(t), ARBOR_ESTATE);
  assert_code(arbor_task_fail(t, -EIO, "after done"), ARBOR_ESTATE);
  assert_uint_eq(arbor_test_recorded(rt), before);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_code(arbor_task_done(t), ARBOR_ESTATE);
  assert_outcome(t, OK); /* the refused fail changed nothing */
  assert_null(arbor_node_error(t));
  assert_int_eq(p.finishes, 1);

  assert_code(arbor_task_done(u), 0);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  arbor_test_run_until(&loop, q.finishes && arbor_node_is_finished(g));
  arbor_test_close(rt, &loop);
}

/* arbor_task_fail_error: a NULL task is EINVAL; a NULL error (what arbor_task_fail
 * passes when making the error ran out of memory) still fails a running task, with
 * an ENOMEM error, so the failure is never lost; on a task that is not running or
 * a group it is refused like any other error. */
static void badinput_fail_null_error_still_fails(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0}, q = {0};
  arbor_node_t *t, *u, *g;
  uint64_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  u = arbor_test_spawn(arbor_root(rt), &q, "u", 0);
  before = arbor_test_recorded(rt);
  assert_code(arbor_task_fail_error(NULL, NULL), ARBOR_EINVAL);
  assert_code(arbor_task_fail_error(NULL, arbor_error_new(-EIO, "x")), ARBOR_EINVAL);
  assert_code(arbor_task_fail_error(t, NULL), ARBOR_ESTATE); /* CREATED */
  assert_code(arbor_task_fail_error(g, NULL), ARBOR_EKIND);
  assert_uint_eq(arbor_test_recorded(rt), before);
  assert_state(t, CREATED);
  assert_state(g, STARTED);

  arbor_test_run_until(&loop, p.starts && q.starts);
  assert_code(arbor_task_fail_error(t, NULL), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, FAILED);
  assert_non_null(arbor_node_error(t));
  assert_code(arbor_error_code(arbor_node_error(t)), ARBOR_ENOMEM);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(t), ARBOR_EVENT_FAILED), 1);
  assert_state(u, STARTED); /* top-level: no sibling is touched */
  assert_code(arbor_task_done(u), 0);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  arbor_test_run_until(&loop, q.finishes && arbor_node_is_finished(g));
  arbor_test_close(rt, &loop);
}

/* own/disown refusals. */
static void badinput_own_refusals(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *g, *t;
  uv_timer_t timer;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_int_eq(uv_timer_init(&loop, &timer), 0);
  assert_code(arbor_task_own(NULL, (uv_handle_t *)&timer), ARBOR_EINVAL);
  assert_code(arbor_task_own(t, NULL), ARBOR_EINVAL);
  assert_code(arbor_task_own(g, (uv_handle_t *)&timer), ARBOR_EKIND);
  assert_code(arbor_task_disown(t, (uv_handle_t *)&timer), ARBOR_ENOENT);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_false(uv_is_closing((uv_handle_t *)&timer)); /* never owned: not closed */
  uv_close((uv_handle_t *)&timer, NULL);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  arbor_test_close(rt, &loop);
}

/* A refused join never calls its callback. */
static void badinput_refused_join_never_calls_back(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t g1 = {0}, g2 = {0}, p = {0};
  arbor_node_t *g, *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  assert_code(arbor_group_join(t, arbor_probe_join_cb, &g2), ARBOR_EKIND);
  assert_code(arbor_group_join(g, arbor_probe_join_cb, &g1), 0);
  assert_code(arbor_group_join(g, arbor_probe_join_cb, &g2), ARBOR_EALREADY);
  arbor_test_run_until(&loop, g1.finishes > 0);
  arbor_test_close(rt, &loop);
  assert_int_eq(g1.finishes, 1);
  assert_int_eq(g2.finishes, 0);
}

/* Lookups and reads with bad arguments. */
static void badinput_lookups_and_reads(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_event_t ev[4];
  uint64_t cursor = 1, missed = 77;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  assert_null(arbor_node_find(rt, arbor_node_id(t) + 12345));
  assert_code(arbor_events_read(rt, NULL, ev, 4, NULL), ARBOR_EINVAL);
  assert_code(arbor_events_read(NULL, &cursor, ev, 4, NULL), ARBOR_EINVAL);
  assert_code(arbor_events_read(rt, &cursor, NULL, 4, NULL), ARBOR_EINVAL);
  assert_uint_eq(cursor, 1);
  assert_true(arbor_events_read(rt, &cursor, ev, 4, &missed) > 0);
  assert_uint_eq(missed, 0);
  assert_code(arbor_node_attr_set(NULL, "k", "v"), ARBOR_EINVAL);
  assert_code(arbor_error_format(NULL, NULL, 0), ARBOR_EINVAL);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(badinput_spawn_null_and_no_start),
    cmocka_unit_test(badinput_spawn_into_task_ekind),
    cmocka_unit_test(badinput_spawn_into_finished_group_efinished),
    cmocka_unit_test(badinput_spawn_into_cancelled_group_ecanceled),
    cmocka_unit_test(badinput_spawn_into_failing_group_refused),
    cmocka_unit_test(badinput_task_calls_wrong_kind_or_state),
    cmocka_unit_test(badinput_fail_null_error_still_fails),
    cmocka_unit_test(badinput_own_refusals),
    cmocka_unit_test(badinput_refused_join_never_calls_back),
    cmocka_unit_test(badinput_lookups_and_reads),
};

ARBOR_TEST_MAIN(tests)
