/* tests/supervisor/test_memlimit.c - process services' memory limits
 * (supervisor/memlimit.c, arbor_service_spec_t.max_memory): a program that
 * allocates past its limit on purpose is restarted with the reading in its
 * chain, one under it never is, a spike shorter than max_memory_for_ms is let
 * through and a longer one is not, the timer exists only while a limited
 * program runs, and bad values are refused.
 *
 * The programs are /bin/sh scripts. Allocating on purpose: a shell variable
 * holding a 40 MB string (command substitution writes every byte, so it is
 * resident), in the shell itself or in a child shell whose exit gives it back.
 * Every step is gated on what the readings or the scripts' files say
 * (arbor_test_run_ticking_until), never on a sleep. Every script ends by itself
 * within two minutes, or at once once its test directory is gone.
 */
#include "harness.h"

#include <sys/stat.h>

#include "internal.h"

#define MiB (1024u * 1024u)
#define HOG "x=$(head -c 40000000 /dev/zero | tr \"\\0\" a)"   /* about 40 MB resident */
/* The scripts' last line: alive, bounded, gone with the test directory. */
#define LINGER(dir) "i=0; while [ $i -lt 600 ] && [ -d " dir " ]; do sleep 0.2; i=$((i+1)); done"

/* ------------------------------------------------------------------ helpers */

static arbor_memory_limit_info_t limit_of(arbor_node_t *svc) {
  arbor_memory_limit_info_t m;
  assert_code(arbor_service_memory_limit(svc, &m), 0);
  return m;
}

static uint32_t restarts_of(arbor_node_t *n) {
  arbor_node_info_t in;
  arbor_node_info(n, &in);
  return in.restarts;
}

static int exists(arbor_test_tmp_t *t, const char *name) {
  struct stat st;
  return stat(arbor_test_tmp_file(t, name), &st) == 0;
}

static void count_active_timer(uv_handle_t *h, void *arg) {
  if (h->type == UV_TIMER && uv_is_active(h))
    ++*(int *)arg;
}

/* Active timers on the loop, whoever owns them. */
static int active_timers(uv_loop_t *loop) {
  int n = 0;
  uv_walk(loop, count_active_timer, &n);
  return n;
}

static arbor_node_t *add_script(arbor_node_t *parent, const char *name, const char *script,
                                uint64_t max_memory, uint64_t for_ms) {
  char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
  arbor_node_t *svc = NULL;
  assert_code(arbor_service_add(parent,
                                &(arbor_service_spec_t){.name = name, .argv = argv,
                                                        .max_memory = max_memory,
                                                        .max_memory_for_ms = for_ms},
                                &svc),
              0);
  return svc;
}

/* ------------------------------------------------------------------ tests */

/* The first run allocates 40 MB over a 16 MiB limit: it is failed with
 * EMEMLIMIT, the reading in its chain and a line in its log, and restarted;
 * the second run does not allocate and stays. */
static void memlimit_restarts_a_program_that_allocates_past_it(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_open(&t, "memlimit");
  char script[512];
  snprintf(script, sizeof script,
           "if [ ! -e %s/once ]; then : > %s/once; " HOG "; fi; " LINGER("%s"), t.dir, t.dir,
           t.dir);
  arbor_node_t *sup;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.name = "sup", .no_backoff = 1}, &sup),
              0);
  arbor_node_t *svc = add_script(sup, "hog", script, 16 * MiB, 0);
  arbor_test_run_ticking_until(&loop, restarts_of(svc) >= 1 &&
                                          limit_of(svc).readings >= 1);

  arbor_service_failure_t f;
  assert_code(arbor_service_failure(svc, 0, &f), 0);
  assert_int_eq(arbor_error_code(f.error), ARBOR_EMEMLIMIT);
  const char *msg = arbor_error_message(f.error);
  assert_non_null(strstr(msg, "process hog (pid "));
  assert_non_null(strstr(msg, "over max_memory 16 MiB"));
  assert_non_null(strstr(msg, "MiB (")); /* the reading: "RSS 38.3 MiB (2 processes)" */
  assert_null(strstr(msg, " for "));     /* max_memory_for_ms 0: the first reading */
  char log[8192];
  uint64_t off = 0;
  int n = arbor_service_log_read(svc, &off, log, sizeof log - 1, NULL);
  assert_true(n > 0);
  log[n] = '\0';
  assert_non_null(strstr(log, "arbor: RSS "));
  assert_non_null(strstr(log, "over max_memory 16 MiB: stopping it\n"));

  /* The second run stays under it, read again and again. */
  uint64_t before = limit_of(svc).readings;
  arbor_test_run_ticking_until(&loop, limit_of(svc).readings >= before + 3);
  arbor_memory_limit_info_t m = limit_of(svc);
  assert_uint_eq(m.exceeded, 1);
  assert_uint_eq(m.max_memory, 16 * MiB);
  assert_true(m.rss_bytes > 0 && m.rss_bytes < 16 * MiB);
  assert_uint_eq(m.over_since_ns, 0);
  assert_int_eq(restarts_of(svc), 1);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A program well under its limit is read every period and never restarted;
 * between runs the info says the limit the next run gets. */
static void memlimit_program_under_it_is_left_alone(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_open(&t, "memlimit");
  char script[256];
  snprintf(script, sizeof script, LINGER("%s"), t.dir);
  arbor_node_t *sup;
  assert_code(arbor_supervisor_new(arbor_root(rt), NULL, &sup), 0);
  arbor_node_t *svc = add_script(sup, "small", script, 256 * MiB, 0);
  arbor_memory_limit_info_t m = limit_of(svc);   /* not started: the spec's */
  assert_uint_eq(m.max_memory, 256 * MiB);
  assert_uint_eq(m.readings, 0);
  arbor_test_run_ticking_until(&loop, limit_of(svc).readings >= 5);
  m = limit_of(svc);
  assert_true(m.rss_bytes > 0 && m.rss_bytes < 256 * MiB);
  assert_true(m.processes >= 1);
  assert_true(m.sampled_ns > 0);
  assert_true(m.check_ms >= ARBOR_MEMORY_CHECK_MS);
  assert_uint_eq(m.over_since_ns, 0);
  assert_uint_eq(m.exceeded, 0);
  assert_int_eq(restarts_of(svc), 0);
  arbor_service_info_t si;
  assert_code(arbor_service_info(svc, &si), 0);
  assert_uint_eq(si.history, 0);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A child shell holds 40 MB until the test has seen a reading over the
 * limit, then exits: with max_memory_for_ms of a minute the spike is let
 * through, and the next reading under it clears over_since_ns. */
static void memlimit_spike_shorter_than_for_ms_is_let_through(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_open(&t, "memlimit");
  char script[1024];
  snprintf(script, sizeof script,
           "sh -c '" HOG "; : > %s/high; i=0; while [ ! -e %s/drop ] && [ -d %s ] && "
           "[ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done'; : > %s/low; " LINGER("%s"),
           t.dir, t.dir, t.dir, t.dir, t.dir);
  arbor_node_t *sup;
  assert_code(arbor_supervisor_new(arbor_root(rt), NULL, &sup), 0);
  arbor_node_t *svc = add_script(sup, "spiky", script, 16 * MiB, 60000);
  arbor_test_run_ticking_until(&loop, exists(&t, "high") && limit_of(svc).over_since_ns != 0);
  arbor_memory_limit_info_t m = limit_of(svc);
  assert_true(m.rss_bytes > 16 * MiB);
  assert_true(m.processes >= 2);
  arbor_test_tmp_touch(&t, "drop");
  arbor_test_run_ticking_until(&loop, exists(&t, "low"));
  uint64_t after = limit_of(svc).readings;
  arbor_test_run_ticking_until(&loop, limit_of(svc).readings >= after + 2);
  m = limit_of(svc);
  assert_uint_eq(m.over_since_ns, 0);
  assert_true(m.rss_bytes < 16 * MiB);
  assert_uint_eq(m.exceeded, 0);
  assert_int_eq(restarts_of(svc), 0);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* Over the limit at every reading: failed at the first one at least
 * max_memory_for_ms after the first over it, and the chain says how long. */
static void memlimit_for_ms_waits_before_the_restart(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_open(&t, "memlimit");
  char script[512];
  snprintf(script, sizeof script, HOG "; " LINGER("%s"), t.dir);
  arbor_node_t *svc = add_script(arbor_root(rt), "slowleak", script, 16 * MiB, 300);
  /* Unsupervised: the failed run ends the service FAILED with the chain. */
  arbor_test_run_ticking_until(&loop, arbor_node_state(svc) == ARBOR_STATE_FINISHED);
  assert_outcome(svc, FAILED);
  const arbor_error_t *e = arbor_node_error(svc);
  assert_int_eq(arbor_error_code(e), ARBOR_EMEMLIMIT);
  const char *msg = arbor_error_message(e);
  const char *for_ = strstr(msg, " for ");
  assert_non_null(for_);
  unsigned long long over = strtoull(for_ + 5, NULL, 10);
  assert_true(over >= 300);
  assert_non_null(strstr(msg, " ms (max_memory_for_ms 300)"));
  assert_uint_eq(limit_of(svc).exceeded, 1);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* Unsupervised, it allocates at once: the run ends FAILED with EMEMLIMIT.
 * Returns the chain's message (valid while rt is). */
static const char *fails_over_limit(uv_loop_t *loop, arbor_runtime_t *rt, const char *script) {
  arbor_node_t *svc = add_script(arbor_root(rt), "hog", script, 16 * MiB, 0);
  arbor_test_run_ticking_until(loop, arbor_node_state(svc) == ARBOR_STATE_FINISHED);
  assert_outcome(svc, FAILED);
  const arbor_error_t *e = arbor_node_error(svc);
  assert_int_eq(arbor_error_code(e), ARBOR_EMEMLIMIT);
  return arbor_error_message(e);
}

/* A script whose memory is held by an orphan it left: a subshell starts the
 * hog and exits, and only then (D/go) does the hog allocate, re-parented to
 * arbor (the subreaper) in the program's session by then. */
static void orphan_hog(char *script, size_t size, const char *dir) {
  snprintf(script, size,
           "(sh -c 'i=0; while [ ! -e %s/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); "
           "done; " HOG "; i=0; while [ -d %s ] && [ $i -lt 600 ]; do sleep 0.2; "
           "i=$((i+1)); done' &); : > %s/go; " LINGER("%s"),
           dir, dir, dir, dir);
}

/* The orphan the program left still counts. */
static void memlimit_counts_the_orphans_the_program_left(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_open(&t, "memlimit");
  char script[1024];
  orphan_hog(script, sizeof script, t.dir);
  const char *msg = fails_over_limit(&loop, rt, script);
  assert_non_null(strstr(msg, "over max_memory 16 MiB"));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* arbor_runtime_opts_t.memory_scan: the readings come from a scan of all of
 * /proc (the fallback without children lists) and decide the same way. */
static void memlimit_scan_fallback_decides_the_same(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.memory_scan = 1});
  arbor_test_tmp_open(&t, "memlimit");
  char script[1024];
  orphan_hog(script, sizeof script, t.dir);   /* the orphan counts here too */
  const char *msg = fails_over_limit(&loop, rt, script);
  assert_non_null(strstr(msg, "over max_memory 16 MiB"));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* No limited program: no active timer at all (an idle arbor sleeps). The
 * timer runs while one does and stops once it is reaped. */
static void memlimit_timer_runs_only_while_a_limited_program_runs(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_open(&t, "memlimit");
  char script[256];
  snprintf(script, sizeof script, LINGER("%s"), t.dir);
  arbor_node_t *plain = add_script(arbor_root(rt), "plain", script, 0, 0);
  arbor_test_run_once_until(&loop, arbor_node_state(plain) == ARBOR_STATE_STARTED);
  arbor_test_spin(&loop, 3);
  assert_int_eq(active_timers(&loop), 0);

  arbor_node_t *limited = add_script(arbor_root(rt), "limited", script, 256 * MiB, 0);
  arbor_test_run_once_until(&loop, arbor_node_state(limited) == ARBOR_STATE_STARTED);
  arbor_test_spin(&loop, 3);
  assert_int_eq(active_timers(&loop), 1);
  arbor_test_run_ticking_until(&loop, limit_of(limited).readings >= 2);

  assert_code(arbor_node_cancel(limited), 0);
  arbor_test_run_once_until(&loop, arbor_node_state(limited) == ARBOR_STATE_FINISHED);
  arbor_test_spin(&loop, 3);
  assert_int_eq(active_timers(&loop), 0);
  assert_uint_eq(limit_of(plain).max_memory, 0);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* Values that cannot be meant are refused, nothing added; the info is only a
 * process service's. */
static void memlimit_bad_values_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  char *argv[] = {"/bin/true", NULL};
  arbor_node_t *root = arbor_root(rt), *svc = NULL;
  const arbor_service_spec_t bad[] = {
      {.name = "tiny", .argv = argv, .max_memory = 512 * 1024},   /* under 1 MiB */
      {.name = "one", .argv = argv, .max_memory = 1},
      {.name = "for-alone", .argv = argv, .max_memory_for_ms = 1000},
      {.name = "for-long", .argv = argv, .max_memory = 64 * MiB,
       .max_memory_for_ms = 86400001},
      {.name = "fiber", .fiber = (arbor_fiber_fn)1, .max_memory = 64 * MiB},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_code(arbor_service_add(root, &bad[i], &svc), ARBOR_EINVAL);
  arbor_node_info_t in;
  arbor_node_info(root, &in);
  assert_int_eq(in.children_total, 0);
  arbor_memory_limit_info_t m;
  assert_code(arbor_service_memory_limit(NULL, &m), ARBOR_EINVAL);
  assert_code(arbor_service_memory_limit(root, &m), ARBOR_EKIND);
  /* The edges are fine. */
  assert_code(arbor_service_add(root,
                                &(arbor_service_spec_t){.name = "edge", .argv = argv,
                                                        .max_memory = MiB,
                                                        .max_memory_for_ms = 86400000},
                                &svc),
              0);
  assert_code(arbor_service_memory_limit(svc, &m), 0);
  assert_uint_eq(m.max_memory, MiB);
  assert_uint_eq(m.max_memory_for_ms, 86400000);
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_FINISHED);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest memlimit_tests[] = {
      cmocka_unit_test(memlimit_restarts_a_program_that_allocates_past_it),
      cmocka_unit_test(memlimit_program_under_it_is_left_alone),
      cmocka_unit_test(memlimit_spike_shorter_than_for_ms_is_let_through),
      cmocka_unit_test(memlimit_for_ms_waits_before_the_restart),
      cmocka_unit_test(memlimit_counts_the_orphans_the_program_left),
      cmocka_unit_test(memlimit_scan_fallback_decides_the_same),
      cmocka_unit_test(memlimit_timer_runs_only_while_a_limited_program_runs),
      cmocka_unit_test(memlimit_bad_values_refused),
};

ARBOR_TEST_MAIN(memlimit_tests)
