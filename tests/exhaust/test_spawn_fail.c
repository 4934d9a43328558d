/* tests/exhaust/test_spawn_fail.c - a program that cannot be started becomes a
 * failed run with the errno in its chain, restarted as its supervisor says (with
 * backoff), until the restart intensity is exceeded and the supervisor fails
 * with ARBOR_EINTENSITY caused by it: never a crash, never a stuck tree (issue
 * 9, "Resource exhaustion": spawn failures).
 *
 * Cases: a missing program (ENOENT), a file that is not executable (EACCES), a
 * cwd that does not exist (ENOENT), no process left under RLIMIT_NPROC (EAGAIN;
 * root ignores that limit, so that case runs in a forked child that became
 * nobody, and reports through its exit status), and out of file descriptors
 * for the pipes (EMFILE, in a forked child with a low RLIMIT_NOFILE).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* Whether code is anywhere in err's chain (causes and error-group children). */
static int chain_has(const arbor_error_t *e, int code) {
  for (; e != NULL; e = arbor_error_cause(e)) {
    if (arbor_error_code(e) == code)
      return 1;
    for (size_t i = 0; i < arbor_error_child_count(e); i++)
      if (chain_has(arbor_error_child(e, i), code))
        return 1;
  }
  return 0;
}

typedef struct {
  int sup_failed_intensity;     /* the supervisor FAILED with ARBOR_EINTENSITY */
  int runs_with_errno;          /* kept failures whose chain holds the errno */
  uint32_t restarts;
  int backoff_seen;             /* a restart waited a delay > 0 */
} outcome_t;

/* Runs a process service of argv (and cwd) under a supervisor allowing 2
 * restarts with a 1 ms backoff, until the supervisor finished. */
static outcome_t run_failing(char *const *argv, const char *cwd, int want_errno) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *sup, *svc;
  outcome_t o = {0, 0, 0, 0};
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.no_signals = 1});
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.name = "sup", .intensity = 2,
                                                       .backoff_ms = 1, .no_jitter = 1},
                                   &sup),
              0);
  assert_code(arbor_service_add(sup, &(arbor_service_spec_t){.name = "prog", .argv = argv,
                                                               .cwd = cwd},
                                &svc),
              0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(sup));
  const arbor_error_t *err = arbor_node_error(sup);
  o.sup_failed_intensity = arbor_node_outcome(sup) == ARBOR_OUTCOME_FAILED && err != NULL &&
                           arbor_error_code(err) == ARBOR_EINTENSITY &&
                           chain_has(err, -want_errno);
  arbor_service_info_t si;
  assert_code(arbor_service_info(svc, &si), 0);
  o.restarts = si.restarts;
  for (uint32_t i = 0; i < si.history; i++) {
    arbor_service_failure_t f;
    assert_code(arbor_service_failure(svc, i, &f), 0);
    o.runs_with_errno += chain_has(f.error, -want_errno);
    o.backoff_seen |= f.restarted && f.backoff_ms > 0;
  }
  if (!o.sup_failed_intensity || o.runs_with_errno != 3)
    arbor_tree_print(arbor_root(rt), stderr);
  arbor_test_close(rt, &loop);
  return o;
}

static void assert_failed_runs(outcome_t o) {
  assert_true(o.sup_failed_intensity);
  assert_uint_eq(o.restarts, 2);
  assert_int_eq(o.runs_with_errno, 3);   /* the first run and both restarts */
  assert_true(o.backoff_seen);
}

static void spawn_fail_missing_program_enoent_restarted_then_intensity(void **state) {
  static char *const argv[] = {"/nonexistent/arbor-no-such-program", NULL};
  assert_failed_runs(run_failing(argv, NULL, ENOENT));
}

static void spawn_fail_not_executable_eacces_restarted_then_intensity(void **state) {
  arbor_test_tmp_t tmp;
  arbor_test_tmp_open(&tmp, "spawnfail");
  arbor_test_tmp_touch(&tmp, "script");
  char path[sizeof tmp.path];
  snprintf(path, sizeof path, "%s", arbor_test_tmp_file(&tmp, "script"));
  assert_int_eq(chmod(path, 0644), 0);
  char *const argv[] = {path, NULL};
  /* root may execute nothing without an x bit either: EACCES for everyone. */
  assert_failed_runs(run_failing(argv, NULL, EACCES));
  arbor_test_tmp_close(&tmp);
}

static void spawn_fail_missing_cwd_enoent_restarted_then_intensity(void **state) {
  static char *const argv[] = {"/bin/true", NULL};
  assert_failed_runs(run_failing(argv, "/nonexistent/arbor-no-such-dir", ENOENT));
}

/* Runs fn in a forked child (which must _exit with 0 when all held) and
 * returns its exit status, or 100 + the signal that killed it. */
static int in_child(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status;
  assert_int_eq(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* The child's checks: cmocka's asserts cannot cross fork, so each outcome is an
 * exit code of its own. */
static void child_check(outcome_t o) {
  if (!o.sup_failed_intensity)
    _exit(11);
  if (o.restarts != 2)
    _exit(12);
  if (o.runs_with_errno != 3)
    _exit(13);
}

static void nproc_child(void) {
  struct passwd *pw = getpwnam("nobody");
  if (pw == NULL)
    _exit(77);
  /* nobody may run no process at all: fork fails with EAGAIN. Threads count
   * too, but arbor's loop starts none for this. */
  struct rlimit none = {0, 0};
  if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 || setrlimit(RLIMIT_NPROC, &none) != 0)
    _exit(78);
  static char *const argv[] = {"/bin/true", NULL};
  child_check(run_failing(argv, NULL, EAGAIN));
}

static void spawn_fail_no_process_left_eagain_restarted_then_intensity(void **state) {
  if (getuid() != 0) {
    /* Not root: this process's own limit then, in a child all the same. */
    print_message("skipped: needs root to become nobody (RLIMIT_NPROC binds non-root only)\n");
    skip();
  }
  if (RUNNING_ON_VALGRIND) {
    /* Under valgrind the child, once nobody with RLIMIT_NPROC 0, dies of SIGSEGV
     * with no report from valgrind (a plain fork() there fails with EAGAIN as it
     * should); natively and under ASan + UBSan the case passes. Not run here. */
    print_message("skipped: under valgrind the RLIMIT_NPROC child dies unreported\n");
    skip();
  }
  int rc = in_child(nproc_child);
  if (rc == 77) {
    print_message("skipped: no user nobody\n");
    skip();
  }
  assert_int_eq(rc, 0);
}

/* Out of fds: the pipes of a spawn cannot be made. The child opens fds until
 * only two are left (stdout and stderr pipes need four), so the spawn fails
 * with EMFILE; closing them makes the next spawn work. */
static void nofile_child(void) {
  struct rlimit lim = {64, 64};
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
    _exit(77);                   /* valgrind keeps the fd limit to itself */
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *sup, *svc;
  if (uv_loop_init(&loop) != 0 ||
      arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1}) != 0)
    _exit(20);
  if (arbor_supervisor_new(arbor_root(rt),
                           &(arbor_sup_opts_t){.name = "sup", .intensity = 1000,
                                               .backoff_ms = 1, .backoff_max_ms = 20,
                                               .no_jitter = 1},
                           &sup) != 0)
    _exit(21);
  /* Runs until cancelled, or until the test's child is gone (at most a minute):
   * a failed test leaves no orphan behind. */
  static char *const argv[] = {
      "/bin/sh", "-c", "i=0; while [ $i -lt 300 ] && kill -0 $PPID; do sleep 0.2; i=$((i+1)); done",
      NULL};
  if (arbor_service_add(sup, &(arbor_service_spec_t){.name = "prog", .argv = argv}, &svc) != 0)
    _exit(22);
  /* Fill the table now, before the first spawn (the loop's own fds exist). */
  int fds[64], n = 0;
  while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
    n++;
  if (n == 0 || errno != EMFILE)
    _exit(23);
  for (int i = 0; i < 2; i++)
    close(fds[--n]);
  /* Fails with EMFILE, restarted with backoff, while the table is full. */
  arbor_service_failure_t f;
  for (int k = 0; k < 100000 && arbor_service_failure(svc, 1, &f) != 0; k++)
    uv_run(&loop, UV_RUN_ONCE);
  if (arbor_service_failure(svc, 0, &f) != 0 || !chain_has(f.error, -EMFILE))
    _exit(24);
  if (arbor_node_is_finished(sup))
    _exit(25);
  /* fds are back: the next run starts and stays up. */
  while (n > 0)
    close(fds[--n]);
  for (int k = 0; k < 100000 && !arbor_service_is_running(svc); k++)
    uv_run(&loop, UV_RUN_ONCE);
  arbor_service_info_t si;
  if (arbor_service_info(svc, &si) != 0 || si.phase != ARBOR_PHASE_RUNNING || si.pid <= 0)
    _exit(26);
  if (arbor_node_cancel(sup) != 0)
    _exit(27);
  for (int k = 0; k < 100000 && !arbor_node_is_finished(sup); k++)
    uv_run(&loop, UV_RUN_ONCE);
  int closed = 0;
  if (arbor_runtime_close(rt, arbor_test_close_cb_, &closed) != 0)
    _exit(28);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (closed != 1 || uv_loop_close(&loop) != 0)
    _exit(29);
}

static void spawn_fail_out_of_fds_emfile_then_recovers(void **state) {
  int rc = in_child(nofile_child);
  if (rc == 77) {
    print_message("skipped: RLIMIT_NOFILE cannot be lowered here (valgrind)\n");
    skip();
  }
  assert_int_eq(rc, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(spawn_fail_missing_program_enoent_restarted_then_intensity),
    cmocka_unit_test(spawn_fail_not_executable_eacces_restarted_then_intensity),
    cmocka_unit_test(spawn_fail_missing_cwd_enoent_restarted_then_intensity),
    cmocka_unit_test(spawn_fail_no_process_left_eagain_restarted_then_intensity),
    cmocka_unit_test(spawn_fail_out_of_fds_emfile_then_recovers),
};

ARBOR_TEST_MAIN(tests)
