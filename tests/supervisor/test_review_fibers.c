/* tests/supervisor/test_review_fibers.c - review of fiber.c, scope.c, wait.c,
 * work.c, process.c and overflow.c against arbor.h and DESIGN.md rules 1-6, 8.
 *
 * The first six tests each caught a defect the review found (now fixed: second
 * fail deadline's error, re-entered scope, huge relative deadline, scope_cancel
 * after a return inside, abandoned shielded fiber, SIG_IGN before the overflow
 * handler); the others pin behaviours the review checked and found right. Nothing sleeps and nothing
 * asserts on elapsed time: short deadlines are driven with blocking loop passes
 * (UV_RUN_ONCE) until the condition they cause holds. */
#include "harness.h"
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOUR (3600u * 1000u)

/* Blocking loop passes until cond; bounded, so a bug fails instead of hanging. */
#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 100000 && !(cond); k_++)                                         \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    if (!(cond)) {                                                                     \
      print_error("condition never held: %s\n", #cond);                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

static struct arbor_ctx_s *fiber_of(arbor_node_t *n) { return arbor__task_data(n); }

static int parked_in(arbor_node_t *n, const char *what) {
  arbor_fiber_info_t info;
  if (arbor_node_fiber_info(n, &info) != 0 || info.wait_what == NULL)
    return 0;
  return fiber_of(n)->parked && strcmp(info.wait_what, what) == 0;
}

/* ======================================================= scopes (scope.c) */

/* --- bug: a second fail-mode expiry is reported with the first one's error */

typedef struct {
  int rc_a, rc_b, line_b, done;
} two_fail_t;

static int two_fail_scopes(arbor_ctx_t *cx, void *arg) {
  two_fail_t *t = arg;
  arbor_scope_t a, b;
  arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.fail_after_ms = 1});
  arbor_sleep(cx, HOUR);
  t->rc_a = arbor_scope_exit(cx, &a);            /* handled: the fiber goes on */
  t->line_b = __LINE__; arbor_scope_enter(cx, &b, &(arbor_scope_opts_t){.fail_after_ms = 1});
  arbor_sleep(cx, HOUR);
  t->rc_b = arbor_scope_exit(cx, &b);
  t->done = 1;
  return t->rc_b;                                /* fails with b's timeout */
}

/* arbor.h: "a fiber that returns [ARBOR_ETIMEDOUT] fails with a timeout error naming
 * the scope's file:line". The fiber returns b's ETIMEDOUT; its error names a, the
 * scope whose expiry it had already handled (scope.c keeps the first timeout error
 * of the fiber's life, fiber.c uses it for any later ETIMEDOUT). */
static void scope_timeout_error_names_the_scope_that_expired_last(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  two_fail_t t = {0};
  arbor_node_t *n;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "two", .fn = two_fail_scopes,
                                                      .arg = &t},
                                &n),
              0);
  arbor_node_ref(n);
  run_once_until(&loop, arbor_node_is_finished(n));
  assert_code(t.rc_a, ARBOR_ETIMEDOUT);
  assert_code(t.rc_b, ARBOR_ETIMEDOUT);
  assert_outcome(n, FAILED);
  assert_code(arbor_error_code(arbor_node_error(n)), ARBOR_ETIMEDOUT);
  assert_int_eq(arbor_error_line(arbor_node_error(n)), t.line_b);
  arbor_node_unref(n);
  arbor_test_close(rt, &loop);
}

/* --- bug: entering a scope that is already open links it to itself */

typedef struct {
  int rc1, rc2, done;
} reenter_t;

static int reenter_body(arbor_ctx_t *cx, void *arg) {
  reenter_t *r = arg;
  arbor_scope_t s;
  r->rc1 = arbor_scope_enter(cx, &s, NULL);
  r->rc2 = arbor_scope_enter(cx, &s, NULL);
  r->done = 1;
  if (r->rc2 == 0)
    return 0;                  /* s->parent_ == &s now: any checkpoint would spin forever */
  arbor_scope_exit(cx, &s);
  return 0;
}

/* Scope misuse must be refused, not turned into a hang: with s open, a second
 * arbor_scope_enter(cx, &s) sets s->parent_ = cx->scope = &s, and the next walk of
 * the chain (every checkpoint, arbor__fiber_cancelled, arbor_current_effective_
 * deadline) loops forever. */
static void scope_reentering_an_open_scope_is_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  reenter_t r = {0};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "reenter", .fn = reenter_body,
                                                      .arg = &r},
                                NULL),
              0);
  arbor_test_run_until(&loop, r.done);
  assert_code(r.rc1, 0);
  assert_true(r.rc2 < 0);
  arbor_test_close(rt, &loop);
}

/* --- bug: a relative deadline near UINT64_MAX wraps into the past */

typedef struct {
  int rc, caught, done;
  uint64_t deadline, now;
} huge_t;

static int huge_deadline_body(arbor_ctx_t *cx, void *arg) {
  huge_t *h = arg;
  arbor_scope_t s;
  arbor_scope_enter(cx, &s, &(arbor_scope_opts_t){.move_on_after_ms = UINT64_MAX});
  h->deadline = arbor_current_effective_deadline(cx);
  h->now = arbor_now_ms(arbor_node_runtime(arbor_ctx_node(cx)));
  h->rc = arbor_yield(cx);
  arbor_scope_exit(cx, &s);
  h->caught = arbor_scope_cancelled_caught(&s);
  h->done = 1;
  return 0;
}

/* "move_on_after_ms = UINT64_MAX" (never, in practice) computes now + ms, which
 * wraps to now - 1: the scope is cancelled at its first checkpoint. arbor_sleep
 * saturates the same sum (fiber.c); scope.c does not. */
static void scope_huge_relative_deadline_means_none(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  huge_t h = {0};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  uv_update_time(&loop);
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "huge", .fn = huge_deadline_body,
                                                      .arg = &h},
                                NULL),
              0);
  arbor_test_run_until(&loop, h.done);
  assert_true(h.deadline >= h.now);
  assert_code(h.rc, 0);
  assert_int_eq(h.caught, 0);
  arbor_test_close(rt, &loop);
}

/* --- bug: arbor_scope_cancel on a scope its fiber returned inside */

static arbor_scope_t leaked_scope;   /* caller-owned memory that outlives the fiber */

static int return_inside_scope(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_scope_enter(cx, &leaked_scope, NULL);
  return 0;                            /* misuse: fiber.c fails it (ESTATE) */
}

/* arbor.h: arbor_scope_cancel -> ARBOR_ESTATE for a scope that is not open. A fiber
 * that returned inside its scope has no open scope any more (fiber_finished clears
 * cx->scope), but scope->cx_ still points at the fiber record inside the task node.
 * Once retention evicts the node, arbor_scope_cancel writes nothing but reads the
 * freed node (arbor__fiber_interrupt -> f->parked): a use after free (ASan), and
 * it returns 0. */
static void scope_cancel_after_fiber_returned_inside_is_estate(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *n;
  uint64_t id;
  (void)state;
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.retain_finished = 1});
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "leaks-scope",
                                                      .fn = return_inside_scope},
                                &n),
              0);
  id = arbor_node_id(n);
  arbor_test_run_until(&loop, arbor_node_is_finished(n));
  assert_outcome(n, FAILED);
  p.done_in_start = 1;                 /* a newer FINISHED node evicts the fiber */
  arbor_test_spawn(arbor_root(rt), &p, "evictor", 0);
  arbor_test_run_until(&loop, p.finishes == 1 && arbor_node_find(rt, id) == NULL);
  assert_code(arbor_scope_cancel(&leaked_scope), ARBOR_ESTATE);
  arbor_test_close(rt, &loop);
}

/* ============================================ readiness handshake (fiber.c) */

enum { CH_SLEEP_UNREADY, CH_FAIL_EARLY, CH_READY_THEN_SLEEP };

typedef struct {
  arbor_node_t *group;           /* where the child goes */
  int child_plan;
  uint64_t move_on_ms;           /* a move-on scope around the start; 0: none */
  int rc, after_rc, caught, done;
  arbor_node_t *child;
  void *value;
} starter_t;

static int child_value = 7;

static int handshake_child(arbor_ctx_t *cx, void *arg) {
  starter_t *s = arg;
  switch (s->child_plan) {
  case CH_SLEEP_UNREADY:
    return arbor_sleep(cx, HOUR);
  case CH_FAIL_EARLY:
    arbor_yield(cx);
    return -EIO;
  case CH_READY_THEN_SLEEP:
    arbor_fiber_started(cx, &child_value);
    return arbor_sleep(cx, HOUR);
  }
  return 0;
}

static int starter_body(arbor_ctx_t *cx, void *arg) {
  starter_t *s = arg;
  arbor_scope_t scope;
  arbor_fiber_spec_t spec = {.name = "child", .fn = handshake_child, .arg = s};
  if (s->move_on_ms)
    arbor_scope_enter(cx, &scope, &(arbor_scope_opts_t){.move_on_after_ms = s->move_on_ms});
  s->rc = arbor_fiber_start(cx, s->group, &spec, &s->value, &s->child);
  if (s->move_on_ms) {
    arbor_scope_exit(cx, &scope);
    s->caught = arbor_scope_cancelled_caught(&scope);
  }
  s->after_rc = arbor_yield(cx);   /* the starter itself is not cancelled */
  s->done = 1;
  return 0;
}

static arbor_node_t *spawn_starter(arbor_runtime_t *rt, starter_t *s) {
  arbor_node_t *n;
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "starter", .fn = starter_body,
                                                      .arg = s},
                                &n),
              0);
  return n;
}

/* The child is cancelled while still CREATED (its start never runs): the starter
 * wakes once with ARBOR_ECANCELED and is not cancelled itself. */
static void handshake_child_cancelled_before_it_runs(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  starter_t s = {.child_plan = CH_SLEEP_UNREADY};
  arbor_node_t *st, *child;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  s.group = arbor_test_group(arbor_root(rt), "g");
  st = spawn_starter(rt, &s);
  arbor_test_run_until(&loop, arbor_node_first_child(s.group) != NULL);
  child = arbor_node_first_child(s.group);
  assert_state(child, CREATED);
  assert_true(parked_in(st, "fiber_start"));
  assert_code(arbor_node_cancel(child), 0);
  assert_state(child, FINISHED);
  arbor_test_run_until(&loop, s.done);
  assert_code(s.rc, ARBOR_ECANCELED);
  assert_code(s.after_rc, 0);
  assert_ptr_equal(s.child, child);
  assert_outcome(child, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* The child's group (not the starter's) is cancelled while the child is STARTING
 * and parked: the starter learns ARBOR_ECANCELED, stays uncancelled. */
static void handshake_child_group_cancelled_while_starting(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  starter_t s = {.child_plan = CH_SLEEP_UNREADY};
  arbor_node_t *child;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  s.group = arbor_test_group(arbor_root(rt), "g");
  spawn_starter(rt, &s);
  arbor_test_run_until(&loop, (child = arbor_node_first_child(s.group)) != NULL &&
                                  parked_in(child, "sleep"));
  assert_state(child, STARTING);
  assert_code(arbor_node_cancel(s.group), 0);
  arbor_test_run_until(&loop, s.done);
  assert_code(s.rc, ARBOR_ECANCELED);
  assert_code(s.after_rc, 0);
  assert_outcome(child, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* The child fails before it reports ready, in another group: the starter gets the
 * child's code, and only the child's group fails (rule 2). */
static void handshake_child_fails_in_another_group(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  starter_t s = {.child_plan = CH_FAIL_EARLY};
  arbor_node_t *st;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  s.group = arbor_test_group(arbor_root(rt), "g");
  st = spawn_starter(rt, &s);
  arbor_test_run_until(&loop, s.done);
  assert_code(s.rc, -EIO);
  assert_code(s.after_rc, 0);
  assert_outcome(s.child, FAILED);
  assert_false(arbor_node_is_cancelled(st));
  arbor_test_close(rt, &loop);
}

/* The starter's own deadline expires while it waits (the timer path, on_fiber_timer,
 * not the cancel hook): the child is cancelled, the starter's scope caught it, and
 * the starter goes on uncancelled. */
static void handshake_starter_deadline_cancels_child(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  starter_t s = {.child_plan = CH_SLEEP_UNREADY, .move_on_ms = 1};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  s.group = arbor_test_group(arbor_root(rt), "g");
  spawn_starter(rt, &s);
  run_once_until(&loop, s.done);
  assert_code(s.rc, ARBOR_ECANCELED);
  assert_int_eq(s.caught, 1);
  assert_code(s.after_rc, 0);
  assert_true(arbor_node_is_cancelled(s.child));
  run_once_until(&loop, arbor_node_is_finished(s.child));
  assert_outcome(s.child, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* Ready value handed over; the child goes on in STARTED. */
static void handshake_ready_value(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  starter_t s = {.child_plan = CH_READY_THEN_SLEEP};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  s.group = arbor_test_group(arbor_root(rt), "g");
  spawn_starter(rt, &s);
  arbor_test_run_until(&loop, s.done);
  assert_code(s.rc, 0);
  assert_ptr_equal(s.value, &child_value);
  assert_state(s.child, STARTED);
  arbor_test_close(rt, &loop);
}

/* ===================================================== arbor_wait (wait.c) */

typedef struct {
  arbor_node_t *target;
  int rc, done;
} waiter_t;

static int wait_body(arbor_ctx_t *cx, void *arg) {
  waiter_t *w = arg;
  w->rc = arbor_wait(cx, w->target);
  w->done = 1;
  return 0;
}

/* A node evicted from retention but still referenced by the caller: FINISHED, so
 * the wait returns 0 at once. */
static void wait_on_evicted_referenced_node(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t a = {0}, b = {0};
  arbor_node_t *t;
  waiter_t w = {0};
  uint64_t id;
  (void)state;
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.retain_finished = 1});
  a.done_in_start = b.done_in_start = 1;
  t = arbor_node_ref(arbor_test_spawn(arbor_root(rt), &a, "old", 0));
  id = arbor_node_id(t);
  arbor_test_run_until(&loop, a.finishes == 1);
  arbor_test_spawn(arbor_root(rt), &b, "newer", 0);
  arbor_test_run_until(&loop, b.finishes == 1 && arbor_node_find(rt, id) == NULL);
  w.target = t;
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "w", .fn = wait_body, .arg = &w},
                                NULL),
              0);
  arbor_test_run_until(&loop, w.done);
  assert_code(w.rc, 0);
  arbor_node_unref(t);
  arbor_test_close(rt, &loop);
}

static int waiters_on(arbor_node_t *n) {
  int k = 0;
  for (struct arbor__waiter *w = n->extra != NULL ? n->extra->waiters : NULL; w; w = w->next)
    k++;
  return k;
}

/* Two fibers wait for one task; one is cancelled (it leaves the list at once), the
 * task ends: the other wakes once with 0. */
static void wait_cancelled_waiter_leaves_the_list(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t, *n1, *n2;
  waiter_t w1 = {0}, w2 = {0};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  t = arbor_test_spawn(arbor_root(rt), &p, "target", 0);
  w1.target = w2.target = t;
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "w1", .fn = wait_body, .arg = &w1},
                                &n1),
              0);
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "w2", .fn = wait_body, .arg = &w2},
                                &n2),
              0);
  arbor_test_run_until(&loop, parked_in(n1, "wait") && parked_in(n2, "wait"));
  assert_int_eq(waiters_on(t), 2);
  assert_code(arbor_node_cancel(n1), 0);
  assert_int_eq(waiters_on(t), 1);
  arbor_test_run_until(&loop, w1.done);
  assert_code(w1.rc, ARBOR_ECANCELED);
  assert_code(arbor_task_done(t), 0);
  assert_int_eq(waiters_on(t), 0);
  arbor_test_run_until(&loop, w2.done);
  assert_code(w2.rc, 0);
  arbor_test_close(rt, &loop);
}

/* ====================================== run_in_thread under a deadline (work.c) */

typedef struct {
  uv_mutex_t mu;
  uv_cond_t cv;
  int open, started, returned;
} gate_t;

static int gated_fn(void *arg) {
  gate_t *g = arg;
  uv_mutex_lock(&g->mu);
  g->started++;
  uv_cond_broadcast(&g->cv);
  while (!g->open)
    uv_cond_wait(&g->cv, &g->mu);
  g->returned++;
  uv_mutex_unlock(&g->mu);
  return 5;
}

typedef struct {
  gate_t *gate;
  int rc, returned_at_return, caught, done;
} worker_t;

static int deadline_worker(arbor_ctx_t *cx, void *arg) {
  worker_t *w = arg;
  arbor_scope_t s;
  arbor_scope_enter(cx, &s, &(arbor_scope_opts_t){.move_on_after_ms = 1});
  w->rc = arbor_run_in_thread(cx, gated_fn, w->gate);
  uv_mutex_lock(&w->gate->mu);
  w->returned_at_return = w->gate->returned;
  uv_mutex_unlock(&w->gate->mu);
  arbor_scope_exit(cx, &s);
  w->caught = arbor_scope_cancelled_caught(&s);
  w->done = 1;
  return 0;
}

static void tick_cb(uv_timer_t *t) { (void)t; }

/* The deadline expires (through the fiber's timer, not a cancel hook) while fn
 * runs: the fiber stays parked, shielded, until fn returned, then ARBOR_ECANCELED. */
static void work_deadline_while_fn_runs_waits_shielded(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  gate_t g;
  worker_t w = {.gate = &g};
  arbor_node_t *n;
  uv_timer_t tick;
  (void)state;
  memset(&g, 0, sizeof g);
  assert_int_eq(uv_mutex_init(&g.mu), 0);
  assert_int_eq(uv_cond_init(&g.cv), 0);
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "worker", .fn = deadline_worker,
                                                      .arg = &w},
                                &n),
              0);
  arbor_test_run_until(&loop, parked_in(n, "run_in_thread"));
  uv_mutex_lock(&g.mu);
  while (g.started < 1)
    uv_cond_wait(&g.cv, &g.mu);
  uv_mutex_unlock(&g.mu);
  /* The pass in which the deadline fires would then block in poll (nothing but
   * the gated work is left): a 1 ms tick keeps the passes coming. */
  assert_int_eq(uv_timer_init(&loop, &tick), 0);
  assert_int_eq(uv_timer_start(&tick, tick_cb, 1, 1), 0);
  run_once_until(&loop, arbor_test_count_events(rt, arbor_node_id(n), ARBOR_EVENT_DEADLINE) == 1);
  uv_close((uv_handle_t *)&tick, NULL);
  arbor_test_spin(&loop, 5);
  assert_int_eq(w.done, 0);
  assert_true(parked_in(n, "run_in_thread"));
  uv_mutex_lock(&g.mu);
  g.open = 1;
  uv_cond_broadcast(&g.cv);
  uv_mutex_unlock(&g.mu);
  run_once_until(&loop, w.done);
  assert_code(w.rc, ARBOR_ECANCELED);
  assert_int_eq(w.returned_at_return, 1);
  assert_int_eq(w.caught, 1);
  run_once_until(&loop, arbor_node_is_finished(n));
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
  uv_cond_destroy(&g.cv);
  uv_mutex_destroy(&g.mu);
}

/* ============================================================ process.c */

typedef struct {
  int rc, done;
  arbor_process_result_t res;
} proc_t;

static int proc_body(arbor_ctx_t *cx, void *arg) {
  proc_t *p = arg;
  char *argv[] = {"sh", "-c", "exit 3", NULL};
  p->rc = arbor_process_run(cx, &p->res, &(arbor_process_opts_t){.file = "/bin/sh", .args = argv});
  p->done = 1;
  return 0;
}

typedef struct {
  arbor_node_t *node;
  int cancelled;
} checker_t;

/* A check handle runs after the poll phase, where libuv reaps the child and calls
 * the exit callback, and before the next pass's drain resumes the fiber. */
static void cancel_after_exit(uv_check_t *h) {
  checker_t *c = h->data;
  struct arbor_ctx_s *f = fiber_of(c->node);
  if (c->cancelled || f->parked || f->wait_what == NULL || strcmp(f->wait_what, "process_wait"))
    return;
  c->cancelled = 1;
  arbor_node_cancel(c->node);
}

/* arbor.h: "A child that exited before the cancellation reached the fiber makes the
 * call return 0 even if the fiber is cancelled before it runs again." */
static void process_exit_then_cancel_before_resume_returns_0(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  proc_t p = {0};
  checker_t c = {0};
  uv_check_t check;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "proc", .fn = proc_body, .arg = &p},
                                &c.node),
              0);
  assert_int_eq(uv_check_init(&loop, &check), 0);
  check.data = &c;
  assert_int_eq(uv_check_start(&check, cancel_after_exit), 0);
  run_once_until(&loop, p.done);
  assert_int_eq(c.cancelled, 1);
  assert_code(p.rc, 0);
  assert_int_eq(p.res.exit_status, 3);
  assert_int_eq(p.res.killed, 0);
  uv_close((uv_handle_t *)&check, NULL);
  arbor_test_close(rt, &loop);
}

/* ====================================== shutdown gives up (arbor_run, rule 8) */

typedef struct {
  arbor_node_t *target;
  int rc, finishes;
  arbor_outcome_t outcome;
  int code;
} shielded_t;

static int shielded_waiter(arbor_ctx_t *cx, void *arg) {
  shielded_t *s = arg;
  arbor_scope_t shield;
  arbor_scope_enter(cx, &shield, &(arbor_scope_opts_t){.shield = 1});
  s->rc = arbor_wait(cx, s->target);
  arbor_scope_exit(cx, &shield);
  return s->rc;
}

static void shielded_finish(arbor_node_t *node, void *arg) {
  shielded_t *s = arg;
  s->finishes++;
  s->outcome = arbor_node_outcome(node);
  s->code = arbor_node_error(node) != NULL ? arbor_error_code(arbor_node_error(node)) : 0;
}

/* arbor.h, arbor_run: when shutdown gives up, "every such task [whose body never
 * ended] ends FAILED with an ARBOR_EDEADLK error ... (unless it had failed
 * already)". A fiber parked in a shielded wait is such a task: task.c's abandon
 * only wakes it with ARBOR_ECANCELED, and it ends CANCELLED, with nothing in the
 * tree saying shutdown gave up on it. */
static void rule8_abandoned_shielded_fiber_fails_edeadlk(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t stuck = {0};
  shielded_t s = {0};
  (void)state;
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.no_signals = 1});
  /* The fiber comes first among the root's children, so shutdown's walk gives up on
   * it before it ends the stuck task (which would wake it normally). */
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "shielded", .fn = shielded_waiter,
                                                      .arg = &s, .finish = shielded_finish},
                                NULL),
              0);
  stuck.cancel_action = ARBOR_PROBE_CANCEL_STAY;
  s.target = arbor_test_spawn(arbor_root(rt), &stuck, "stuck", ARBOR_PROBE_CUSTOM_CANCEL);
  assert_code(arbor_run(rt), ARBOR_EDEADLK);
  assert_int_eq(stuck.finishes, 1);
  assert_outcome_eq(stuck.finish_outcome, ARBOR_OUTCOME_FAILED);
  assert_int_eq(s.finishes, 1);
  assert_code(s.rc, ARBOR_ECANCELED);
  assert_outcome_eq(s.outcome, ARBOR_OUTCOME_FAILED);
  assert_code(s.code, ARBOR_EDEADLK);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* ==================================================== overflow.c chaining */

/* In a fresh process (exec'd, so arbor's handler is installed first here and finds
 * SIG_IGN as the previous action): ignore SIGSEGV, run one fiber, send ourselves
 * SIGSEGV. Without arbor the sent signal is discarded. */
static int yield_once(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_yield(cx);
}

__attribute__((constructor)) static void sig_ign_child(void) {
  if (getenv("ARBOR_REVIEW_SIGIGN_CHILD") == NULL)
    return;
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(SIGSEGV, SIG_IGN);
  uv_loop_t loop;
  arbor_runtime_t *rt;
  if (uv_loop_init(&loop) != 0 ||
      arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1}) != 0)
    _exit(3);
  if (arbor_fiber_spawn(arbor_root(rt), &(arbor_fiber_spec_t){.name = "f", .fn = yield_once},
                        NULL) != 0)
    _exit(4);
  uv_run(&loop, UV_RUN_DEFAULT);
  raise(SIGSEGV);                /* sent, not a fault: si_code SI_TKILL */
  raise(SIGSEGV);                /* and again: still ignored */
  _exit(0);
}

/* overflow.c's on_fault: "SIG_DFL (or SIG_IGN, which the kernel ignores for a fault
 * anyway)" -> signal(sig, SIG_DFL); raise(sig). For a *sent* SIGSEGV/SIGBUS the
 * previous SIG_IGN meant "discard"; with arbor installed the process dies. */
static void overflow_sent_signal_still_ignored_when_it_was_before(void **state) {
  char self[4096];
  ssize_t len;
  int status;
  (void)state;
  len = readlink("/proc/self/exe", self, sizeof self - 1);
  assert_true(len > 0);
  self[len] = '\0';
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *argv[] = {self, "--list", NULL};
    setenv("ARBOR_REVIEW_SIGIGN_CHILD", "1", 1);
    execv(self, argv);
    _exit(127);
  }
  assert_int_eq(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status))
    print_error("child died of signal %d\n", WTERMSIG(status));
  assert_true(WIFEXITED(status));
  assert_int_eq(WEXITSTATUS(status), 0);
}

static const struct CMUnitTest review_fibers_tests[] = {
    cmocka_unit_test(scope_timeout_error_names_the_scope_that_expired_last),
    cmocka_unit_test(scope_reentering_an_open_scope_is_refused),
    cmocka_unit_test(scope_huge_relative_deadline_means_none),
    cmocka_unit_test(scope_cancel_after_fiber_returned_inside_is_estate),
    cmocka_unit_test(handshake_child_cancelled_before_it_runs),
    cmocka_unit_test(handshake_child_group_cancelled_while_starting),
    cmocka_unit_test(handshake_child_fails_in_another_group),
    cmocka_unit_test(handshake_starter_deadline_cancels_child),
    cmocka_unit_test(handshake_ready_value),
    cmocka_unit_test(wait_on_evicted_referenced_node),
    cmocka_unit_test(wait_cancelled_waiter_leaves_the_list),
    cmocka_unit_test(work_deadline_while_fn_runs_waits_shielded),
    cmocka_unit_test(process_exit_then_cancel_before_resume_returns_0),
    cmocka_unit_test(rule8_abandoned_shielded_fiber_fails_edeadlk),
    cmocka_unit_test(overflow_sent_signal_still_ignored_when_it_was_before),
};

ARBOR_TEST_MAIN(review_fibers_tests)
