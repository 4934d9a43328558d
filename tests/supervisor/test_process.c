/* tests/supervisor/test_process.c - arbor_process_run (supervisor/process.c): a
 * child process as a fiber checkpoint; its exit reported, and rule 4 for it: the
 * stop signal to its process group, SIGKILL after the grace period, the wait for
 * the exit shielded, grandchildren in the group reached, no zombie left.
 *
 * Children are /bin/true, /bin/false, /bin/sleep and /bin/sh scripts. The loop is
 * driven with blocking passes (the exit arrives through libuv's SIGCHLD watcher);
 * where a test must wait for something a script does (write a file), it drives the
 * loop with a 1 ms timer for a bounded number of passes. Nothing asserts on time.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* ------------------------------------------------------------------ helpers */

/* The child was reaped (by libuv): no zombie of it is left. */
#define assert_reaped(pid)                                                             \
  do {                                                                                 \
    errno = 0;                                                                         \
    assert_int_eq(waitpid((pid_t)(pid), NULL, WNOHANG), -1);                           \
    assert_int_eq(errno, ECHILD);                                                      \
  } while (0)

/* A private temporary directory for the files scripts write. */
typedef struct {
  char dir[64];
  char path[128];                /* scratch: dir + "/" + a name */
} tmp_t;

static void tmp_open(tmp_t *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/arbor-test-process-XXXXXX");
  assert_non_null(mkdtemp(t->dir));
}

static const char *tmp_file(tmp_t *t, const char *name) {
  snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
  return t->path;
}

static void tmp_close(tmp_t *t) {
  static const char *const names[] = {"pid", "pid.tmp", "marker"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    unlink(tmp_file(t, names[i]));
  assert_int_eq(rmdir(t->dir), 0);
}

/* The number a script wrote (atomically, by renaming) to `name`, or -1 while the
 * file is not there. */
static long read_number(tmp_t *t, const char *name) {
  FILE *f = fopen(tmp_file(t, name), "r");
  long v = -1;
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld", &v) != 1)
    v = -1;
  fclose(f);
  return v;
}

/* Orphans of the children (grandchildren) are re-parented to this process instead
 * of init, so a test can reap them and see how they ended. */
static int become_subreaper(void) {
#ifdef __linux__
  return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
#else
  return 0;
#endif
}

/* 1 once a grandchild is gone: reaped here (the test is its subreaper once its
 * parent died; *status then says how it ended), or reaped by its own parent before
 * that (*status -1) and so no longer there at all, not even as a zombie. 0 while it
 * lives, or is a zombie of its still living parent. */
static int grandchild_gone(pid_t pid, int *status) {
  pid_t r;
  do
    r = waitpid(pid, status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == pid)
    return 1;
  if (r < 0 && errno == ECHILD && kill(pid, 0) < 0 && errno == ESRCH) {
    *status = -1;
    return 1;
  }
  return 0;
}

/* After grandchild_gone: it is not there any more, and if this process reaped it,
 * it was killed by `sig`. */
#define assert_grandchild_killed(pid, status, sig)                                     \
  do {                                                                                 \
    if ((status) != -1) {                                                              \
      assert_true(WIFSIGNALED(status));                                                \
      assert_int_eq(WTERMSIG(status), (sig));                                          \
    }                                                                                  \
    errno = 0;                                                                         \
    assert_int_eq(kill((pid_t)(pid), 0), -1);                                          \
    assert_int_eq(errno, ESRCH);                                                       \
  } while (0)

/* ------------------------------------------------------------------- fibers */

#define MAX_RUNS 4

/* A fiber that runs up to MAX_RUNS programs one after the other and records what
 * each call returned, optionally inside a fail_after scope. */
typedef struct {
  arbor_process_opts_t opts[MAX_RUNS];
  int nruns;
  uint64_t fail_after_ms;        /* > 0: the runs happen inside such a scope */
  int sleep_first;               /* be cancelled in a sleep before the runs */
  /* recorded */
  arbor_process_result_t res[MAX_RUNS];
  int rc[MAX_RUNS];
  int scope_rc;
  int calling;                   /* about to make its (first) call */
  int finished;
  arbor_ctx_t *cx;
} fib_t;

static const arbor_process_result_t untouched = {.exit_status = -77, .term_signal = -77,
                                                 .pid = -77, .killed = -77};

/* Field by field: the struct has padding that copies need not preserve. */
#define assert_untouched(r)                                                            \
  do {                                                                                 \
    assert_int_eq((r)->exit_status, untouched.exit_status);                            \
    assert_int_eq((r)->term_signal, untouched.term_signal);                            \
    assert_int_eq((r)->pid, untouched.pid);                                            \
    assert_int_eq((r)->killed, untouched.killed);                                      \
  } while (0)

static int body(arbor_ctx_t *cx, void *arg) {
  fib_t *f = arg;
  arbor_scope_t scope;
  int rc = 0;
  f->cx = cx;
  for (int i = 0; i < MAX_RUNS; i++)
    f->res[i] = untouched;
  if (f->sleep_first)
    arbor_sleep(cx, 3600u * 1000u);
  if (f->fail_after_ms > 0)
    assert_code(arbor_scope_enter(cx, &scope,
                                  &(arbor_scope_opts_t){.fail_after_ms = f->fail_after_ms}),
                0);
  f->calling = 1;
  for (int i = 0; i < f->nruns; i++) {
    f->rc[i] = arbor_process_run(cx, &f->res[i], &f->opts[i]);
    if (f->rc[i] < 0 && rc == 0)
      rc = f->rc[i];
  }
  if (f->fail_after_ms > 0)
    return f->scope_rc = arbor_scope_exit(cx, &scope);
  return rc;
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

static char *sh_true[] = {"true", NULL};
static char *sh_false[] = {"false", NULL};
static char *sleep_hour[] = {"sleep", "3600", NULL};

/* -------------------------------------------------------------------- tests */

/* Exit statuses come back as they are, with a call that returns 0 whatever the
 * status; PATH is searched for a bare name; the child is reaped. */
static void process_exit_status_reported(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *exit3[] = {"sh", "-c", "exit 3", NULL};
  fib_t f = {.nruns = 4};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/true", .args = sh_true};
  f.opts[1] = (arbor_process_opts_t){.file = "/bin/false", .args = sh_false};
  f.opts[2] = (arbor_process_opts_t){.file = "/bin/sh", .args = exit3};
  f.opts[3] = (arbor_process_opts_t){.file = "true"};        /* args NULL: {file} */
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_once_until(&loop, f.finished);
  assert_outcome(n, OK);
  int64_t want[] = {0, 1, 3, 0};
  for (int i = 0; i < 4; i++) {
    assert_code(f.rc[i], 0);
    assert_int_eq(f.res[i].exit_status, want[i]);
    assert_int_eq(f.res[i].term_signal, 0);
    assert_int_eq(f.res[i].killed, 0);
    assert_true(f.res[i].pid > 0);
    assert_reaped(f.res[i].pid);
  }
  arbor_test_close(rt, &loop);
}

/* A child killed by a signal (not by arbor) reports it, and exit status 0. */
static void process_killed_by_signal_reported(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *kill9[] = {"sh", "-c", "kill -9 $$", NULL};
  fib_t f = {.nruns = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sh", .args = kill9};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], 0);
  assert_int_eq(f.res[0].term_signal, SIGKILL);
  assert_int_eq(f.res[0].exit_status, 0);
  assert_int_eq(f.res[0].killed, 0);
  assert_reaped(f.res[0].pid);
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
}

/* A program that does not exist: libuv's -ENOENT, the result untouched, nothing
 * left behind (the loop closes cleanly), and the fiber may go on spawning. */
static void process_missing_program_returns_enoent(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *missing[] = {"arbor-no-such-program", NULL};
  fib_t f = {.nruns = 3};
  f.opts[0] = (arbor_process_opts_t){.file = "/nonexistent/arbor-no-such-program",
                                     .args = missing};
  f.opts[1] = (arbor_process_opts_t){.file = "arbor-no-such-program", .args = missing};
  f.opts[2] = (arbor_process_opts_t){.file = "/bin/true", .args = sh_true};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_once_until(&loop, f.finished);
  for (int i = 0; i < 2; i++) {
    assert_code(f.rc[i], -ENOENT);
    assert_untouched(&f.res[i]);
  }
  assert_code(f.rc[2], 0);
  assert_int_eq(f.res[2].exit_status, 0);
  assert_outcome(n, FAILED);                      /* the body returned -ENOENT */
  assert_code(arbor_error_code(arbor_node_error(n)), -ENOENT);
  arbor_test_close(rt, &loop);
}

/* What the child gets: stdin from /dev/null, a process group and session of its
 * own, the env and cwd asked for. The script's exit status says which check
 * failed. */
static void process_child_environment(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tmp_t t;
  char script[512];
  char *env[] = {"ARBOR_TEST_X=42", "PATH=/usr/bin:/bin", NULL};
  tmp_open(&t);
  snprintf(script, sizeof script,
           "[ \"$(readlink /proc/self/fd/0)\" = /dev/null ] || exit 11; "
           "set -- $(cat /proc/$$/stat); "
           "[ \"$5\" = \"$$\" ] || exit 12; "          /* process group: its own */
           "[ \"$6\" = \"$$\" ] || exit 13; "          /* session: its own */
           "[ \"$ARBOR_TEST_X\" = 42 ] || exit 14; "
           "[ -z \"$HOME\" ] || exit 15; "             /* nothing inherited */
           "[ \"$(pwd -P)\" = \"%s\" ] || exit 16; "
           "exit 0",
           t.dir);
  char *args[] = {"sh", "-c", script, NULL};
  char *args_inherit[] = {"sh", "-c", "[ \"$(pwd -P)\" = \"$ARBOR_TEST_CWD\" ] || exit 17; "
                                      "[ \"$ARBOR_TEST_INHERIT\" = yes ] || exit 18",
                          NULL};
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof cwd));
  setenv("ARBOR_TEST_CWD", cwd, 1);
  setenv("ARBOR_TEST_INHERIT", "yes", 1);
  fib_t f = {.nruns = 2};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sh", .args = args, .env = env,
                                     .cwd = t.dir};
  f.opts[1] = (arbor_process_opts_t){.file = "/bin/sh", .args = args_inherit};
  arbor_test_open(&loop, &rt, NULL);
  spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], 0);
  assert_int_eq(f.res[0].exit_status, 0);
  assert_code(f.rc[1], 0);
  assert_int_eq(f.res[1].exit_status, 0);
  arbor_test_close(rt, &loop);
  tmp_close(&t);
}

/* Several fibers, each with its child: each gets its own child's status. */
static void process_parallel_children_each_get_their_own(void **state) {
  enum { N = 4 };
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f[N];
  char codes[N][32];
  char *args[N][4];
  arbor_test_open(&loop, &rt, NULL);
  for (int i = 0; i < N; i++) {
    snprintf(codes[i], sizeof codes[i], "exit %d", 20 + i);
    args[i][0] = "sh";
    args[i][1] = "-c";
    args[i][2] = codes[i];
    args[i][3] = NULL;
    f[i] = (fib_t){.nruns = 1};
    f[i].opts[0] = (arbor_process_opts_t){.file = "/bin/sh", .args = args[i]};
    spawn_fib(arbor_root(rt), &f[i], "runner");
  }
  for (int i = 0; i < N; i++) {
    arbor_test_run_once_until(&loop, f[i].finished);
    assert_code(f[i].rc[0], 0);
    assert_int_eq(f[i].res[0].exit_status, 20 + i);
    assert_reaped(f[i].res[0].pid);
  }
  arbor_test_close(rt, &loop);
}

/* Rule 4: cancelling the waiting fiber sends SIGTERM (the default stop signal) to
 * the child, waits for its exit and returns ARBOR_ECANCELED with the result. */
static void rule4_process_cancel_sends_stop_signal(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.nruns = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sleep", .args = sleep_hour};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_until(&loop, f.calling);
  arbor_test_spin(&loop, 2);     /* parked in process_wait */
  arbor_fiber_info_t fi;
  assert_code(arbor_node_fiber_info(n, &fi), 0);
  assert_string_equal(fi.wait_what, "process_wait");
  assert_string_equal(fi.wait_file, __FILE__);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_int_eq(f.res[0].term_signal, SIGTERM);
  assert_int_eq(f.res[0].killed, 0);
  assert_reaped(f.res[0].pid);
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* The stop signal is configurable. */
static void rule4_process_stop_signal_configurable(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.nruns = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sleep", .args = sleep_hour,
                                     .stop_signal = SIGUSR1};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_until(&loop, f.calling);
  arbor_test_spin(&loop, 2);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_int_eq(f.res[0].term_signal, SIGUSR1);
  assert_reaped(f.res[0].pid);
  arbor_test_close(rt, &loop);
}

/* Rule 4 with rule 6 inside: a child that ignores the stop signal keeps the fiber
 * waiting, shielded (STOPPING, still in "process_wait", a second cancel changes
 * nothing) for as long as it lives. The test ends the child itself (the grace
 * period is an hour), and the call returns ARBOR_ECANCELED with how it ended. */
static void rule4_process_cancelled_waits_shielded_until_exit(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tmp_t t;
  char script[512];
  tmp_open(&t);
  snprintf(script, sizeof script,
           "trap '' TERM; echo $$ > %s/pid.tmp; mv %s/pid.tmp %s/pid; exec sleep 3600",
           t.dir, t.dir, t.dir);
  char *args[] = {"sh", "-c", script, NULL};
  fib_t f = {.nruns = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sh", .args = args,
                                     .kill_after_ms = 3600u * 1000u};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  long pid = -1;
  arbor_test_run_ticking_until(&loop, (pid = read_number(&t, "pid")) > 0);
  assert_code(arbor_node_cancel(n), 0);
  assert_state(n, STOPPING);
  arbor_test_spin(&loop, 50);
  assert_int_eq(f.finished, 0);
  assert_state(n, STOPPING);
  arbor_fiber_info_t fi;         /* the snapshot shows where it still waits */
  assert_code(arbor_node_fiber_info(n, &fi), 0);
  assert_string_equal(fi.wait_what, "process_wait");
  assert_code(arbor_node_cancel(n), 0);   /* again: harmless, still waiting */
  arbor_test_spin(&loop, 10);
  assert_int_eq(f.finished, 0);
  assert_int_eq(kill((pid_t)pid, 0), 0);  /* the child lives: TERM was ignored */
  assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_int_eq(f.res[0].pid, pid);
  assert_int_eq(f.res[0].term_signal, SIGKILL);
  assert_int_eq(f.res[0].killed, 0);      /* the test killed it, not the grace period */
  assert_reaped(pid);
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
  tmp_close(&t);
}

/* Rule 4: a child that ignores SIGTERM gets SIGKILL after kill_after_ms, and so
 * does everything in its process group: here a background sleep, which ignores
 * SIGTERM too. The test is the subreaper, so it reaps that orphan (or the script
 * did) and sees it was killed by SIGKILL. */
static void rule4_process_ignoring_stop_signal_gets_sigkill(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tmp_t t;
  char script[512];
  if (!become_subreaper())
    skip();
  tmp_open(&t);
  snprintf(script, sizeof script,
           "trap '' TERM; sleep 3600 & echo $! > %s/pid.tmp; mv %s/pid.tmp %s/pid; wait",
           t.dir, t.dir, t.dir);
  char *args[] = {"sh", "-c", script, NULL};
  fib_t f = {.nruns = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sh", .args = args, .kill_after_ms = 50};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  long gpid = -1;
  arbor_test_run_ticking_until(&loop, (gpid = read_number(&t, "pid")) > 0);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_int_eq(f.res[0].term_signal, SIGKILL);
  assert_int_eq(f.res[0].killed, 1);
  assert_reaped(f.res[0].pid);
  assert_outcome(n, CANCELLED);
  int status = 0;
  arbor_test_run_ticking_until(&loop, grandchild_gone((pid_t)gpid, &status));
  assert_grandchild_killed(gpid, status, SIGKILL);
  arbor_test_close(rt, &loop);
  tmp_close(&t);
}

/* Rule 4: the stop signal goes to the whole process group: a grandchild (the
 * script's background sleep) dies of it too. The test is the subreaper: the
 * grandchild is reaped here when the script dies before it (its status checked),
 * or by the script when it dies first; either way it ends up gone. */
static void rule4_process_cancel_reaches_grandchildren(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tmp_t t;
  char script[512];
  if (!become_subreaper())
    skip();
  tmp_open(&t);
  snprintf(script, sizeof script,
           "sleep 3600 & echo $! > %s/pid.tmp; mv %s/pid.tmp %s/pid; wait", t.dir, t.dir,
           t.dir);
  char *args[] = {"sh", "-c", script, NULL};
  fib_t f = {.nruns = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sh", .args = args};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  long gpid = -1;
  arbor_test_run_ticking_until(&loop, (gpid = read_number(&t, "pid")) > 0);
  assert_int_eq(kill((pid_t)gpid, 0), 0);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_int_eq(f.res[0].term_signal, SIGTERM);
  assert_int_eq(f.res[0].killed, 0);
  assert_reaped(f.res[0].pid);
  int status = 0;
  arbor_test_run_ticking_until(&loop, grandchild_gone((pid_t)gpid, &status));
  assert_grandchild_killed(gpid, status, SIGTERM);
  arbor_test_close(rt, &loop);
  tmp_close(&t);
}

/* Rule 5: a fail_after deadline around the wait stops the child like a cancel;
 * the call returns ARBOR_ECANCELED, the scope's exit ARBOR_ETIMEDOUT, and the
 * fiber fails with the timeout error. */
static void rule5_process_fail_deadline_stops_child(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.nruns = 1, .fail_after_ms = 20};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sleep", .args = sleep_hour};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_int_eq(f.res[0].term_signal, SIGTERM);
  assert_code(f.scope_rc, ARBOR_ETIMEDOUT);
  assert_reaped(f.res[0].pid);
  assert_outcome(n, FAILED);
  assert_code(arbor_error_code(arbor_node_error(n)), ARBOR_ETIMEDOUT);
  arbor_test_close(rt, &loop);
}

/* A runtime close cancels the fiber: the child is stopped and waited for before
 * the close completes. */
static void rule4_process_runtime_close_stops_child(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  int closed;
  fib_t f = {.nruns = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sleep", .args = sleep_hour};
  arbor_test_open(&loop, &rt, NULL);
  spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_until(&loop, f.calling);
  arbor_test_spin(&loop, 2);
  arbor_test_close_begin(rt, &closed);
  arbor_test_close_end(&loop, &closed);
  assert_int_eq(f.finished, 1);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_int_eq(f.res[0].term_signal, SIGTERM);
  assert_reaped(f.res[0].pid);
}

/* Rule 4, level-triggered: once cancelled, the call returns ARBOR_ECANCELED at
 * once and spawns nothing (the script would create a file). */
static void rule4_process_cancelled_fiber_spawns_nothing(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  tmp_t t;
  char script[512];
  tmp_open(&t);
  snprintf(script, sizeof script, "echo > %s/marker", t.dir);
  char *args[] = {"sh", "-c", script, NULL};
  fib_t f = {.nruns = 1, .sleep_first = 1};
  f.opts[0] = (arbor_process_opts_t){.file = "/bin/sh", .args = args};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = spawn_fib(arbor_root(rt), &f, "runner");
  arbor_test_run_until(&loop, f.cx != NULL);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_once_until(&loop, f.finished);
  assert_code(f.rc[0], ARBOR_ECANCELED);
  assert_untouched(&f.res[0]);
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
  struct stat st;
  assert_int_eq(stat(tmp_file(&t, "marker"), &st), -1);
  tmp_close(&t);
}

/* Bad input: refused before anything is spawned; the fiber is not harmed. */
static int misuse_body(arbor_ctx_t *cx, void *arg) {
  fib_t *f = arg;
  arbor_process_result_t r = untouched;
  char *empty[] = {NULL};
  f->cx = cx;
  f->rc[0] = arbor_process_run(cx, &r, NULL);
  f->rc[1] = arbor_process_run(cx, &r, &(arbor_process_opts_t){.file = NULL});
  f->rc[2] = arbor_process_run(cx, &r, &(arbor_process_opts_t){.file = ""});
  f->rc[3] = arbor_process_run(cx, &r, &(arbor_process_opts_t){.file = "/bin/true",
                                                               .args = empty});
  int bad_sig = arbor_process_run(cx, &r, &(arbor_process_opts_t){.file = "/bin/true",
                                                                   .stop_signal = -1});
  int big_sig = arbor_process_run(cx, &r, &(arbor_process_opts_t){.file = "/bin/true",
                                                                   .stop_signal = 100000});
  if (bad_sig != ARBOR_EINVAL || big_sig != ARBOR_EINVAL)
    f->rc[0] = 1;
  f->res[0] = r;
  f->calling = 1;
  /* a NULL result is fine */
  f->scope_rc = arbor_process_run(cx, NULL, &(arbor_process_opts_t){.file = "/bin/true"});
  return 0;
}

static void process_misuse_is_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  fib_t f = {.nruns = 0};
  arbor_node_t *n;
  arbor_fiber_spec_t spec = {.name = "m", .fn = misuse_body, .arg = &f, .finish = on_finish};
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_fiber_spawn(arbor_root(rt), &spec, &n), 0);
  arbor_test_run_once_until(&loop, f.finished);
  for (int i = 0; i < 4; i++)
    assert_code(f.rc[i], ARBOR_EINVAL);
  assert_untouched(&f.res[0]);
  assert_code(f.scope_rc, 0);
  assert_outcome(n, OK);
  /* off the fiber, and without one */
  arbor_process_opts_t o = {.file = "/bin/true"};
  assert_code(arbor_process_run(f.cx, NULL, &o), ARBOR_ESTATE);
  assert_code(arbor_process_run(NULL, NULL, &o), ARBOR_EINVAL);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest process_tests[] = {
    cmocka_unit_test(process_exit_status_reported),
    cmocka_unit_test(process_killed_by_signal_reported),
    cmocka_unit_test(process_missing_program_returns_enoent),
    cmocka_unit_test(process_child_environment),
    cmocka_unit_test(process_parallel_children_each_get_their_own),
    cmocka_unit_test(rule4_process_cancel_sends_stop_signal),
    cmocka_unit_test(rule4_process_stop_signal_configurable),
    cmocka_unit_test(rule4_process_cancelled_waits_shielded_until_exit),
    cmocka_unit_test(rule4_process_ignoring_stop_signal_gets_sigkill),
    cmocka_unit_test(rule4_process_cancel_reaches_grandchildren),
    cmocka_unit_test(rule5_process_fail_deadline_stops_child),
    cmocka_unit_test(rule4_process_runtime_close_stops_child),
    cmocka_unit_test(rule4_process_cancelled_fiber_spawns_nothing),
    cmocka_unit_test(process_misuse_is_refused),
};

ARBOR_TEST_MAIN(process_tests)
