/* tests/supervisor/test_procsvc.c - process services (supervisor/procsvc.c,
 * logring.c, reaper.c): a service whose incarnations run a program. How a run
 * ends becomes its error chain (status, signal, the last lines of stderr); stop
 * signal to the process group, SIGKILL after the shutdown timeout (rule 8: stuck);
 * grandchildren killed and reaped (arbor is the child subreaper); the bounded
 * output ring; readiness by minimum uptime or by a notification fd; bad specs.
 *
 * Programs are /bin/sh scripts. Where a test must wait for something a script
 * does (write a file, die), it drives the loop with a 1 ms timer for a bounded
 * number of passes; where it must hold a script at a point, the script waits for a
 * file the test creates ("go"). Nothing asserts on time.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define HOUR (3600u * 1000u)

/* ------------------------------------------------------------------ helpers */

/* Loop passes with the 1 ms timer: time goes by (for a program to run on), with
 * no condition to wait for. */
static void run_ticks(uv_loop_t *loop, int n) {
  uv_timer_t tick;
  assert_int_eq(uv_timer_init(loop, &tick), 0);
  assert_int_eq(uv_timer_start(&tick, arbor_test_tick_cb_, 1, 1), 0);
  for (int i = 0; i < n; i++)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}


/* The number a script wrote (atomically, by renaming) to `name`, or -1 while the
 * file is not there. */
static long read_number(arbor_test_tmp_t *t, const char *name) {
  FILE *f = fopen(arbor_test_tmp_file(t, name), "r");
  long v = -1;
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld", &v) != 1)
    v = -1;
  fclose(f);
  return v;
}

/* State, parent and process group of a process from /proc/PID/stat; 0, or -1 when
 * it is not there. The name (field 2) may hold spaces: parse after the last ')'. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  int pp, pg;
  if (p == NULL || sscanf(p + 1, " %c %d %d", state, &pp, &pg) != 3)
    return -1;
  *ppid = pp;
  *pgrp = pg;
  return 0;
}

/* Counts processes in /proc: those in process group pgid (pgid > 0), zombies
 * included, plus the zombies whose parent is this process. */
static int count_leftovers(pid_t pgid) {
  DIR *d = opendir("/proc");
  assert_non_null(d);
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    char state;
    pid_t ppid, pgrp;
    if (proc_stat((pid_t)atoi(e->d_name), &state, &ppid, &pgrp) < 0)
      continue;
    if ((pgid > 0 && pgrp == pgid) || (state == 'Z' && ppid == getpid()))
      count++;
  }
  closedir(d);
  return count;
}

/* 1 once pid is gone altogether: not even a zombie is left of it. */
static int process_gone(pid_t pid) { return kill(pid, 0) < 0 && errno == ESRCH; }

/* Adds a service (must succeed). */
static arbor_node_t *add_service(arbor_node_t *parent, const arbor_service_spec_t *spec) {
  arbor_node_t *n = NULL;
  assert_code(arbor_service_add(parent, spec, &n), 0);
  assert_non_null(n);
  return n;
}

static int service_pid(const arbor_node_t *svc) {
  arbor_service_info_t info;
  assert_code(arbor_service_info(svc, &info), 0);
  return info.pid;
}

static arbor_phase_t service_phase(const arbor_node_t *svc) {
  arbor_service_info_t info;
  assert_code(arbor_service_info(svc, &info), 0);
  return info.phase;
}

static uint32_t service_restarts(const arbor_node_t *svc) {
  arbor_service_info_t info;
  assert_code(arbor_service_info(svc, &info), 0);
  return info.restarts;
}

/* The whole log ring of a service, NUL-terminated, into buf. */
static size_t read_log(const arbor_node_t *svc, char *buf, size_t size, uint64_t *missed) {
  uint64_t off = 0;
  int n = arbor_service_log_read(svc, &off, buf, size - 1, missed);
  assert_true(n >= 0);
  buf[n] = '\0';
  return (size_t)n;
}

/* The message of the newest kept failure of svc. */
static const char *last_failure(const arbor_node_t *svc, int *code) {
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(svc, 0, &f), 0);
  assert_non_null(f.error);
  *code = arbor_error_code(f.error);
  return arbor_error_message(f.error);
}

#define assert_contains(hay, needle)                                                   \
  do {                                                                                 \
    const char *h_ = (hay), *n_ = (needle);                                            \
    if (strstr(h_, n_) == NULL) {                                                      \
      print_error("\"%s\" does not contain \"%s\"\n", h_, n_);                         \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* -------------------------------------------------------------- bad specs */

/* Bad specs are refused by arbor_service_add with ARBOR_EINVAL: nothing is
 * created, nothing runs. */
static void procsvc_bad_specs_refused_start_nothing(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *empty[] = {NULL};
  char *empty0[] = {"", NULL};
  char *ok[] = {"/bin/true", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *root = arbor_root(rt), *n = NULL;
  const arbor_service_spec_t bad[] = {
      {.name = "empty-argv", .argv = empty},
      {.name = "empty-argv0", .argv = empty0},
      {.name = "negative-signal", .argv = ok, .stop_signal = -1},
      {.name = "huge-signal", .argv = ok, .stop_signal = NSIG},
      {.name = "notify-stdout", .argv = ok, .notify_fd = 1},
      {.name = "notify-stderr", .argv = ok, .notify_fd = 2},
      {.name = "notify-negative", .argv = ok, .notify_fd = -3},
      {.name = "notify-huge", .argv = ok, .notify_fd = 1 << 20},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_code(arbor_service_add(root, &bad[i], &n), ARBOR_EINVAL);
    assert_null(n);
  }
  arbor_node_info_t info;
  arbor_node_info(root, &info);
  assert_uint_eq(info.children_total, 0);
  arbor_test_spin(&loop, 5);
  arbor_node_info(root, &info);
  assert_uint_eq(info.children_total, 0);
  arbor_test_close(rt, &loop);
}

/* The internal validation, case by case, and the copy it makes. */
static void procsvc_spec_copy_is_deep(void **state) {
  char prog[] = "/bin/echo", arg[] = "hello";
  char *argv[] = {prog, arg, NULL};
  char env0[] = "A=1";
  char *env[] = {env0, NULL};
  char cwd[] = "/tmp";
  struct arbor__proc_spec *ps = NULL;
  assert_code(arbor__proc_spec_new(&(arbor_service_spec_t){.argv = argv, .env = env,
                                                            .cwd = cwd, .notify_fd = 3},
                                   &ps),
              0);
  assert_non_null(ps);
  arbor__proc_spec_free(ps);
  assert_code(arbor__proc_spec_new(&(arbor_service_spec_t){.argv = NULL}, &ps), ARBOR_EINVAL);
  assert_code(arbor__proc_spec_new(&(arbor_service_spec_t){.argv = argv, .stop_signal = NSIG - 1},
                                   &ps),
              0);
  arbor__proc_spec_free(ps);
  arbor__proc_spec_free(NULL);
}

/* The spec is copied: the caller's strings may change once the add returned. */
static void procsvc_spec_strings_copied(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char script[] = "echo original";
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "copy",
                                                                           .argv = argv});
  strcpy(script, "echo changed!");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, OK);
  char log[256];
  read_log(svc, log, sizeof log, NULL);
  assert_string_equal(log, "original\n");
  arbor_test_close(rt, &loop);
}

/* A program that cannot be run: the incarnation fails with the spawn's error. */
static void procsvc_missing_program_fails_with_spawn_error(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/nonexistent/arbor-no-such-program", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "ghost",
                                                                           .argv = argv});
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, FAILED);
  int code;
  const char *msg = last_failure(svc, &code);
  assert_code(code, -ENOENT);
  assert_contains(msg, "process ghost: cannot run /nonexistent/arbor-no-such-program");
  assert_code(arbor_error_code(arbor_node_error(svc)), -ENOENT);
  assert_int_eq(service_pid(svc), 0);
  arbor_test_close(rt, &loop);
}

/* ---------------------------------------------------------- how runs end */

/* Status 0 is a normal end; the pid is reported while the program runs. */
static void procsvc_exit_zero_is_ok_and_pid_reported(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512];
  arbor_test_tmp_open(&t, "procsvc");
  snprintf(script, sizeof script,
           "echo $$ > %s/pid.tmp; mv %s/pid.tmp %s/pid; "
           "while [ ! -e %s/go ]; do sleep 0.01; done; exit 0",
           t.dir, t.dir, t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "ok",
                                                                           .argv = argv});
  long pid = -1;
  arbor_test_run_ticking_until(&loop, (pid = read_number(&t, "pid")) > 0);
  assert_int_eq(service_pid(svc), pid);
  arbor_service_info_t info;
  assert_code(arbor_service_info(svc, &info), 0);
  assert_int_eq(info.is_process, 1);
  assert_state(svc, STARTED);    /* min_uptime 0: ready at once */
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, OK);
  assert_int_eq(service_pid(svc), 0);
  assert_true(process_gone((pid_t)pid));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A crash fails the run with ARBOR_EEXIT, "exited with status 3" and the last
 * stderr lines; its supervisor restarts it; the log ring keeps both runs'
 * output. */
static void procsvc_crash_restarts_with_status_and_stderr_in_chain(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512];
  arbor_test_tmp_open(&t, "procsvc");
  snprintf(script, sizeof script,
           "if [ -e %s/ran ]; then echo second run; exec sleep 3600; fi; "
           "touch %s/ran; echo first run; "
           "echo 'line 1' >&2; echo 'line 2' >&2; echo 'line 3' >&2; echo 'line 4' >&2; "
           "echo 'line 5' >&2; echo 'bad \"thing\"' >&2; exit 3",
           t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *sup = NULL;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.name = "sup", .no_backoff = 1,
                                                       .intensity = 5},
                                   &sup),
              0);
  arbor_node_t *svc = add_service(sup, &(arbor_service_spec_t){.name = "crasher",
                                                                .argv = argv});
  arbor_test_run_ticking_until(&loop, service_restarts(svc) == 1 &&
                               service_phase(svc) == ARBOR_PHASE_RUNNING &&
                               service_pid(svc) > 0);
  int code;
  const char *msg = last_failure(svc, &code);
  assert_code(code, ARBOR_EEXIT);
  assert_contains(msg, "process crasher (pid ");
  assert_contains(msg, "exited with status 3");
  /* the last 5 lines, quoted with C escapes; the oldest one cut */
  assert_contains(msg, "; stderr: \"...line 2\\nline 3\\nline 4\\nline 5\\nbad \\\"thing\\\"\"");
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(svc, 0, &f), 0);
  assert_int_eq(f.restarted, 1);
  char text[2048];
  assert_true(arbor_error_format(f.error, text, sizeof text) > 0);
  assert_contains(text, "EEXIT: process crasher");
  char log[1024];
  arbor_test_run_ticking_until(&loop, (read_log(svc, log, sizeof log, NULL),
                            strstr(log, "second run") != NULL));
  assert_contains(log, "first run\n");
  assert_contains(log, "line 1\n");
  assert_true(strstr(log, "first run") < strstr(log, "second run"));
  assert_code(arbor_node_cancel(sup), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(sup));
  assert_outcome(svc, CANCELLED);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* Killed by a signal: ARBOR_ESIGNAL, "killed by signal 9 (SIGKILL)". */
static void procsvc_killed_by_signal_reported(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "echo dying >&2; kill -KILL $$", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "victim",
                                                                           .argv = argv});
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, FAILED);
  int code;
  const char *msg = last_failure(svc, &code);
  assert_code(code, ARBOR_ESIGNAL);
  assert_contains(msg, "process victim (pid ");
  assert_contains(msg, "killed by signal 9 (SIGKILL); stderr: \"dying\"");
  arbor_test_close(rt, &loop);
}

/* A program that exits before it is ready fails, even with status 0. */
static void procsvc_exit_before_ready_fails(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "echo oops >&2; exit 0", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "early",
                                                                           .argv = argv,
                                                                           .notify_fd = 3});
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, FAILED);
  int code;
  const char *msg = last_failure(svc, &code);
  assert_code(code, ARBOR_EEXIT);
  assert_contains(msg, "exited with status 0 before it was ready; stderr: \"oops\"");
  assert_int_eq(arbor_service_is_started(svc), 0);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------- stopping */

/* The stop signal is configurable, and a stop is a cancellation, not a failure. */
static void procsvc_stop_signal_configurable(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c",
                  "trap 'echo got-usr1; exit 7' USR1; echo >&3; "
                  "while :; do sleep 0.01; done",
                  NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "usr1", .argv = argv,
                                                          .notify_fd = 3,
                                                          .stop_signal = SIGUSR1});
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  assert_code(arbor_node_cancel(svc), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, CANCELLED);
  assert_int_eq(arbor_node_is_stuck(svc), 0);
  char log[256];
  read_log(svc, log, sizeof log, NULL);
  assert_contains(log, "got-usr1");
  arbor_test_close(rt, &loop);
}

/* Rule 8: a program that ignores the stop signal is stuck once the shutdown
 * timeout passed, and its process group gets SIGKILL. */
static void rule8_procsvc_ignoring_stop_signal_gets_sigkill_and_is_stuck(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  /* readiness only once the trap is set: the stop cannot come before it */
  char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo >&3; exec sleep 3600", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "persistent", .argv = argv,
                                                          .notify_fd = 3,
                                                          .shutdown_timeout_ms = 200});
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  int pid = service_pid(svc);
  assert_true(pid > 0);
  arbor_service_info_t info;
  assert_code(arbor_service_info(svc, &info), 0);
  uint64_t inc_id = info.incarnation_id;
  assert_code(arbor_node_cancel(svc), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_int_eq(arbor_node_is_stuck(svc), 1);
  arbor_node_t *inc = arbor_node_find(rt, inc_id);
  assert_non_null(inc);
  assert_int_eq(arbor_node_is_stuck(inc), 1);
  assert_int_eq(arbor_node_kind(inc), ARBOR_KIND_PROCESS);
  assert_outcome(inc, CANCELLED);        /* stopping it was asked for */
  assert_true(arbor_test_count_events(rt, inc_id, ARBOR_EVENT_STUCK) == 1);
  assert_true(process_gone((pid_t)pid));
  arbor_test_close(rt, &loop);
}

/* arbor_service_fail on a program that ignores its stop signal: it gets SIGKILL
 * past the shutdown timeout, as any stop, and the run still ends FAILED with the
 * given error, not with the kill: the verdict is why it ended. */
static void procsvc_fail_kills_program_run_failed_with_given_error(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo >&3; exec sleep 3600", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "unhealthy", .argv = argv,
                                                          .notify_fd = 3,
                                                          .shutdown_timeout_ms = 100});
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  int pid = service_pid(svc);
  assert_true(pid > 0);
  assert_code(arbor_service_fail(svc, arbor_error_new(-ETIMEDOUT, "liveness probe failed 3 times")),
              0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_true(process_gone((pid_t)pid));
  assert_outcome(svc, FAILED);   /* unsupervised: it ran once, and this ended it */
  assert_int_eq(arbor_error_code(arbor_node_error(svc)), -ETIMEDOUT);
  assert_string_equal(arbor_error_message(arbor_node_error(svc)), "liveness probe failed 3 times");
  arbor_test_close(rt, &loop);
}

/* Rule 8 through the runtime: closing it stops a program that ignores the stop
 * signal too; the service's shutdown timeout sends the SIGKILL, and the close
 * completes with nothing left. */
static void rule8_procsvc_runtime_close_kills_persistent_program(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  int closed;
  char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo >&3; exec sleep 3600", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "persistent", .argv = argv,
                                                          .notify_fd = 3,
                                                          .shutdown_timeout_ms = 50});
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  pid_t pid = (pid_t)service_pid(svc);
  assert_true(pid > 0);
  arbor_test_close_begin(rt, &closed);
  arbor_test_close_end(&loop, &closed);
  assert_true(process_gone(pid));
  assert_int_eq(count_leftovers(pid), 0);
}

/* Rule 8, an immediate shutdown: every process group gets SIGKILL at once, the
 * service is stuck, and its incarnation ends once the program is gone. */
static void rule8_procsvc_immediate_shutdown_kills_program(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo >&3; exec sleep 3600", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "persistent", .argv = argv,
                                                          .notify_fd = 3,
                                                          .shutdown_timeout_ms = HOUR});
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  pid_t pid = (pid_t)service_pid(svc);
  assert_true(pid > 0);
  assert_code(arbor_shutdown(rt, 1), 0);
  assert_int_eq(arbor_node_is_stuck(svc), 1);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_true(process_gone(pid));
  arbor_test_close(rt, &loop);
}

/* Stopping a service kills its grandchildren (the process group) and no zombie
 * and no process of the group remains: the subreaper reaps what the leader
 * left. */
static void procsvc_stop_kills_grandchildren_no_zombies(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "sleep 3600 & sleep 3600 & echo >&3; wait", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "family", .argv = argv,
                                                          .notify_fd = 3});
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  pid_t pid = (pid_t)service_pid(svc);
  assert_true(pid > 0);
  assert_true(count_leftovers(pid) >= 3);   /* the shell and its two sleeps */
  assert_code(arbor_node_cancel(svc), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, CANCELLED);
  arbor_test_run_ticking_until(&loop, count_leftovers(pid) == 0);
  arbor_test_close(rt, &loop);
  assert_int_eq(count_leftovers(pid), 0);
}

/* A program that exits by itself takes what is left of its group with it. */
static void procsvc_exit_kills_rest_of_group(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "sleep 3600 & exit 4", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "leaver",
                                                                           .argv = argv});
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, FAILED);
  int code;
  const char *msg = last_failure(svc, &code);
  assert_code(code, ARBOR_EEXIT);
  assert_contains(msg, "exited with status 4");
  pid_t pid = 0;
  assert_int_eq(sscanf(strstr(msg, "(pid "), "(pid %d)", &pid), 1);
  arbor_test_run_ticking_until(&loop, count_leftovers(pid) == 0);
  arbor_test_close(rt, &loop);
}

/* An orphan (double fork: its parent exits) is re-parented to arbor, the child
 * subreaper, and reaped when it exits: no zombie. */
static void procsvc_orphaned_grandchild_reaped_by_subreaper(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512];
  arbor_test_tmp_open(&t, "procsvc");
  snprintf(script, sizeof script,
           "(sh -c 'echo $$ > %s/gpid.tmp; mv %s/gpid.tmp %s/gpid; "
           "while [ ! -e %s/go ]; do sleep 0.01; done' &); "
           "echo >&3; exec sleep 3600",
           t.dir, t.dir, t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "forker", .argv = argv,
                                                          .notify_fd = 3});
  long gpid = -1;
  arbor_test_run_ticking_until(&loop, (gpid = read_number(&t, "gpid")) > 0);
  /* its parent, the subshell, exits at once: the orphan becomes our child */
  char st;
  pid_t ppid = 0, pgrp = 0;
  arbor_test_run_ticking_until(&loop, proc_stat((pid_t)gpid, &st, &ppid, &pgrp) == 0 &&
                               ppid == getpid());
  assert_int_eq(pgrp, service_pid(svc));   /* still in the service's group */
  arbor_test_tmp_touch(&t, "go");                      /* let it exit: the reaper reaps it */
  arbor_test_run_ticking_until(&loop, process_gone((pid_t)gpid));
  assert_int_eq(count_leftovers(0), 0);
  assert_state(svc, STARTED);               /* the service runs on */
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

typedef struct {
  int rc;
  arbor_process_result_t res;
  int finished;
} runner_t;

static int runner_body(arbor_ctx_t *cx, void *arg) {
  runner_t *r = arg;
  char *args[] = {"sh", "-c", "exit 5", NULL};
  r->rc = arbor_process_run(cx, &r->res, &(arbor_process_opts_t){.file = "/bin/sh",
                                                                 .args = args});
  r->finished = 1;
  return 0;
}

/* The reaper takes only what nobody else waits for: libuv's children keep their
 * exit status (arbor_process_run's child), and so does a child the embedding
 * program forked itself (in arbor's session), for its own waitpid. */
static void procsvc_reaper_leaves_other_children_alone(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "exec sleep 3600", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "keeper",
                                                                           .argv = argv});
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  pid_t own = fork();
  assert_true(own >= 0);
  if (own == 0)
    _exit(7);
  char st = 0;
  pid_t ppid, pgrp;
  arbor_test_run_ticking_until(&loop, proc_stat(own, &st, &ppid, &pgrp) == 0 && st == 'Z');
  runner_t r = {.rc = -1};
  arbor_node_t *fib = NULL;
  assert_code(arbor_fiber_spawn(arbor_root(rt),
                                &(arbor_fiber_spec_t){.name = "runner", .fn = runner_body,
                                                      .arg = &r},
                                &fib),
              0);
  arbor_test_run_once_until(&loop, r.finished);
  assert_code(r.rc, 0);
  assert_int_eq(r.res.exit_status, 5);
  /* a zombie through the reaper's scans at the child's exit and at sh's: still
   * ours to wait for */
  int status = 0;
  assert_int_eq(waitpid(own, &status, 0), own);
  assert_true(WIFEXITED(status));
  assert_int_eq(WEXITSTATUS(status), 7);
  arbor_test_close(rt, &loop);
}

/* --------------------------------------------------------------- readiness */

/* min_uptime_ms: STARTING while the program has not been up that long. */
static void procsvc_min_uptime_keeps_starting(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[256];
  arbor_test_tmp_open(&t, "procsvc");
  snprintf(script, sizeof script, "touch %s/up; exec sleep 3600", t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "slow", .argv = argv,
                                                          .min_uptime_ms = HOUR});
  arbor_test_run_ticking_until(&loop, access(arbor_test_tmp_file(&t, "up"), F_OK) == 0);
  run_ticks(&loop, 20);
  assert_state(svc, STARTING);
  assert_int_eq(service_phase(svc), ARBOR_PHASE_STARTING);
  assert_true(service_pid(svc) > 0);
  assert_code(arbor_node_cancel(svc), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, CANCELLED);
  assert_int_eq(arbor_service_is_started(svc), 0);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* ... and STARTED once it has. */
static void procsvc_min_uptime_then_started(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c", "exec sleep 3600", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "steady", .argv = argv,
                                                          .min_uptime_ms = 20});
  arbor_test_spin(&loop, 2);
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  assert_true(service_pid(svc) > 0);
  arbor_test_close(rt, &loop);
}

/* notify_fd (here 5: fds 3 and 4 stay closed): STARTED only after a newline;
 * bytes without one do not count. */
static void procsvc_notify_fd_ready_after_newline(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512];
  arbor_test_tmp_open(&t, "procsvc");
  snprintf(script, sizeof script,
           "printf 'not yet' >&5; touch %s/wrote; "
           "while [ ! -e %s/go ]; do sleep 0.01; done; echo >&5; exec sleep 3600",
           t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "notifier", .argv = argv,
                                                          .notify_fd = 5});
  arbor_test_run_ticking_until(&loop, access(arbor_test_tmp_file(&t, "wrote"), F_OK) == 0);
  run_ticks(&loop, 20);
  assert_state(svc, STARTING);
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  assert_int_eq(arbor_service_is_started(svc), 1);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* ---------------------------------------------------------------- the log */

/* The ring keeps the newest log_size bytes; a reader from 0 learns how many it
 * missed and resumes at the oldest kept byte. */
static void procsvc_log_ring_bounded_keeps_newest(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/sh", "-c",
                  "i=0; while [ $i -lt 20 ]; do printf '%09d\\n' $i; i=$((i+1)); done", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "chatty",
                                                                           .argv = argv,
                                                                           .log_size = 64});
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, OK);
  char buf[256];
  uint64_t off = 0, missed = 99;
  int n = arbor_service_log_read(svc, &off, buf, sizeof buf, &missed);
  assert_int_eq(n, 64);
  assert_uint_eq(missed, 200 - 64);
  assert_uint_eq(off, 200);
  char want[256] = "";
  for (int i = 0; i < 20; i++)
    snprintf(want + strlen(want), sizeof want - strlen(want), "%09d\n", i);
  assert_memory_equal(buf, want + 200 - 64, 64);
  assert_int_eq(arbor_service_log_read(svc, &off, buf, sizeof buf, &missed), 0);
  assert_uint_eq(missed, 0);
  assert_uint_eq(off, 200);
  /* in small pieces from the oldest kept byte */
  off = 150;
  assert_int_eq(arbor_service_log_read(svc, &off, buf, 10, NULL), 10);
  assert_memory_equal(buf, want + 150, 10);
  assert_uint_eq(off, 160);
  arbor_test_close(rt, &loop);
}

static int fiber_body(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, HOUR);
}

/* arbor_service_log_read refuses what is not a process service. */
static void procsvc_log_read_misuse(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char buf[8];
  uint64_t off = 0;
  char *argv[] = {"/bin/true", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *fsvc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "fiber",
                                                                            .fiber = fiber_body});
  arbor_node_t *psvc = add_service(arbor_root(rt), &(arbor_service_spec_t){.name = "proc",
                                                                            .argv = argv});
  assert_code(arbor_service_log_read(fsvc, &off, buf, sizeof buf, NULL), ARBOR_EKIND);
  assert_code(arbor_service_log_read(arbor_root(rt), &off, buf, sizeof buf, NULL), ARBOR_EKIND);
  assert_code(arbor_service_log_read(NULL, &off, buf, sizeof buf, NULL), ARBOR_EINVAL);
  assert_code(arbor_service_log_read(psvc, NULL, buf, sizeof buf, NULL), ARBOR_EINVAL);
  assert_code(arbor_service_log_read(psvc, &off, NULL, sizeof buf, NULL), ARBOR_EINVAL);
  assert_code(arbor_service_log_read(psvc, &off, NULL, 0, NULL), 0);
  arbor_test_close(rt, &loop);
}

/* The ring itself: wrap-around, and a write longer than the ring. */
static void procsvc_logring_wraps(void **state) {
  struct arbor__logring r;
  char buf[32];
  assert_code(arbor__logring_init(&r, 8), 0);
  arbor__logring_write(&r, "abc", 3);
  arbor__logring_write(&r, "defghij", 7);       /* wraps: keeps "cdefghij" */
  assert_uint_eq(r.end, 10);
  char got[9];
  for (int i = 0; i < 8; i++)
    got[i] = r.buf[(10 - 8 + i) % 8];
  got[8] = '\0';
  assert_string_equal(got, "cdefghij");
  arbor__logring_write(&r, "klmnopqrstuvwxyz", 16);   /* longer than the ring */
  assert_uint_eq(r.end, 26);
  for (int i = 0; i < 8; i++)
    got[i] = r.buf[(26 - 8 + i) % 8];
  assert_string_equal(got, "stuvwxyz");
  arbor__logring_free(&r);
  arbor__logring_free(&r);                       /* twice is harmless */
  assert_code(arbor__logring_init(&r, 0), 0);    /* 0: 64 KiB */
  assert_uint_eq(r.cap, 64 * 1024);
  arbor__logring_free(&r);
  (void)buf;
}

/* arbor_service_update: the running program is stopped, the next run runs the
 * new argv; the id, the restart count and the log ring carry on. */
static void procsvc_update_runs_the_new_program_keeping_id(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  (void)state;
  char *v1[] = {"/bin/sh", "-c", "echo one; exec sleep 3600", NULL};
  char *v2[] = {"/bin/sh", "-c", "echo two; exec sleep 3600", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *sup;
  assert_code(arbor_supervisor_new(arbor_root(rt), NULL, &sup), 0);
  arbor_node_t *svc = add_service(sup, &(arbor_service_spec_t){.name = "app", .argv = v1});
  uint64_t id = arbor_node_id(svc);
  char buf[256];
  arbor_test_run_ticking_until(&loop, (read_log(svc, buf, sizeof buf, NULL), strstr(buf, "one") != NULL));
  int pid1 = service_pid(svc);
  assert_true(pid1 > 0);
  assert_code(arbor_service_update(svc, &(arbor_service_spec_t){.name = "app", .argv = v2}), 0);
  arbor_test_run_ticking_until(&loop, (read_log(svc, buf, sizeof buf, NULL), strstr(buf, "two") != NULL));
  assert_uint_eq(arbor_node_id(svc), id);
  assert_uint_eq(service_restarts(svc), 1);
  assert_true(service_pid(svc) != pid1);
  assert_true(process_gone((pid_t)pid1));
  /* Refusals change nothing. */
  assert_code(arbor_service_update(svc, &(arbor_service_spec_t){.fiber = NULL}), ARBOR_EINVAL);
  char *empty[] = {NULL};
  assert_code(arbor_service_update(svc, &(arbor_service_spec_t){.argv = empty}), ARBOR_EINVAL);
  assert_code(arbor_service_update(sup, &(arbor_service_spec_t){.argv = v1}), ARBOR_EKIND);
  assert_uint_eq(service_restarts(svc), 1);
  /* A read of 0 bytes into no buffer is a valid question (UBSan: no memcpy). */
  uint64_t off = 0, missed = 1;
  assert_int_eq(arbor_service_log_read(svc, &off, NULL, 0, &missed), 0);
  assert_uint_eq(missed, 0);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest procsvc_tests[] = {
    cmocka_unit_test(procsvc_bad_specs_refused_start_nothing),
    cmocka_unit_test(procsvc_spec_copy_is_deep),
    cmocka_unit_test(procsvc_spec_strings_copied),
    cmocka_unit_test(procsvc_missing_program_fails_with_spawn_error),
    cmocka_unit_test(procsvc_exit_zero_is_ok_and_pid_reported),
    cmocka_unit_test(procsvc_crash_restarts_with_status_and_stderr_in_chain),
    cmocka_unit_test(procsvc_killed_by_signal_reported),
    cmocka_unit_test(procsvc_exit_before_ready_fails),
    cmocka_unit_test(procsvc_stop_signal_configurable),
    cmocka_unit_test(rule8_procsvc_ignoring_stop_signal_gets_sigkill_and_is_stuck),
    cmocka_unit_test(procsvc_fail_kills_program_run_failed_with_given_error),
    cmocka_unit_test(rule8_procsvc_runtime_close_kills_persistent_program),
    cmocka_unit_test(rule8_procsvc_immediate_shutdown_kills_program),
    cmocka_unit_test(procsvc_stop_kills_grandchildren_no_zombies),
    cmocka_unit_test(procsvc_exit_kills_rest_of_group),
    cmocka_unit_test(procsvc_orphaned_grandchild_reaped_by_subreaper),
    cmocka_unit_test(procsvc_reaper_leaves_other_children_alone),
    cmocka_unit_test(procsvc_min_uptime_keeps_starting),
    cmocka_unit_test(procsvc_min_uptime_then_started),
    cmocka_unit_test(procsvc_notify_fd_ready_after_newline),
    cmocka_unit_test(procsvc_log_ring_bounded_keeps_newest),
    cmocka_unit_test(procsvc_log_read_misuse),
    cmocka_unit_test(procsvc_logring_wraps),
    cmocka_unit_test(procsvc_update_runs_the_new_program_keeping_id),
};

ARBOR_TEST_MAIN(procsvc_tests)
