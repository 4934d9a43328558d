/* test_task.c - callback tasks: start, done, fail, handshake, owned handles, data. */
#include "harness.h"

/* start runs from the loop, never inside arbor_task_spawn. */
static void task_start_runs_from_loop_not_inside_spawn(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  assert_int_eq(p.starts, 0);
  assert_state(t, CREATED);
  assert_outcome(t, NONE);
  arbor_test_run_until(&loop, p.starts > 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(p.starts, 1);
  assert_int_eq(p.cancels, 0);
  assert_int_eq(p.finishes, 0);
  assert_state(t, STARTED);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_int_eq(p.starts, 1);
  arbor_test_close(rt, &loop);
}

/* A negative return from start fails the task with an error of that code. */
static void task_start_negative_fails_with_that_code(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  const arbor_error_t *err;
  size_t n, i, failed = 0;
  arbor_event_t *ev;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  p.start_rc = -ECONNREFUSED;
  t = arbor_test_spawn(arbor_root(rt), &p, "refused", 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(p.starts, 1);
  assert_int_eq(p.finishes, 1);
  assert_int_eq(p.cancels, 0);
  assert_outcome(t, FAILED);
  err = arbor_node_error(t);
  assert_non_null(err);
  assert_code(arbor_error_code(err), -ECONNREFUSED);

  ev = arbor_test_events(rt, &n);
  for (i = 0; i < n; i++)
    if (ev[i].node_id == arbor_node_id(t) && ev[i].type == ARBOR_EVENT_FAILED) {
      failed++;
      assert_non_null(ev[i].error);
      assert_code(arbor_error_code(ev[i].error), -ECONNREFUSED);
    }
  free(ev);
  assert_uint_eq(failed, 1);
  /* the body never reported success; it went through STARTED (or STOPPING) only */
  {
    char path[256];
    arbor_test_path_text(rt, arbor_node_id(t), arbor_node_id(arbor_root(rt)), path,
                         sizeof path);
    if (strcmp(path, "CREATED>STARTED>STOPPED>FINISHED") != 0 &&
        strcmp(path, "CREATED>STARTED>STOPPING>STOPPED>FINISHED") != 0)
      fail_msg("unexpected path %s", path);
  }
  arbor_test_close(rt, &loop);
}

/* done from inside start: the body ended synchronously, outcome OK. */
static void task_done_inside_start(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  p.done_in_start = 1;
  t = arbor_test_spawn(arbor_root(rt), &p, "quick", 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_code(p.start_call_rc, 0);
  assert_int_eq(p.finishes, 1);
  assert_outcome(t, OK);
  assert_path(rt, t, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* handshake reported from inside start: CREATED -> STARTING -> STARTED. */
static void task_started_inside_start(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  p.started_in_start = 1;
  t = arbor_test_spawn(arbor_root(rt), &p, "ready", ARBOR_PROBE_HANDSHAKE);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(p.start_call_rc, 0);
  assert_state_eq(p.state_in_start, ARBOR_STATE_STARTING);
  assert_state(t, STARTED);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, OK);
  assert_path(rt, t, CREATED, STARTING, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* fail records the error with the caller's location; finish cb once. */
static void task_fail_records_error_and_location(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  const arbor_error_t *err;
  int line;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  line = __LINE__ + 1;
  assert_code(arbor_task_fail(t, -4242, "custom %s", "failure"), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(p.finishes, 1);
  assert_outcome(t, FAILED);
  err = arbor_node_error(t);
  assert_non_null(err);
  assert_code(arbor_error_code(err), -4242);
  assert_string_equal(arbor_error_message(err), "custom failure");
  assert_string_equal(arbor_error_file(err), __FILE__);
  assert_int_eq(arbor_error_line(err), line);
  assert_string_equal(arbor_error_function(err), "task_fail_records_error_and_location");
  assert_null(arbor_error_cause(err));
  assert_uint_eq(arbor_error_child_count(err), 0);
  assert_uint_eq(arbor_error_node_id(err), arbor_node_id(t)); /* the node it happened in */
  arbor_test_close(rt, &loop);
}

/* arbor_task_fail_error with a wrapped chain keeps the whole chain. */
static void task_fail_error_keeps_chain(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  const arbor_error_t *err;
  arbor_error_t *inner, *outer;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  inner = arbor_error_new(-ENOSPC, "disk full");
  assert_non_null(inner);
  outer = arbor_error_wrap(inner, -EIO, "write failed");
  assert_non_null(outer);
  assert_code(arbor_task_fail_error(t, outer), 0); /* takes the reference */
  arbor_test_run_until(&loop, p.finishes > 0);
  err = arbor_node_error(t);
  assert_non_null(err);
  assert_code(arbor_error_code(err), -EIO);
  assert_non_null(arbor_error_cause(err));
  assert_code(arbor_error_code(arbor_error_cause(err)), -ENOSPC);
  assert_string_equal(arbor_error_message(arbor_error_cause(err)), "disk full");
  arbor_test_close(rt, &loop);
}

/* A task that owns a timer is FINISHED only after arbor closed the timer: right after
 * done it is STOPPED (uv close callbacks never run synchronously). */
static void task_owned_timer_closed_before_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_timer_plan_t plan = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  plan.timeout_ms = 3600 * 1000;
  t = arbor_test_spawn_timer(arbor_root(rt), &plan, "timer-owner");
  arbor_test_run_until(&loop, plan.starts > 0);
  assert_code(plan.own_rc, 0);
  assert_non_null(plan.timer);
  assert_true(uv_is_active((uv_handle_t *)plan.timer));
  assert_state(t, STARTED);

  assert_code(arbor_task_done(t), 0);
  assert_state(t, STOPPED);
  assert_int_eq(plan.finishes, 0);
  assert_true(uv_is_closing((uv_handle_t *)plan.timer));
  arbor_test_run_until(&loop, plan.finishes > 0);
  assert_int_eq(plan.fired, 0);
  assert_true(plan.timer_closing_at_finish);
  assert_false(plan.timer_active_at_finish);
  assert_outcome(t, OK);
  assert_path(rt, t, CREATED, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* The owned timer firing drives the task: done from the timer's own callback. */
static void task_owned_timer_done_from_its_callback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_timer_plan_t plan = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  plan.timeout_ms = 0;
  plan.action = ARBOR_TIMER_DONE;
  t = arbor_test_spawn_timer(arbor_root(rt), &plan, "tick");
  arbor_test_run_until(&loop, plan.finishes > 0);
  assert_int_eq(plan.fired, 1);
  assert_true(plan.timer_closing_at_finish);
  assert_outcome(t, OK);
  arbor_test_close(rt, &loop);
}

/* Failure from an owned handle's callback: FAILED, handle closed first. */
static void task_owned_timer_fail_from_its_callback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_timer_plan_t plan = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  plan.timeout_ms = 0;
  plan.action = ARBOR_TIMER_FAIL;
  plan.code = -ETIMEDOUT;
  t = arbor_test_spawn_timer(arbor_root(rt), &plan, "tick");
  arbor_test_run_until(&loop, plan.finishes > 0);
  assert_true(plan.timer_closing_at_finish);
  assert_outcome_eq(plan.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_outcome(t, FAILED);
  assert_code(arbor_error_code(arbor_node_error(t)), -ETIMEDOUT);
  arbor_test_close(rt, &loop);
}

static void close_test_timer(uv_handle_t *h) {
  ++*(int *)h->data;
}

/* A disowned handle is the caller's again: arbor does not close it. */
static void task_disown_gives_handle_back(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  uv_timer_t timer;
  int closed = 0;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_int_eq(uv_timer_init(&loop, &timer), 0);
  assert_code(arbor_task_own(t, (uv_handle_t *)&timer), 0);
  assert_code(arbor_task_own(t, (uv_handle_t *)&timer), ARBOR_EALREADY);
  assert_code(arbor_task_disown(t, (uv_handle_t *)&timer), 0);
  assert_code(arbor_task_disown(t, (uv_handle_t *)&timer), ARBOR_ENOENT);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_false(uv_is_closing((uv_handle_t *)&timer));
  timer.data = &closed;
  uv_close((uv_handle_t *)&timer, close_test_timer);
  arbor_test_run_until(&loop, closed > 0);
  arbor_test_close(rt, &loop);
}

static void never_fires(uv_timer_t *timer) {
  (void)timer;
  fail_msg("a one-hour timer fired");
}

/* Two owned handles: FINISHED only after both closed. */
static void task_owns_several_handles(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  uv_timer_t *timers;
  arbor_task_spec_t spec;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  spec = arbor_probe_spec(&p, "two", 0);
  spec.data_size = 2 * sizeof(uv_timer_t);
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), 0);
  timers = arbor_task_data(t);
  assert_non_null(timers);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_int_eq(uv_timer_init(&loop, &timers[0]), 0);
  assert_int_eq(uv_timer_init(&loop, &timers[1]), 0);
  assert_int_eq(uv_timer_start(&timers[1], never_fires, 3600 * 1000, 0), 0);
  assert_code(arbor_task_own(t, (uv_handle_t *)&timers[0]), 0);
  assert_code(arbor_task_own(t, (uv_handle_t *)&timers[1]), 0);
  assert_code(arbor_task_done(t), 0);
  assert_state(t, STOPPED);
  /* owning after the body ended is refused */
  {
    uv_timer_t late;
    assert_int_eq(uv_timer_init(&loop, &late), 0);
    assert_code(arbor_task_own(t, (uv_handle_t *)&late), ARBOR_ESTATE);
    uv_close((uv_handle_t *)&late, NULL);
    arbor_test_run_until(&loop, p.finishes > 0);
  }
  assert_true(uv_is_closing((uv_handle_t *)&timers[0]));
  assert_true(uv_is_closing((uv_handle_t *)&timers[1]));
  assert_outcome(t, OK);
  arbor_test_close(rt, &loop);
}

/* data_size bytes of zeroed, max-aligned storage; NULL without data_size; the arg is
 * the spec's. */
static void task_data_zeroed_aligned_and_arg(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0}, q = {0};
  arbor_node_t *t, *u;
  arbor_task_spec_t spec;
  unsigned char *data;
  size_t i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  spec = arbor_probe_spec(&p, "with-data", 0);
  spec.data_size = 100;
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), 0);
  data = arbor_task_data(t);
  assert_non_null(data);
  assert_uint_eq((uintptr_t)data % _Alignof(max_align_t), 0);
  for (i = 0; i < 100; i++)
    assert_int_eq(data[i], 0);
  memset(data, 0xab, 100);
  assert_ptr_equal(arbor_task_arg(t), &p);

  u = arbor_test_spawn(arbor_root(rt), &q, "no-data", 0);
  assert_null(arbor_task_data(u));
  assert_ptr_equal(arbor_task_arg(u), &q);

  arbor_test_run_until(&loop, p.starts && q.starts);
  assert_ptr_equal(arbor_task_data(t), data);
  assert_int_eq(data[99], 0xab);
  assert_code(arbor_task_done(t), 0);
  assert_code(arbor_task_done(u), 0);
  arbor_test_run_until(&loop, p.finishes && q.finishes);
  arbor_test_close(rt, &loop);
}

/* A task that fails cancels its own children. */
static void task_fail_cancels_its_children(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t owner = {0}, c1 = {0}, c2 = {0};
  arbor_node_t *task, *grp, *t1, *t2;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  task = arbor_test_spawn(arbor_root(rt), &owner, "owner", 0);
  arbor_test_run_until(&loop, owner.starts > 0);
  grp = arbor_test_group(task, "inner");
  t1 = arbor_test_spawn(grp, &c1, "c1", 0);
  t2 = arbor_test_spawn(grp, &c2, "c2", ARBOR_PROBE_CUSTOM_CANCEL);
  c2.cancel_action = ARBOR_PROBE_CANCEL_DONE;
  arbor_test_run_until(&loop, c1.starts && c2.starts);

  assert_code(arbor_task_fail(task, -EPROTO, "owner broke"), 0);
  arbor_test_run_until(&loop, owner.finishes > 0);
  assert_int_eq(c2.cancels, 1);
  assert_outcome(t1, CANCELLED);
  assert_outcome(t2, CANCELLED);
  assert_outcome(grp, CANCELLED);
  assert_true(c1.finish_order < owner.finish_order);
  assert_true(c2.finish_order < owner.finish_order);
  assert_outcome(task, FAILED);
  assert_code(arbor_error_code(arbor_node_error(task)), -EPROTO);
  arbor_test_close(rt, &loop);
}

/* done after a custom cancel hook ran: CANCELLED; fail after it: FAILED. */
static void task_done_after_cancel_is_cancelled(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "slow-stop", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.cancels > 0);
  arbor_test_spin(&loop, 10);
  assert_int_eq(p.cancels, 1);
  assert_state_eq(p.state_in_cancel, ARBOR_STATE_STOPPING);
  assert_state(t, STOPPING);
  assert_int_eq(p.finishes, 0);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, CANCELLED);
  assert_null(arbor_node_error(t));
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

static void task_fail_after_cancel_is_failed(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "slow-stop", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.cancels > 0);
  assert_code(arbor_task_fail(t, -EBADMSG, "cleanup failed"), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, FAILED);
  assert_non_null(arbor_node_error(t));
  assert_code(arbor_error_code(arbor_node_error(t)), -EBADMSG);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(t), ARBOR_EVENT_FAILED), 1);
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* The custom hook may end the task from inside the hook. */
static void task_cancel_hook_may_end_task_inside(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  p.cancel_action = ARBOR_PROBE_CANCEL_DONE;
  t = arbor_test_spawn(arbor_root(rt), &p, "quick-stop", ARBOR_PROBE_CUSTOM_CANCEL);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_int_eq(p.cancels, 1);
  assert_outcome(t, CANCELLED);
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* The names: given, copied, or the default "task". */
static void task_name_copied_and_default(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0}, q = {0};
  arbor_node_t *t, *u;
  char name[16] = "worker-1";
  arbor_task_spec_t spec;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, name, 0);
  strcpy(name, "changed");
  assert_string_equal(arbor_node_name(t), "worker-1");
  spec = arbor_probe_spec(&q, NULL, 0);
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &u), 0);
  assert_string_equal(arbor_node_name(u), "task");
  assert_int_eq(arbor_node_kind(t), ARBOR_KIND_TASK);
  assert_ptr_equal(arbor_node_parent(t), arbor_root(rt));
  assert_ptr_equal(arbor_node_runtime(t), rt);
  arbor_test_close(rt, &loop);
  assert_int_eq(p.finishes, 1);
  assert_int_eq(q.finishes, 1);
}

/* A task that cancels itself from inside start ends CANCELLED (default hook). */
static int cancel_self_start(arbor_node_t *task, void *arg) {
  arbor_probe_t *p = arg;
  p->starts++;
  p->start_call_rc = arbor_node_cancel(task);
  return 0;
}

static void task_cancels_itself_in_start(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_task_spec_t spec;
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  spec = arbor_probe_spec(&p, "self-cancel", 0);
  spec.start = cancel_self_start;
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_code(p.start_call_rc, 0);
  assert_int_eq(p.starts, 1);
  assert_outcome(t, CANCELLED);
  assert_path(rt, t, CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* A handshake task whose start returns a negative code fails from STARTING. */
static void task_handshake_start_negative_fails(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  p.start_rc = -EADDRINUSE;
  t = arbor_test_spawn(arbor_root(rt), &p, "bind", ARBOR_PROBE_HANDSHAKE);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, FAILED);
  assert_code(arbor_error_code(arbor_node_error(t)), -EADDRINUSE);
  assert_path(rt, t, CREATED, STARTING, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* A finish callback may spawn a new task (e.g. to restart by hand); it runs. */
struct respawn {
  arbor_probe_t first, second;
  int spawn_rc;
  arbor_node_t *root;
};

static void respawn_finish(arbor_node_t *node, void *arg) {
  struct respawn *r = arg;
  arbor_task_spec_t spec;
  arbor_probe_finish(node, &r->first);
  spec = arbor_probe_spec(&r->second, "second", 0);
  r->second.done_in_start = 1;
  r->spawn_rc = arbor_task_spawn(r->root, &spec, &r->second.node);
}

static void task_spawn_from_finish_callback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  struct respawn r;
  arbor_task_spec_t spec;
  arbor_node_t *t;
  (void)state;
  memset(&r, 0, sizeof r);
  arbor_test_open(&loop, &rt, NULL);

  r.root = arbor_root(rt);
  spec = arbor_probe_spec(&r.first, "first", 0);
  spec.finish = respawn_finish;
  spec.arg = &r;
  r.first.done_in_start = 1;
  spec.start = arbor_probe_start;
  /* start gets &r: its first member is the first probe */
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), 0);
  arbor_test_run_until(&loop, r.second.finishes > 0);
  assert_code(r.spawn_rc, 0);
  assert_int_eq(r.first.finishes, 1);
  assert_int_eq(r.second.starts, 1);
  assert_outcome_eq(r.second.finish_outcome, ARBOR_OUTCOME_OK);
  arbor_test_close(rt, &loop);
}

/* A handle owned while the task is STOPPING (custom hook) is still closed by arbor
 * when the body ends. */
static void task_own_while_stopping(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  arbor_task_spec_t spec;
  uv_timer_t *timer;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  spec = arbor_probe_spec(&p, "t", ARBOR_PROBE_CUSTOM_CANCEL);
  spec.data_size = sizeof(uv_timer_t);
  assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), 0);
  timer = arbor_task_data(t);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p.cancels > 0);
  assert_int_eq(uv_timer_init(&loop, timer), 0);
  assert_code(arbor_task_own(t, (uv_handle_t *)timer), 0);
  assert_code(arbor_task_done(t), 0);
  assert_state(t, STOPPED);
  assert_true(uv_is_closing((uv_handle_t *)timer));
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_outcome(t, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* Siblings failing from inside their cancel hooks (re-entrant failure while the
 * group is cancelling): every failure is kept, in order. */
static void task_fail_inside_cancel_hook_in_group(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[3] = {{0}};
  arbor_node_t *g, *t[3];
  const arbor_error_t *gerr;
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  for (i = 0; i < 3; i++) {
    p[i].cancel_action = ARBOR_PROBE_CANCEL_FAIL;
    p[i].fail_code = -100 - i;
    t[i] = arbor_test_spawn(g, &p[i], "t", ARBOR_PROBE_CUSTOM_CANCEL);
  }
  arbor_test_run_until(&loop, p[0].starts && p[1].starts && p[2].starts);
  assert_code(arbor_task_fail(t[1], -EIO, "first"), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  assert_int_eq(p[0].cancels, 1);
  assert_int_eq(p[1].cancels, 0);
  assert_int_eq(p[2].cancels, 1);
  assert_outcome(t[0], FAILED);
  assert_outcome(t[2], FAILED);
  gerr = arbor_node_error(g);
  assert_non_null(gerr);
  assert_uint_eq(arbor_error_child_count(gerr), 3);
  assert_code(arbor_error_code(arbor_error_child(gerr, 0)), -EIO);
  /* the other two after it, each once */
  {
    int a = arbor_error_code(arbor_error_child(gerr, 1));
    int b = arbor_error_code(arbor_error_child(gerr, 2));
    if (!((a == -100 && b == -102) || (a == -102 && b == -100)))
      fail_msg("children 1 and 2 of the error group: %d, %d", a, b);
  }
  assert_path(rt, t[1], CREATED, STARTED, STOPPED, FINISHED);
  assert_path(rt, t[0], CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  assert_path(rt, t[2], CREATED, STARTED, STOPPING, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(task_start_runs_from_loop_not_inside_spawn),
    cmocka_unit_test(task_start_negative_fails_with_that_code),
    cmocka_unit_test(task_done_inside_start),
    cmocka_unit_test(task_started_inside_start),
    cmocka_unit_test(task_fail_records_error_and_location),
    cmocka_unit_test(task_fail_error_keeps_chain),
    cmocka_unit_test(task_owned_timer_closed_before_finished),
    cmocka_unit_test(task_owned_timer_done_from_its_callback),
    cmocka_unit_test(task_owned_timer_fail_from_its_callback),
    cmocka_unit_test(task_disown_gives_handle_back),
    cmocka_unit_test(task_owns_several_handles),
    cmocka_unit_test(task_data_zeroed_aligned_and_arg),
    cmocka_unit_test(task_fail_cancels_its_children),
    cmocka_unit_test(task_done_after_cancel_is_cancelled),
    cmocka_unit_test(task_fail_after_cancel_is_failed),
    cmocka_unit_test(task_cancel_hook_may_end_task_inside),
    cmocka_unit_test(task_name_copied_and_default),
    cmocka_unit_test(task_cancels_itself_in_start),
    cmocka_unit_test(task_handshake_start_negative_fails),
    cmocka_unit_test(task_spawn_from_finish_callback),
    cmocka_unit_test(task_own_while_stopping),
    cmocka_unit_test(task_fail_inside_cancel_hook_in_group),
};

ARBOR_TEST_MAIN(tests)
