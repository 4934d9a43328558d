/* harness.h - what every arbor unit test includes.
 *
 * - ARBOR_TEST_MAIN(tests): main() with `--list` (one test name a line), `--run NAME`
 *   (that test only; non-zero when it fails, 2 for an unknown name) and no argument
 *   (the whole group). tests/run-tests.sh runs each test in its own process with a
 *   timeout, so a crash or a hang fails one test, not the run.
 * - Loops: every test has its own uv_loop_t (never the default loop), opens it with
 *   arbor_test_open() and ends with arbor_test_close(), which closes the runtime,
 *   runs the loop until the close callback fired and asserts uv_loop_close() == 0:
 *   each test is also a leak check. The loop is driven in bounded steps
 *   (arbor_test_run_until, arbor_test_spin); nothing sleeps and nothing asserts on
 *   wall-clock durations.
 * - Assertions that print both values in decimal and by name (codes, states,
 *   outcomes): assert_int_eq, assert_code, assert_state, assert_outcome.
 * - Probes: ready-made task callbacks that count their calls and record what they
 *   saw (arbor_probe_t), a task that owns a uv_timer_t in its arbor_task_data()
 *   storage, and helpers over the event ring (a node's path of STATE events, event
 *   counts).
 */
#ifndef ARBOR_TESTS_HARNESS_H
#define ARBOR_TESTS_HARNESS_H

/* uv.h needs POSIX types (pthread_rwlock_t) that a strict -std=c11 hides. */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <unistd.h>

#include <arbor.h>

/* ------------------------------------------------------------------- main */

static inline int arbor_test_main_(const struct CMUnitTest *tests, size_t count,
                                   const char *group, int argc, char **argv) {
  size_t i;
  if (argc == 1)
    return _cmocka_run_group_tests(group, tests, count, NULL, NULL) == 0 ? 0 : 1;
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (i = 0; i < count; i++)
      printf("%s\n", tests[i].name);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "--run") == 0) {
    for (i = 0; i < count; i++)
      if (strcmp(tests[i].name, argv[2]) == 0)
        return _cmocka_run_group_tests(tests[i].name, &tests[i], 1, NULL, NULL) == 0 ? 0 : 1;
    fprintf(stderr, "%s: unknown test: %s\n", argv[0], argv[2]);
    return 2;
  }
  fprintf(stderr, "usage: %s [--list | --run NAME]\n", argv[0]);
  return 2;
}

#define ARBOR_TEST_MAIN(tests)                                                         \
  int main(int argc, char **argv) {                                                    \
    return arbor_test_main_((tests), sizeof(tests) / sizeof((tests)[0]), #tests, argc, \
                            argv);                                                     \
  }

/* ------------------------------------------------------------- assertions */

#define assert_int_eq(a, b)                                                            \
  do {                                                                                 \
    intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);                                   \
    if (a_ != b_) {                                                                    \
      print_error("%s == %s: %jd != %jd\n", #a, #b, a_, b_);                          \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

#define assert_uint_eq(a, b)                                                           \
  do {                                                                                 \
    uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                                \
    if (a_ != b_) {                                                                    \
      print_error("%s == %s: %ju != %ju\n", #a, #b, a_, b_);                          \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* a <= b, both printed. */
#define assert_uint_le(a, b)                                                           \
  do {                                                                                 \
    uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                                \
    if (!(a_ <= b_)) {                                                                 \
      print_error("%s <= %s: %ju > %ju\n", #a, #b, a_, b_);                           \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* a < b, both printed. */
#define assert_uint_lt(a, b)                                                           \
  do {                                                                                 \
    uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);                                \
    if (!(a_ < b_)) {                                                                  \
      print_error("%s < %s: %ju >= %ju\n", #a, #b, a_, b_);                           \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* Error codes, printed with their names. */
#define assert_code(got, want)                                                         \
  do {                                                                                 \
    int g_ = (int)(got), w_ = (int)(want);                                             \
    if (g_ != w_) {                                                                    \
      print_error("%s: got %d (%s), want %d (%s)\n", #got, g_, arbor_err_name(g_), w_, \
                  arbor_err_name(w_));                                                 \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

#define assert_state_eq(got, want)                                                     \
  do {                                                                                 \
    arbor_state_t g_ = (got), w_ = (want);                                             \
    if (g_ != w_) {                                                                    \
      print_error("%s: got %s, want %s\n", #got, arbor_state_name(g_),                \
                  arbor_state_name(w_));                                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

#define assert_outcome_eq(got, want)                                                   \
  do {                                                                                 \
    arbor_outcome_t g_ = (got), w_ = (want);                                           \
    if (g_ != w_) {                                                                    \
      print_error("%s: got %s, want %s\n", #got, arbor_outcome_name(g_),              \
                  arbor_outcome_name(w_));                                             \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* assert_state(node, STARTED), assert_outcome(node, OK): short names. */
#define assert_state(node, st) assert_state_eq(arbor_node_state(node), ARBOR_STATE_##st)
#define assert_outcome(node, oc)                                                       \
  assert_outcome_eq(arbor_node_outcome(node), ARBOR_OUTCOME_##oc)

/* ------------------------------------------------------------------ loops */

/* Upper bound of loop iterations a condition may take. Generous: arbor schedules
 * work for "soon" (next iteration or so); a condition that needs more is a hang. */
#define ARBOR_TEST_MAX_ITERS 10000

static inline void arbor_test_open(uv_loop_t *loop, arbor_runtime_t **rt,
                                   const arbor_runtime_opts_t *opts) {
  assert_int_eq(uv_loop_init(loop), 0);
  *rt = NULL;
  assert_code(arbor_runtime_new(rt, loop, opts), 0);
  assert_non_null(*rt);
}

/* Runs the loop without blocking, n iterations. */
static inline void arbor_test_spin(uv_loop_t *loop, int n) {
  int i;
  for (i = 0; i < n; i++)
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Runs the loop (without blocking) until cond holds; fails the test when it does not
 * hold after ARBOR_TEST_MAX_ITERS iterations. */
#define arbor_test_run_until(loop, cond)                                               \
  do {                                                                                 \
    int i_;                                                                            \
    for (i_ = 0; i_ < ARBOR_TEST_MAX_ITERS && !(cond); i_++)                           \
      uv_run((loop), UV_RUN_NOWAIT);                                                   \
    if (!(cond)) {                                                                     \
      print_error("condition never held: %s\n", #cond);                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* Blocking loop passes (UV_RUN_ONCE) until cond holds; bounded, so a bug fails
 * instead of hanging. For conditions a loop event brings about (a timer, a
 * child's exit, a fiber's wake-up). */
#define arbor_test_run_once_until(loop, cond)                                          \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 100000 && !(cond); k_++)                                         \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    if (!(cond)) {                                                                     \
      print_error("condition never held: %s\n", #cond);                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* A private temporary directory for the files a test's scripts write and it
 * waits for: /tmp/arbor-test-TAG-XXXXXX, emptied and removed by
 * arbor_test_tmp_close. path is scratch for arbor_test_tmp_file. */
typedef struct {
  char dir[64];
  char path[336];
} arbor_test_tmp_t;

static inline void arbor_test_tmp_open(arbor_test_tmp_t *t, const char *tag) {
  snprintf(t->dir, sizeof t->dir, "/tmp/arbor-test-%.20s-XXXXXX", tag);
  assert_non_null(mkdtemp(t->dir));
}

static inline const char *arbor_test_tmp_file(arbor_test_tmp_t *t, const char *name) {
  snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
  return t->path;
}

static inline void arbor_test_tmp_touch(arbor_test_tmp_t *t, const char *name) {
  FILE *f = fopen(arbor_test_tmp_file(t, name), "w");
  assert_non_null(f);
  fclose(f);
}

static inline void arbor_test_tmp_close(arbor_test_tmp_t *t) {
  DIR *d = opendir(t->dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      unlink(arbor_test_tmp_file(t, e->d_name));
  closedir(d);
  assert_int_eq(rmdir(t->dir), 0);
}

/* A fiber service's current incarnation is parked in a checkpoint: it runs and
 * waits (for a condition no loop event announces: arbor_test_run_ticking_until). */
static inline int arbor_test_service_parked(arbor_node_t *svc) {
  arbor_service_info_t si;
  arbor_fiber_info_t fi;
  if (arbor_service_info(svc, &si) != 0 || si.incarnation_id == 0)
    return 0;
  arbor_node_t *inc = arbor_node_find(arbor_node_runtime(svc), si.incarnation_id);
  return inc != NULL && arbor_node_fiber_info(inc, &fi) == 0 && fi.wait_what != NULL;
}

static inline void arbor_test_tick_cb_(uv_timer_t *t) { (void)t; }

/* Drives the loop with a 1 ms timer until cond holds (evaluated once a pass: it
 * may have side effects), at most 20000 passes, for conditions no loop event
 * announces (a file a script writes, an orphan's exit). */
#define arbor_test_run_ticking_until(loop, cond)                                       \
  do {                                                                                 \
    uv_timer_t tick_;                                                                  \
    int k_, held_ = 0;                                                                 \
    assert_int_eq(uv_timer_init((loop), &tick_), 0);                                   \
    assert_int_eq(uv_timer_start(&tick_, arbor_test_tick_cb_, 1, 1), 0);               \
    for (k_ = 0; k_ < 20000 && !(held_ = (cond)); k_++)                                \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    uv_close((uv_handle_t *)&tick_, NULL);                                             \
    uv_run((loop), UV_RUN_NOWAIT);                                                     \
    if (!held_) {                                                                      \
      print_error("condition never held: %s\n", #cond);                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

static inline void arbor_test_close_cb_(arbor_runtime_t *rt, void *arg) {
  (void)rt;
  ++*(int *)arg;
}

/* First half of arbor_test_close: asks the runtime to close; the callback must not
 * run from inside the call. */
#define arbor_test_close_begin(rt, flag)                                               \
  do {                                                                                 \
    *(flag) = 0;                                                                       \
    assert_code(arbor_runtime_close((rt), arbor_test_close_cb_, (flag)), 0);          \
    assert_int_eq(*(flag), 0);                                                         \
  } while (0)

/* Second half: runs the loop until it has nothing left; the close callback must have
 * run exactly once by then, and the loop must close cleanly (no handle left). */
#define arbor_test_close_end(loop, flag)                                               \
  do {                                                                                 \
    uv_run((loop), UV_RUN_DEFAULT);                                                    \
    assert_int_eq(*(flag), 1);                                                         \
    assert_int_eq(uv_loop_close(loop), 0);                                             \
  } while (0)

/* Closes the runtime, runs the loop until the runtime is gone, closes the loop. */
#define arbor_test_close(rt, loop)                                                     \
  do {                                                                                 \
    int closed_;                                                                       \
    arbor_test_close_begin((rt), &closed_);                                            \
    arbor_test_close_end((loop), &closed_);                                            \
  } while (0)

/* ------------------------------------------------------------------ probes */

/* What a probe task does besides counting. */
enum {
  ARBOR_PROBE_CANCEL_STAY = 0,   /* custom hook: records, the task stays STOPPING */
  ARBOR_PROBE_CANCEL_DONE = 1,   /* custom hook: arbor_task_done inside the hook */
  ARBOR_PROBE_CANCEL_FAIL = 2    /* custom hook: arbor_task_fail(fail_code) in the hook */
};

/* Flags of arbor_test_spawn. */
#define ARBOR_PROBE_HANDSHAKE 1     /* spec.handshake = 1 */
#define ARBOR_PROBE_CUSTOM_CANCEL 2 /* spec.cancel = arbor_probe_cancel */

typedef struct {
  /* set by the test before spawning */
  int start_rc;                 /* start returns this */
  int started_in_start;         /* start calls arbor_task_started */
  int done_in_start;            /* start calls arbor_task_done */
  int cancel_action;            /* ARBOR_PROBE_CANCEL_* */
  int fail_code;                /* for ARBOR_PROBE_CANCEL_FAIL */
  /* recorded */
  int starts, cancels, finishes;
  int start_call_rc;            /* what started/done returned inside start */
  arbor_node_t *node;           /* from spawn */
  uint64_t id;
  arbor_state_t state_in_start, state_in_cancel, finish_state;
  arbor_outcome_t finish_outcome;
  int finish_order;             /* 1, 2, ... across all probes of a test process */
  uint32_t finish_live_children;
} arbor_probe_t;

static inline int arbor_test_next_order(void) {
  static int order;
  return ++order;
}

static inline int arbor_probe_start(arbor_node_t *task, void *arg) {
  arbor_probe_t *p = arg;
  p->starts++;
  p->state_in_start = arbor_node_state(task);
  if (p->started_in_start)
    p->start_call_rc = arbor_task_started(task);
  if (p->done_in_start)
    p->start_call_rc = arbor_task_done(task);
  return p->start_rc;
}

static inline void arbor_probe_cancel(arbor_node_t *task, void *arg) {
  arbor_probe_t *p = arg;
  p->cancels++;
  p->state_in_cancel = arbor_node_state(task);
  if (p->cancel_action == ARBOR_PROBE_CANCEL_DONE)
    arbor_task_done(task);
  else if (p->cancel_action == ARBOR_PROBE_CANCEL_FAIL)
    arbor_task_fail(task, p->fail_code, "failed in cancel hook");
}

static inline void arbor_probe_finish(arbor_node_t *node, void *arg) {
  arbor_probe_t *p = arg;
  arbor_node_info_t info;
  p->finishes++;
  p->finish_state = arbor_node_state(node);
  p->finish_outcome = arbor_node_outcome(node);
  p->finish_order = arbor_test_next_order();
  arbor_node_info(node, &info);
  p->finish_live_children = info.live_children;
}

static inline arbor_task_spec_t arbor_probe_spec(arbor_probe_t *p, const char *name,
                                                 int flags) {
  arbor_task_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.name = name;
  spec.start = arbor_probe_start;
  spec.cancel = (flags & ARBOR_PROBE_CUSTOM_CANCEL) ? arbor_probe_cancel : NULL;
  spec.finish = arbor_probe_finish;
  spec.arg = p;
  spec.handshake = (flags & ARBOR_PROBE_HANDSHAKE) ? 1 : 0;
  return spec;
}

/* Spawns a probe task under parent (must succeed) and returns its node. */
static inline arbor_node_t *arbor_test_spawn(arbor_node_t *parent, arbor_probe_t *p,
                                             const char *name, int flags) {
  arbor_task_spec_t spec = arbor_probe_spec(p, name, flags);
  arbor_node_t *task = NULL;
  assert_code(arbor_task_spawn(parent, &spec, &task), 0);
  assert_non_null(task);
  p->node = task;
  p->id = arbor_node_id(task);
  return task;
}

static inline arbor_node_t *arbor_test_group(arbor_node_t *parent, const char *name) {
  arbor_group_opts_t opts;
  arbor_node_t *group = NULL;
  opts.name = name;
  assert_code(arbor_group_new(parent, &opts, &group), 0);
  assert_non_null(group);
  return group;
}

/* Join callback that counts and records like a probe's finish. */
static inline void arbor_probe_join_cb(arbor_node_t *group, void *arg) {
  arbor_probe_finish(group, arg);
}

/* --------------------------------------------------- tasks owning a timer */

/* A task whose arbor_task_data() storage holds a uv_timer_t that it owns. When the
 * timer fires the task does `action`. The plan is the spec's arg. */
enum {
  ARBOR_TIMER_NOTHING = 0,      /* the timer fires, nothing happens */
  ARBOR_TIMER_DONE = 1,         /* arbor_task_done */
  ARBOR_TIMER_FAIL = 2          /* arbor_task_fail(code) */
};

typedef struct {
  uint64_t timeout_ms;
  int action;
  int code;
  arbor_node_t *also_fail;      /* when set, failed with also_code after the action */
  int also_code;
  /* recorded */
  int starts, fired, finishes;
  int own_rc;
  uv_timer_t *timer;            /* the timer, in the task's data storage */
  int timer_closing_at_finish;  /* uv_is_closing(timer) in the finish callback */
  int timer_active_at_finish;
  arbor_outcome_t finish_outcome;
  int finish_order;
} arbor_timer_plan_t;

typedef struct {
  uv_timer_t timer;             /* first: the handle casts back to this struct */
  arbor_node_t *task;
  arbor_timer_plan_t *plan;
} arbor_timer_task_t;

static inline void arbor_timer_task_fired_(uv_timer_t *timer) {
  arbor_timer_task_t *t = (arbor_timer_task_t *)timer;
  arbor_timer_plan_t *plan = t->plan;
  plan->fired++;
  if (plan->action == ARBOR_TIMER_DONE)
    arbor_task_done(t->task);
  else if (plan->action == ARBOR_TIMER_FAIL)
    arbor_task_fail(t->task, plan->code, "timer task failed with %d", plan->code);
  if (plan->also_fail != NULL)
    arbor_task_fail(plan->also_fail, plan->also_code, "also failed");
}

static inline int arbor_timer_task_start_(arbor_node_t *task, void *arg) {
  arbor_timer_plan_t *plan = arg;
  arbor_timer_task_t *t = arbor_task_data(task);
  uv_loop_t *loop = arbor_runtime_loop(arbor_node_runtime(task));
  plan->starts++;
  if (t == NULL)
    return ARBOR_EINVAL;
  t->task = task;
  t->plan = plan;
  plan->timer = &t->timer;
  uv_timer_init(loop, &t->timer);
  uv_timer_start(&t->timer, arbor_timer_task_fired_, plan->timeout_ms, 0);
  plan->own_rc = arbor_task_own(task, (uv_handle_t *)&t->timer);
  return plan->own_rc;
}

static inline void arbor_timer_task_finish_(arbor_node_t *node, void *arg) {
  arbor_timer_plan_t *plan = arg;
  plan->finishes++;
  plan->finish_outcome = arbor_node_outcome(node);
  plan->finish_order = arbor_test_next_order();
  if (plan->timer != NULL) {
    plan->timer_closing_at_finish = uv_is_closing((uv_handle_t *)plan->timer);
    plan->timer_active_at_finish = uv_is_active((uv_handle_t *)plan->timer);
  }
}

static inline arbor_node_t *arbor_test_spawn_timer(arbor_node_t *parent,
                                                   arbor_timer_plan_t *plan,
                                                   const char *name) {
  arbor_task_spec_t spec;
  arbor_node_t *task = NULL;
  memset(&spec, 0, sizeof spec);
  spec.name = name;
  spec.start = arbor_timer_task_start_;
  spec.finish = arbor_timer_task_finish_;
  spec.arg = plan;
  spec.data_size = sizeof(arbor_timer_task_t);
  assert_code(arbor_task_spawn(parent, &spec, &task), 0);
  assert_non_null(task);
  return task;
}

/* ------------------------------------------------------------------ events */

static inline uint64_t arbor_test_recorded(const arbor_runtime_t *rt) {
  arbor_events_stats_t stats;
  arbor_events_stats(rt, &stats);
  return stats.recorded;
}

/* Reads every event still in the ring, from seq 1, into a malloc'ed array (free it);
 * asserts none was lost (the default ring is far larger than any test's events). */
static inline arbor_event_t *arbor_test_events(const arbor_runtime_t *rt, size_t *count) {
  arbor_events_stats_t stats;
  arbor_event_t *out;
  uint64_t cursor = 1, missed = 0;
  size_t n = 0;
  int rc;
  arbor_events_stats(rt, &stats);
  out = calloc((size_t)stats.recorded + 1, sizeof *out);
  assert_non_null(out);
  while ((rc = arbor_events_read(rt, &cursor, out + n, (size_t)stats.recorded + 1 - n,
                                 &missed)) > 0) {
    assert_uint_eq(missed, 0);
    n += (size_t)rc;
    if (n >= stats.recorded)
      break;
  }
  assert_true(rc >= 0);
  assert_uint_eq(n, stats.recorded);
  *count = n;
  return out;
}

/* Number of events of `type` recorded for node `id`. */
static inline size_t arbor_test_count_events(const arbor_runtime_t *rt, uint64_t id,
                                             arbor_event_type_t type) {
  size_t n, i, count = 0;
  arbor_event_t *ev = arbor_test_events(rt, &n);
  for (i = 0; i < n; i++)
    if (ev[i].node_id == id && ev[i].type == type)
      count++;
  free(ev);
  return count;
}

/* The runtime's trace in format, as text (free it), through the public
 * arbor_trace_write; *len (if given) its length. */
static inline char *arbor_test_trace_text(arbor_runtime_t *rt, arbor_trace_format_t format,
                                          size_t *len) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_non_null(f);
  assert_code(arbor_trace_write(rt, format, f), 0);
  fclose(f);
  if (len != NULL)
    *len = n;
  return buf;
}

/* The seq of the first event of `type` for node `id`, 0 when there is none. */
static inline uint64_t arbor_test_event_seq(const arbor_runtime_t *rt, uint64_t id,
                                            arbor_event_type_t type) {
  size_t n, i;
  uint64_t seq = 0;
  arbor_event_t *ev = arbor_test_events(rt, &n);
  for (i = 0; i < n; i++)
    if (ev[i].node_id == id && ev[i].type == type) {
      seq = ev[i].seq;
      break;
    }
  free(ev);
  return seq;
}

/* The seq of the STATE event that took node `id` to `to`, 0 when there is none. */
static inline uint64_t arbor_test_state_seq(const arbor_runtime_t *rt, uint64_t id,
                                            arbor_state_t to) {
  size_t n, i;
  uint64_t seq = 0;
  arbor_event_t *ev = arbor_test_events(rt, &n);
  for (i = 0; i < n; i++)
    if (ev[i].node_id == id && ev[i].type == ARBOR_EVENT_STATE && ev[i].to == to) {
      seq = ev[i].seq;
      break;
    }
  free(ev);
  return seq;
}

/* The lifecycle edges DESIGN.md allows. */
static inline int arbor_test_edge_legal(arbor_state_t from, arbor_state_t to) {
  switch (from) {
  case ARBOR_STATE_CREATED:
    return to == ARBOR_STATE_STARTING || to == ARBOR_STATE_STARTED ||
           to == ARBOR_STATE_FINISHED;
  case ARBOR_STATE_STARTING:
    return to == ARBOR_STATE_STARTED || to == ARBOR_STATE_STOPPING;
  case ARBOR_STATE_STARTED:
    return to == ARBOR_STATE_STOPPING || to == ARBOR_STATE_STOPPED;
  case ARBOR_STATE_STOPPING:
    return to == ARBOR_STATE_STOPPED;
  case ARBOR_STATE_STOPPED:
    return to == ARBOR_STATE_FINISHED;
  default:
    return 0;
  }
}

/* The path of node `id` as its events tell it: CREATED (its CREATED event) then the
 * `to` of each STATE event. Writes "CREATED>STARTED>..." into buf. Also fails the
 * test when the node has no or several CREATED events, when a STATE event's `from`
 * is not the previous state, or when a CREATED or STATE event does not carry the
 * node's parent id and kind. */
static inline void arbor_test_path_text(const arbor_runtime_t *rt, uint64_t id,
                                        uint64_t parent_id, char *buf, size_t size) {
  size_t n, i, len = 0;
  int created = 0;
  arbor_state_t cur = ARBOR_STATE_CREATED;
  arbor_event_t *ev = arbor_test_events(rt, &n);
  buf[0] = '\0';
  for (i = 0; i < n; i++) {
    if (ev[i].node_id != id)
      continue;
    assert_uint_eq(ev[i].parent_id, parent_id);
    if (ev[i].type == ARBOR_EVENT_CREATED) {
      created++;
      assert_int_eq(created, 1);
      assert_state_eq(ev[i].to, ARBOR_STATE_CREATED);
      len += (size_t)snprintf(buf + len, size - len, "CREATED");
      assert_true(len < size);
    } else if (ev[i].type == ARBOR_EVENT_STATE) {
      assert_int_eq(created, 1); /* the CREATED event comes first */
      assert_state_eq(ev[i].from, cur);
      cur = ev[i].to;
      len += (size_t)snprintf(buf + len, size - len, ">%s", arbor_state_name(cur));
      assert_true(len < size);
    }
  }
  assert_int_eq(created, 1);
  free(ev);
}

/* assert_path(rt, node, CREATED, STARTED, STOPPED, FINISHED): the node's STATE
 * events are exactly these transitions, in this order. Prints both paths. */
#define assert_path(rt, node, ...)                                                     \
  do {                                                                                 \
    const arbor_state_t want_[] = {__VA_ARGS__};                                       \
    char got_text_[256], want_text_[256];                                              \
    arbor_node_t *parent_ = arbor_node_parent(node);                                   \
    arbor_test_path_text((rt), arbor_node_id(node),                                    \
                         parent_ ? arbor_node_id(parent_) : 0, got_text_,              \
                         sizeof got_text_);                                            \
    arbor_test_states_text_(want_, sizeof want_ / sizeof want_[0], want_text_,         \
                            sizeof want_text_);                                        \
    assert_string_equal(got_text_, want_text_);                                        \
  } while (0)

/* Same, by id, for nodes whose pointer may be gone. */
#define assert_path_id(rt, id, parent_id, ...)                                         \
  do {                                                                                 \
    const arbor_state_t want_[] = {__VA_ARGS__};                                       \
    char got_text_[256], want_text_[256];                                              \
    arbor_test_path_text((rt), (id), (parent_id), got_text_, sizeof got_text_);        \
    arbor_test_states_text_(want_, sizeof want_ / sizeof want_[0], want_text_,         \
                            sizeof want_text_);                                        \
    assert_string_equal(got_text_, want_text_);                                        \
  } while (0)

static inline void arbor_test_states_text_(const arbor_state_t *states, size_t n, char *buf,
                                           size_t size) {
  size_t i, len = 0;
  buf[0] = '\0';
  for (i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", i ? ">" : "",
                            arbor_state_name(states[i]));
}

/* Short state names for assert_path. */
#define CREATED ARBOR_STATE_CREATED
#define STARTING ARBOR_STATE_STARTING
#define STARTED ARBOR_STATE_STARTED
#define STOPPING ARBOR_STATE_STOPPING
#define STOPPED ARBOR_STATE_STOPPED
#define FINISHED ARBOR_STATE_FINISHED

#endif /* ARBOR_TESTS_HARNESS_H */
