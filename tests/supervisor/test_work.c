/* tests/supervisor/test_work.c - arbor_run_in_thread (supervisor/work.c): a
 * blocking function on libuv's thread pool as a fiber checkpoint, and rule 4 for
 * it, before and while the function runs. The pool's threads are held by a gate
 * the test opens, so the order of events never depends on timing. */
#include "harness.h"

/* A gate the pool's functions wait at, and counts of what they did. */
typedef struct {
  uv_mutex_t mu;
  uv_cond_t cv;
  int open;
  int started;                   /* functions that began */
  int returned;                  /* functions that returned */
} gate_t;

static void gate_init(gate_t *g) {
  memset(g, 0, sizeof *g);
  assert_int_eq(uv_mutex_init(&g->mu), 0);
  assert_int_eq(uv_cond_init(&g->cv), 0);
}

static void gate_destroy(gate_t *g) {
  uv_cond_destroy(&g->cv);
  uv_mutex_destroy(&g->mu);
}

static void gate_open(gate_t *g) {
  uv_mutex_lock(&g->mu);
  g->open = 1;
  uv_cond_broadcast(&g->cv);
  uv_mutex_unlock(&g->mu);
}

/* From the test's thread: blocks until n functions have begun. */
static void gate_wait_started(gate_t *g, int n) {
  uv_mutex_lock(&g->mu);
  while (g->started < n)
    uv_cond_wait(&g->cv, &g->mu);
  uv_mutex_unlock(&g->mu);
}

static int gate_count(gate_t *g, const int *field) {
  uv_mutex_lock(&g->mu);
  int v = *field;
  uv_mutex_unlock(&g->mu);
  return v;
}

/* What a fiber runs in a thread, and what it saw. */
typedef struct {
  gate_t *gate;                  /* NULL: return at once */
  int value;                     /* what fn returns */
  uv_thread_t thread;            /* where fn ran */
  int ran;
} job_t;

static int job_fn(void *arg) {
  job_t *j = arg;
  j->thread = uv_thread_self();
  if (j->gate != NULL) {
    uv_mutex_lock(&j->gate->mu);
    j->gate->started++;
    uv_cond_broadcast(&j->gate->cv);
    while (!j->gate->open)
      uv_cond_wait(&j->gate->cv, &j->gate->mu);
    j->ran = 1;
    j->gate->returned++;
    uv_mutex_unlock(&j->gate->mu);
  } else {
    j->ran = 1;
  }
  return j->value;
}

typedef struct {
  job_t job;
  int calling;                   /* about to call arbor_run_in_thread */
  int rc;
  int rc_after;                  /* a second call, after the first returned */
  int second;                    /* make that second call */
  int finished;
  arbor_ctx_t *cx;
} fib_t;

static int body(arbor_ctx_t *cx, void *arg) {
  fib_t *f = arg;
  f->cx = cx;
  f->calling = 1;
  f->rc = arbor_run_in_thread(cx, job_fn, &f->job);
  if (f->second)
    f->rc_after = arbor_run_in_thread(cx, job_fn, &f->job);
  return f->rc < 0 ? f->rc : 0;
}

static void on_finish(arbor_node_t *node, void *arg) {
  (void)node;
  ((fib_t *)arg)->finished = 1;
}

static arbor_node_t *spawn_fib(arbor_node_t *parent, fib_t *f, const char *name) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = name, .fn = body, .arg = f, .finish = on_finish};
  assert_code(arbor_fiber_spawn(parent, &spec, &n), 0);
  return n;
}

/* Blocking loop passes: the pool's completions arrive through the loop's async
 * handle, which a non-blocking spin could outrun. Bounded, so a bug fails. */
#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 1000 && !(cond); k_++)                                           \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    assert_true(cond);                                                                 \
  } while (0)

/* The pool size the tests rely on; read by libuv when the pool first starts. */
static void pool_of_four(void) { setenv("UV_THREADPOOL_SIZE", "4", 1); }

static void work_returns_fn_value_from_pool_thread(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.job = {.value = 42}, .second = 1};
  arbor_node_t *n;
  pool_of_four();
  arbor_test_open(&loop, &rt, NULL);
  n = spawn_fib(arbor_root(rt), &f, "worker");
  run_once_until(&loop, f.finished);
  assert_int_eq(f.rc, 42);
  assert_int_eq(f.rc_after, 42);
  assert_int_eq(f.job.ran, 1);
  uv_thread_t self = uv_thread_self();
  assert_false(uv_thread_equal(&f.job.thread, &self));
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
}

/* A negative return is passed through and fails the fiber like any code. */
static void work_negative_result_passes_through(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.job = {.value = -EIO}};
  arbor_node_t *n;
  pool_of_four();
  arbor_test_open(&loop, &rt, NULL);
  n = spawn_fib(arbor_root(rt), &f, "worker");
  run_once_until(&loop, f.finished);
  assert_code(f.rc, -EIO);
  assert_outcome(n, FAILED);
  assert_code(arbor_error_code(arbor_node_error(n)), -EIO);
  arbor_test_close(rt, &loop);
}

/* Rule 4: four functions hold the pool's four threads; a fifth fiber's function
 * waits in libuv's queue. Cancelling that fiber takes it back (uv_cancel): the
 * fiber returns ARBOR_ECANCELED at once, while the four still run, and its
 * function never runs at all. */
static void rule4_work_cancelled_before_start_never_runs(void **state) {
  enum { BUSY = 4 };
  uv_loop_t loop;
  arbor_runtime_t *rt;
  gate_t gate;
  fib_t busy[BUSY], victim = {.job = {.value = 7}};
  arbor_node_t *bn[BUSY], *vn;
  pool_of_four();
  gate_init(&gate);
  arbor_test_open(&loop, &rt, NULL);
  for (int i = 0; i < BUSY; i++) {
    busy[i] = (fib_t){.job = {.gate = &gate, .value = i}};
    bn[i] = spawn_fib(arbor_root(rt), &busy[i], "busy");
  }
  vn = spawn_fib(arbor_root(rt), &victim, "victim");
  /* Each fiber queues its work before it parks, in spawn order. */
  arbor_test_run_until(&loop, victim.calling);
  gate_wait_started(&gate, BUSY);  /* every thread of the pool is held */
  assert_state(vn, STARTED);
  assert_code(arbor_node_cancel(vn), 0);
  run_once_until(&loop, victim.finished);
  assert_code(victim.rc, ARBOR_ECANCELED);
  assert_outcome(vn, CANCELLED);
  assert_int_eq(gate_count(&gate, &gate.returned), 0);   /* it did not wait for them */
  gate_open(&gate);
  for (int i = 0; i < BUSY; i++) {
    run_once_until(&loop, busy[i].finished);
    assert_int_eq(busy[i].rc, i);
    assert_outcome(bn[i], OK);
  }
  assert_int_eq(victim.job.ran, 0);  /* never ran */
  arbor_test_close(rt, &loop);
  assert_int_eq(victim.job.ran, 0);
  gate_destroy(&gate);
}

/* Rule 4 with rule 6 inside: cancelled while its function runs, the fiber cannot
 * leave (the function may use its stack), so it waits on, shielded, and is still
 * STOPPING after any number of loop passes; once the function returns, it returns
 * ARBOR_ECANCELED (the result is dropped) and ends CANCELLED. */
static void rule4_work_cancelled_while_running_waits_for_fn(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  gate_t gate;
  fib_t f;
  arbor_node_t *n;
  pool_of_four();
  gate_init(&gate);
  f = (fib_t){.job = {.gate = &gate, .value = 5}};
  arbor_test_open(&loop, &rt, NULL);
  n = spawn_fib(arbor_root(rt), &f, "worker");
  arbor_test_run_until(&loop, f.calling);
  gate_wait_started(&gate, 1);
  assert_code(arbor_node_cancel(n), 0);
  assert_state(n, STOPPING);
  arbor_test_spin(&loop, 50);
  assert_int_eq(f.finished, 0);
  assert_state(n, STOPPING);
  arbor_fiber_info_t fi;         /* the snapshot shows where it still waits */
  assert_code(arbor_node_fiber_info(n, &fi), 0);
  assert_string_equal(fi.wait_what, "run_in_thread");
  assert_string_equal(fi.wait_file, __FILE__);
  assert_code(arbor_node_cancel(n), 0);   /* again: harmless, still waiting */
  arbor_test_spin(&loop, 10);
  assert_int_eq(f.finished, 0);
  gate_open(&gate);
  run_once_until(&loop, f.finished);
  assert_int_eq(f.job.ran, 1);
  assert_code(f.rc, ARBOR_ECANCELED);
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
  gate_destroy(&gate);
}

/* A runtime closing while a function runs waits for it too. */
static void rule4_work_runtime_close_waits_for_running_fn(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  gate_t gate;
  fib_t f;
  int closed;
  pool_of_four();
  gate_init(&gate);
  f = (fib_t){.job = {.gate = &gate, .value = 5}};
  arbor_test_open(&loop, &rt, NULL);
  spawn_fib(arbor_root(rt), &f, "worker");
  arbor_test_run_until(&loop, f.calling);
  gate_wait_started(&gate, 1);
  arbor_test_close_begin(rt, &closed);
  arbor_test_spin(&loop, 20);
  assert_int_eq(closed, 0);
  assert_int_eq(f.finished, 0);
  gate_open(&gate);
  arbor_test_close_end(&loop, &closed);
  assert_int_eq(f.finished, 1);
  assert_code(f.rc, ARBOR_ECANCELED);
  gate_destroy(&gate);
}

/* Checkpoint misuse: off the fiber ARBOR_ESTATE, NULL fn ARBOR_EINVAL; and once
 * cancelled, the call returns ARBOR_ECANCELED without queueing anything. */
static int misuse_body(arbor_ctx_t *cx, void *arg) {
  fib_t *f = arg;
  f->cx = cx;
  f->rc = arbor_run_in_thread(cx, NULL, NULL);
  arbor_sleep(cx, 3600u * 1000u);               /* cancelled here */
  f->rc_after = arbor_run_in_thread(cx, job_fn, &f->job);
  return f->rc_after;
}

static void work_misuse_is_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.job = {.value = 1}};
  arbor_node_t *n;
  arbor_fiber_spec_t spec = {.name = "m", .fn = misuse_body, .arg = &f, .finish = on_finish};
  pool_of_four();
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt), &spec, &n), 0);
  arbor_test_run_until(&loop, f.cx != NULL);
  assert_code(f.rc, ARBOR_EINVAL);
  assert_code(arbor_run_in_thread(f.cx, job_fn, &f.job), ARBOR_ESTATE);
  assert_code(arbor_run_in_thread(NULL, job_fn, &f.job), ARBOR_EINVAL);
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, f.finished);
  assert_code(f.rc_after, ARBOR_ECANCELED);
  assert_int_eq(f.job.ran, 0);
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest work_tests[] = {
    cmocka_unit_test(work_returns_fn_value_from_pool_thread),
    cmocka_unit_test(work_negative_result_passes_through),
    cmocka_unit_test(rule4_work_cancelled_before_start_never_runs),
    cmocka_unit_test(rule4_work_cancelled_while_running_waits_for_fn),
    cmocka_unit_test(rule4_work_runtime_close_waits_for_running_fn),
    cmocka_unit_test(work_misuse_is_refused),
};

ARBOR_TEST_MAIN(work_tests)
