/* tests/supervisor/test_overflow.c - a fiber that overflows its stack is reported
 * ("arbor: stack overflow in fiber <id> <name>") and ends FAILED with
 * ARBOR_ESTACK while arbor goes on; every other fault behaves as it did without
 * arbor's handler (supervisor/overflow.c).
 *
 * The first cases run in a forked child: the parent reads the child's stdout and
 * stderr (one pipe), waits for it and checks how it ended. The service case runs
 * in the test's own process: the overflow must not end it. */
#include "harness.h"
#include "http/httpc.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define MSG "arbor: stack overflow in fiber "

/* The bad reads below are the point of those tests; valgrind counts them as
 * errors (and changes the exit status), so they are skipped under it. The
 * overflow itself is not a valgrind error: it runs everywhere. */
static void skip_under_valgrind(void) {
  if (RUNNING_ON_VALGRIND) {
    print_message("skipped: a deliberate invalid read is a valgrind error\n");
    exit(77);
  }
}

/* ------------------------------------------------------------- the child */

/* Deep recursion with a frame the compiler cannot drop (a volatile array, used
 * after the call, so no tail call either). 512 bytes a frame: the guard page is
 * touched, not jumped over. */
__attribute__((noinline)) static int recurse(int depth) {
  volatile char frame[512];
  frame[0] = (char)depth;
  frame[sizeof frame - 1] = (char)(depth >> 8);
  if (depth >= 100000000)
    return frame[0];
  return recurse(depth + 1) + frame[sizeof frame - 1];
}

static int body_overflow(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_yield(cx);               /* the second resume overflows, not the first */
  return recurse(0);
}

/* A bad address the compiler cannot see through. */
static volatile int *volatile bad_address = (volatile int *)(uintptr_t)16;

static int body_null(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  (void)arg;
  return *bad_address;
}

static int body_ok(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_yield(cx);
}

static void previous_handler(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  static const char m[] = "previous handler ran\n";
  if (write(STDERR_FILENO, m, sizeof m - 1) < 0) {
  }
  _exit(42);
}

/* The SIGSEGV and SIGBUS actions before main (and cmocka) ran: SIG_DFL, or ASan's
 * handler in a sanitized build (ASan installs it before constructors run). */
static struct sigaction startup_segv, startup_bus;

__attribute__((constructor)) static void save_startup_actions(void) {
  sigaction(SIGSEGV, NULL, &startup_segv);
  sigaction(SIGBUS, NULL, &startup_bus);
}

enum { CHILD_OVERFLOW, CHILD_NULL_IN_FIBER, CHILD_NULL_ON_LOOP, CHILD_CHAIN };

/* Runs one fiber (name "deep_recursion", 16 KiB of stack) in a fresh runtime,
 * after printing its id on stdout. Never returns. */
static void child(int what) {
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  /* cmocka's handlers (they turn a fault into a failed test) are inherited: put
   * back what the process started with, SIG_DFL or, under ASan, ASan's. */
  sigaction(SIGSEGV, &startup_segv, NULL);
  sigaction(SIGBUS, &startup_bus, NULL);
  if (what == CHILD_CHAIN) {
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = previous_handler;
    act.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &act, NULL);
  }
  uv_loop_t loop;
  arbor_runtime_t *rt;
  if (uv_loop_init(&loop) != 0 ||
      arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1}) != 0)
    _exit(3);
  arbor_fiber_fn fn = what == CHILD_OVERFLOW                                 ? body_overflow
                      : what == CHILD_NULL_IN_FIBER || what == CHILD_CHAIN ? body_null
                                                                             : body_ok;
  arbor_fiber_spec_t spec = {.name = "deep_recursion", .fn = fn, .stack_size = 16 * 1024};
  arbor_node_t *node;
  if (arbor_fiber_spawn(arbor_root(rt), &spec, &node) != 0)
    _exit(4);
  printf("id=%llu\n", (unsigned long long)arbor_node_id(node));
  fflush(stdout);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (what == CHILD_NULL_ON_LOOP)  /* the handler is installed, no fiber runs */
    _exit(*bad_address);
  if (what != CHILD_OVERFLOW)
    _exit(5);                      /* the fault did not happen */
  /* The overflowed fiber FAILED with ARBOR_ESTACK and its stack is counted. */
  const arbor_error_t *err = arbor_node_error(node);
  arbor_stats_t st;
  arbor_runtime_stats(rt, &st);
  if (arbor_node_outcome(node) != ARBOR_OUTCOME_FAILED || err == NULL ||
      arbor_error_code(err) != ARBOR_ESTACK || st.fiber_stack_overflows != 1)
    _exit(6);
  printf("error: %s\n", arbor_error_message(err));
  fflush(stdout);
  /* The runtime goes on: a new fiber (a pooled stack) runs, and it closes cleanly. */
  arbor_fiber_spec_t ok = {.name = "after", .fn = body_ok};
  arbor_node_t *after;
  if (arbor_fiber_spawn(arbor_root(rt), &ok, &after) != 0)
    _exit(7);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (arbor_node_outcome(after) != ARBOR_OUTCOME_OK)
    _exit(8);
  int closed = 0;
  if (arbor_runtime_close(rt, arbor_test_close_cb_, &closed) != 0)
    _exit(9);
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(closed == 1 && uv_loop_close(&loop) == 0 ? 0 : 10);
}

/* ------------------------------------------------------------ the parent */

typedef struct {
  int status;                      /* waitpid's */
  char out[8192];                  /* the child's stdout and stderr */
  unsigned long long id;           /* the fiber's id, as the child printed it */
} child_result_t;

static void run_child(int what, child_result_t *r) {
  int fds[2];
  memset(r, 0, sizeof *r);
  assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    child(what);
  }
  close(fds[1]);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fds[0], r->out + len, sizeof r->out - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len == sizeof r->out - 1)
      break;
  }
  r->out[len] = '\0';
  close(fds[0]);
  assert_int_eq(waitpid(pid, &r->status, 0), pid);
  const char *p = strstr(r->out, "id=");
  assert_non_null(p);
  r->id = strtoull(p + 3, NULL, 10);
  print_message("child output:\n%s", r->out);
}

__attribute__((unused)) static int died_of(const child_result_t *r, int sig) {
  return WIFSIGNALED(r->status) && WTERMSIG(r->status) == sig;
}

static void overflow_fiber_fails_estack_process_goes_on(void **state) {
  child_result_t r;
  run_child(CHILD_OVERFLOW, &r);
  char want[160];
  snprintf(want, sizeof want, MSG "%llu deep_recursion: the fiber FAILED (ARBOR_ESTACK)",
           r.id);
#ifdef ASAN_BUILD
  /* ASan keeps its own SIGSEGV handler unless allow_user_segv_handler lets ours
   * replace it; then the report is ASan's ("stack-overflow"), not ours. */
  if (strstr(r.out, want) == NULL && strstr(r.out, "AddressSanitizer") != NULL) {
    print_message("skipped: ASan handled the SIGSEGV itself\n");
    exit(77);
  }
#endif
  if (strstr(r.out, want) == NULL) {
    print_error("no \"%s\" in the child's output\n", want);
    fail();
  }
  snprintf(want, sizeof want, "error: stack overflow in fiber %llu deep_recursion (stack 16384 bytes)",
           r.id);
  assert_non_null(strstr(r.out, want));
  assert_true(WIFEXITED(r.status));
  assert_int_eq(WEXITSTATUS(r.status), 0);
}

/* ------------------------------------------------------- a service, in process */

static int deep_runs;

static int body_deep_service(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  if (++deep_runs <= 2)
    return recurse(0);           /* overflows: never returns */
  return arbor_sleep(cx, 3600 * 1000);
}

static int body_steady(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600 * 1000);
}

/* The overflow of one service's fiber is that service's failure: it is
 * restarted (twice here, with backoff), its chain says what happened, its
 * sibling keeps running and arbor stays up, its admin server answering. */
static void overflow_service_restarted_sibling_unaffected(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *sup, *deep, *steady;
  arbor_admin_t *admin;
  deep_runs = 0;
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.no_signals = 1});
  assert_code(arbor_admin_start(rt, &(arbor_admin_opts_t){.port = 0}, &admin), 0);
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.name = "sup", .backoff_ms = 1,
                                                       .no_jitter = 1},
                                   &sup),
              0);
  assert_code(arbor_service_add(sup, &(arbor_service_spec_t){.name = "steady",
                                                               .fiber = body_steady},
                                &steady),
              0);
  assert_code(arbor_service_add(sup, &(arbor_service_spec_t){.name = "deep",
                                                               .fiber = body_deep_service,
                                                               .stack_size = 16 * 1024},
                                &deep),
              0);
  arbor_test_run_ticking_until(&loop, deep_runs >= 3 && arbor_test_service_parked(deep));
  arbor_service_info_t si;
  assert_code(arbor_service_info(deep, &si), 0);
  assert_uint_eq(si.restarts, 2);
  for (uint32_t i = 0; i < 2; i++) {
    arbor_service_failure_t f;
    assert_code(arbor_service_failure(deep, i, &f), 0);
    assert_code(arbor_error_code(f.error), ARBOR_ESTACK);
    assert_non_null(strstr(arbor_error_message(f.error), "stack overflow in fiber"));
  }
  assert_code(arbor_service_info(steady, &si), 0);
  assert_uint_eq(si.restarts, 0);
  assert_true(arbor_service_is_running(steady));
  assert_state(sup, STARTED);
  arbor_stats_t st;
  arbor_runtime_stats(rt, &st);
  assert_uint_eq(st.fiber_stack_overflows, 2);
  /* The admin server, started before the overflows, answers, and shows the
   * chain. */
  char url[128], path[64];
  long status = 0;
  char *body = NULL;
  snprintf(path, sizeof path, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(deep));
  httpc_url(url, sizeof url, arbor_admin_port(admin), path);
  assert_int_eq(httpc_request(&loop, "GET", url, NULL, NULL, &status, &body, NULL), 0);
  assert_int_eq(status, 200);
  assert_non_null(strstr(body, "ESTACK"));
  free(body);
  httpc_url(url, sizeof url, arbor_admin_port(admin), "/metrics");
  assert_int_eq(httpc_request(&loop, "GET", url, NULL, NULL, &status, &body, NULL), 0);
  assert_int_eq(status, 200);
  assert_non_null(strstr(body, "\narbor_fiber_stack_overflows_total 2\n"));
  free(body);
  assert_code(arbor_node_cancel(sup), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(sup));
  assert_outcome(sup, CANCELLED);
  arbor_test_close(rt, &loop);
}

/* A NULL dereference in a fiber is not an overflow: no report, and the process
 * dies of SIGSEGV as without arbor (under ASan: ASan's report). */
static void overflow_other_fault_in_fiber_not_reported(void **state) {
  child_result_t r;
  skip_under_valgrind();
  run_child(CHILD_NULL_IN_FIBER, &r);
  assert_null(strstr(r.out, MSG));
#ifdef ASAN_BUILD
  /* ASan's handler, which was there before arbor's, reports it. */
  assert_non_null(strstr(r.out, "AddressSanitizer: SEGV"));
#else
  assert_true(died_of(&r, SIGSEGV));
#endif
}

/* A fault on the loop's stack once fibers have run (the handler is installed). */
static void overflow_fault_on_loop_not_reported(void **state) {
  child_result_t r;
  skip_under_valgrind();
  run_child(CHILD_NULL_ON_LOOP, &r);
  assert_null(strstr(r.out, MSG));
#ifdef ASAN_BUILD
  /* ASan's handler, which was there before arbor's, reports it. */
  assert_non_null(strstr(r.out, "AddressSanitizer: SEGV"));
#else
  assert_true(died_of(&r, SIGSEGV));
#endif
}

/* A SIGSEGV handler the program had before arbor's still gets the faults that are
 * not overflows. */
static void overflow_other_fault_goes_to_previous_handler(void **state) {
  child_result_t r;
  skip_under_valgrind();
  run_child(CHILD_CHAIN, &r);
  assert_null(strstr(r.out, MSG));
  assert_non_null(strstr(r.out, "previous handler ran"));
  assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 42);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(overflow_fiber_fails_estack_process_goes_on),
    cmocka_unit_test(overflow_service_restarted_sibling_unaffected),
    cmocka_unit_test(overflow_other_fault_in_fiber_not_reported),
    cmocka_unit_test(overflow_fault_on_loop_not_reported),
    cmocka_unit_test(overflow_other_fault_goes_to_previous_handler),
};

ARBOR_TEST_MAIN(tests)
