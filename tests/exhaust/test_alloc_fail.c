/* tests/exhaust/test_alloc_fail.c - out of memory anywhere in the core becomes a
 * refusal (ARBOR_ENOMEM from the call) or an error in the tree, never a crash, a
 * leak, a hang or a corrupted tree (issue 9, "Resource exhaustion").
 *
 * How allocations fail: this program alone is linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
 * (the Makefile), so every such call made by libarbor's objects (supervisor/,
 * tracing/, http/) and by this file lands in the __wrap_ functions below, which
 * fail the Nth one once armed. Nothing in the library changes: the production
 * build has no hook to pay for or to trip over. libuv, libmicrohttpd, cJSON,
 * libcurl and libc are shared libraries and keep their own malloc (strdup
 * inside libc is not arbor's), so --wrap reaches arbor's own allocations only.
 *
 * The libraries' allocations fail through their own documented hooks, each
 * installed once per process before main (install_library_hooks):
 * uv_replace_allocator (libuv), cJSON_InitHooks (cJSON), curl_global_init_mem
 * (libcurl: arbor's OTLP push). A run counts one source at a time (SRC_*: arbor's
 * own, or one library's), so "the Nth allocation" is the Nth of that source.
 * libmicrohttpd has no hook (see docs/RELIABILITY.md, "Resource exhaustion").
 *
 * Only the thread that armed the hook is counted: the loop thread, where all of
 * arbor's logic runs. libuv's thread pool (log file writes, arbor_run_in_thread)
 * and the HTTP client's helper thread allocate as usual, so the Nth allocation
 * is the same one on every run.
 *
 * Each scenario runs once with nothing failing, to count its allocations, then
 * once for each k = 1..N with the k-th failing, each in a fresh loop and
 * runtime. Every run checks:
 *  - every call returned what it returns without faults, or ARBOR_ENOMEM (and
 *    then only when the fault happened);
 *  - the tree's invariants (legal kinds, states and outcomes; an outcome exactly
 *    when FINISHED; no FINISHED node with an unfinished child);
 *  - the scenario ran to its end (nothing waits forever because a wake-up or a
 *    finish was lost);
 *  - the runtime closes and uv_loop_close returns 0 (no handle left open); the
 *    ASan and valgrind runs of `make test` add "nothing leaked".
 * It counts what each fault became: refused (a call returned ARBOR_ENOMEM, or
 * the server answered 500/503 or cut a stream short), an error in the tree
 * (ARBOR_ENOMEM in the chain of a FAILED node or of a service's kept failure),
 * counted (a loss or a failed request counted in the exporter's stats, and
 * retried), or absorbed (nothing visible: an allocation whose failure costs a
 * detail or a delay, said in the ring or not).
 * ALLOC_FAIL_VERBOSE=1 prints a line per k.
 */
#include "harness.h"
#include "http/httpc.h"

#include <cJSON.h>
#include <curl/curl.h>

#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* ------------------------------------------------------ the wrappers */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

/* Whose allocations a run counts (and may fail): arbor's own (the wrappers
 * above) or one of the libraries' (their hooks, below). */
enum { SRC_ARBOR = 1, SRC_UV = 2, SRC_CJSON = 4, SRC_CURL = 8, SRC_MHD = 16 };

static pthread_t armed_thread;
static int armed;               /* counting on armed_thread */
static int counting = SRC_ARBOR; /* the sources counted (SRC_*) */
static int paused;              /* the test's own allocations: not counted */
static long seen;               /* allocations counted since arm() */
static long fail_at;            /* 1-based; 0: none fails */
static long failed;             /* how many were failed */
static int fail_rest;           /* 1: every allocation from fail_at on fails */

/* Whether this allocation is the one to fail. */
static int fault(int src) {
  if (!armed || paused || !(counting & src) || !pthread_equal(pthread_self(), armed_thread))
    return 0;
  ++seen;
  if (fail_at == 0 || (fail_rest ? seen < fail_at : seen != fail_at))
    return 0;
  failed++;
  if (getenv("ALLOC_FAIL_BT") != NULL) {         /* debugging: who allocated */
    void *frames[16];
    backtrace_symbols_fd(frames, backtrace(frames, 16), STDERR_FILENO);
  }
  errno = ENOMEM;
  return 1;
}

void *__wrap_malloc(size_t n) { return fault(SRC_ARBOR) ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) {
  return fault(SRC_ARBOR) ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) { return fault(SRC_ARBOR) ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fault(SRC_ARBOR) ? NULL : __real_strdup(s); }

/* The libraries' own hooks, each tagged with its source. They allocate with
 * __real_* so that a library's allocation is never counted as arbor's too, and
 * free with libc's free: one heap, so what a library allocated may be freed by
 * arbor (server.c hands cJSON's text to MHD, which free()s it) and the other
 * way round. */
static void *uv_malloc_hook(size_t n) { return fault(SRC_UV) ? NULL : __real_malloc(n); }
static void *uv_calloc_hook(size_t n, size_t size) {
  return fault(SRC_UV) ? NULL : __real_calloc(n, size);
}
static void *uv_realloc_hook(void *p, size_t n) {
  return fault(SRC_UV) ? NULL : __real_realloc(p, n);
}
static void *cjson_malloc_hook(size_t n) { return fault(SRC_CJSON) ? NULL : __real_malloc(n); }
static void *curl_malloc_hook(size_t n) { return fault(SRC_CURL) ? NULL : __real_malloc(n); }
static void *curl_calloc_hook(size_t n, size_t size) {
  return fault(SRC_CURL) ? NULL : __real_calloc(n, size);
}
static void *curl_realloc_hook(void *p, size_t n) {
  return fault(SRC_CURL) ? NULL : __real_realloc(p, n);
}
static char *curl_strdup_hook(const char *s) { return fault(SRC_CURL) ? NULL : __real_strdup(s); }

/* libmicrohttpd 0.9.75 has no allocator hook. In the builds without ASan
 * (whose runtime owns malloc: a second definition would not link), this program
 * defines malloc, calloc and realloc itself. The dynamic linker binds every
 * library's calls to the executable's definitions, which pass them on to
 * glibc's own (__libc_*, which valgrind tracks as it tracks malloc) and fail
 * only a call made from libmicrohttpd's own code: the return address inside
 * its text, found once before main. Its allocations made through another
 * library (none seen) would not count; the ones it makes with mmap (a
 * connection's memory pool past 32 KiB: arbor's is the default 32 KiB, so
 * malloc) cannot fail here. */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_MHD_FAULTS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_MHD_FAULTS 0
#endif
#endif
#ifndef HAVE_MHD_FAULTS
#define HAVE_MHD_FAULTS 1
#endif

#if HAVE_MHD_FAULTS
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

static uintptr_t mhd_text_lo, mhd_text_hi;   /* libmicrohttpd's code */

static int from_mhd(const void *ret) {
  return (uintptr_t)ret >= mhd_text_lo && (uintptr_t)ret < mhd_text_hi;
}

void *malloc(size_t n) {
  return from_mhd(__builtin_return_address(0)) && fault(SRC_MHD) ? NULL : __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
  return from_mhd(__builtin_return_address(0)) && fault(SRC_MHD) ? NULL
                                                                 : __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
  return from_mhd(__builtin_return_address(0)) && fault(SRC_MHD) ? NULL : __libc_realloc(p, n);
}

static int find_mhd_text(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size, (void)arg;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libmicrohttpd") == NULL)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      mhd_text_lo = info->dlpi_addr + ph->p_vaddr;
      mhd_text_hi = mhd_text_lo + ph->p_memsz;
    }
  }
  return 1;
}
#endif

/* Installed before main: uv_replace_allocator must come before any other libuv
 * call of the process (libuv 1.44's docs), curl_global_init_mem before any
 * other libcurl call (arbor's and httpc's own curl_global_init are then counted
 * no-ops). cJSON_InitHooks may come at any time, but what it does has a quirk:
 * cJSON 1.7.15 uses realloc only when both malloc_fn and free_fn are libc's, so
 * with our malloc_fn it grows its print buffers by malloc + copy + free, and
 * every cJSON allocation goes through cjson_malloc_hook. */
__attribute__((constructor)) static void install_library_hooks(void) {
  if (uv_replace_allocator(uv_malloc_hook, uv_realloc_hook, uv_calloc_hook, free) != 0 ||
      curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_malloc_hook, free, curl_realloc_hook,
                           curl_strdup_hook, curl_calloc_hook) != CURLE_OK)
    abort();
  cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = cjson_malloc_hook, .free_fn = NULL});
#if HAVE_MHD_FAULTS
  dl_iterate_phdr(find_mhd_text, NULL);
  if (mhd_text_hi == 0)
    abort();
#endif
}

static void arm(long k) {
  armed_thread = pthread_self();
  seen = 0;
  failed = 0;
  fail_at = k;
  fail_rest = 0;
  paused = 0;
  armed = 1;
}

static void disarm(void) { armed = 0; }

/* From now on every allocation of this thread fails (out of memory for good). */
static void arm_all(void) {
  arm(1);
  fail_rest = 1;
}

/* ------------------------------------------------------ one run */

typedef struct {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  int refused;                  /* some call returned ARBOR_ENOMEM */
  int counted;                  /* a loss or failure counted where it shows (stats) */
  arbor_test_tmp_t tmp;
  int have_tmp;
} run_t;

/* A call's result: what it returns without faults, or ARBOR_ENOMEM after one. */
#define expect_rc(r, got, want)                                                        \
  do {                                                                                 \
    int g__ = (got);                                                                   \
    if (g__ == ARBOR_ENOMEM && failed > 0) {                                           \
      (r)->refused = 1;                                                                \
    } else if (g__ != (want)) {                                                        \
      print_error("fault at %ld (%ld failed): %s\n", fail_at, failed, #got);          \
      assert_code(g__, (want));                                                        \
    }                                                                                  \
  } while (0)

/* Drives the loop until cond holds, ticking so that a lost wake-up cannot block
 * it: at most 5000 passes of at most 1 ms of waiting, then the tree is printed
 * and the test fails. */
static void tick_cb(uv_timer_t *t) { (void)t; }
#define wait_for(r, cond)                                                              \
  do {                                                                                 \
    uv_timer_t tick_;                                                                  \
    int k_, held_ = 0;                                                                 \
    assert_int_eq(uv_timer_init(&(r)->loop, &tick_), 0);                              \
    assert_int_eq(uv_timer_start(&tick_, tick_cb, 1, 1), 0);                          \
    for (k_ = 0; k_ < 5000 && !(held_ = (cond)); k_++)                                 \
      uv_run(&(r)->loop, UV_RUN_ONCE);                                                 \
    uv_close((uv_handle_t *)&tick_, NULL);                                             \
    uv_run(&(r)->loop, UV_RUN_NOWAIT);                                                 \
    if (!held_) {                                                                      \
      print_error("fault at %ld (%ld failed): never held: %s\n", fail_at, failed,     \
                  #cond);                                                              \
      arbor_tree_print(arbor_root((r)->rt), stderr);                                   \
      fail();                                                                          \
    }                                                                                  \
  } while (0)

/* ------------------------------------------------------ invariants */

typedef struct {
  int nodes;
  int enomem_chains;            /* FAILED nodes with ARBOR_ENOMEM in their chain */
  int unfinished;               /* nodes below the root not FINISHED */
} tree_check_t;

static int chain_has(const arbor_error_t *e, int code, int depth) {
  if (e == NULL || depth > 64)
    return 0;
  if (arbor_error_code(e) == code)
    return 1;
  for (size_t i = 0; i < arbor_error_child_count(e); i++)
    if (chain_has(arbor_error_child(e, i), code, depth + 1))
      return 1;
  return chain_has(arbor_error_cause(e), code, depth + 1);
}

static int check_node(arbor_node_t *n, int depth, void *arg) {
  tree_check_t *c = arg;
  arbor_node_info_t info;
  arbor_node_info(n, &info);
  c->nodes++;
  if ((unsigned)info.kind >= ARBOR_KIND_COUNT || (unsigned)info.state >= ARBOR_STATE_COUNT ||
      (unsigned)info.outcome >= ARBOR_OUTCOME_COUNT) {
    print_error("fault at %ld: node %ju: kind %d state %d outcome %d\n", fail_at,
                (uintmax_t)info.id, info.kind, info.state, info.outcome);
    fail();
  }
  if ((info.state == ARBOR_STATE_FINISHED) != (info.outcome != ARBOR_OUTCOME_NONE)) {
    print_error("fault at %ld: node %ju %s is %s with outcome %s\n", fail_at,
                (uintmax_t)info.id, arbor_node_name(n), arbor_state_name(info.state),
                arbor_outcome_name(info.outcome));
    fail();
  }
  if (info.state == ARBOR_STATE_FINISHED && info.live_children != 0) {
    print_error("fault at %ld: node %ju %s FINISHED with %u unfinished children\n",
                fail_at, (uintmax_t)info.id, arbor_node_name(n), info.live_children);
    fail();
  }
  if (depth > 0 && info.state != ARBOR_STATE_FINISHED)
    c->unfinished++;
  if (info.outcome == ARBOR_OUTCOME_FAILED && chain_has(arbor_node_error(n), ARBOR_ENOMEM, 0))
    c->enomem_chains++;
  /* A service's run that could not start leaves its error in the history. */
  arbor_service_info_t si;
  if ((info.kind == ARBOR_KIND_SERVICE || info.kind == ARBOR_KIND_SUPERVISOR) &&
      arbor_service_info(n, &si) == 0)
    for (uint32_t i = 0; i < si.history; i++) {
      arbor_service_failure_t f;
      if (arbor_service_failure(n, i, &f) == 0 && chain_has(f.error, ARBOR_ENOMEM, 0))
        c->enomem_chains++;
    }
  return 0;
}

static tree_check_t check_tree(run_t *r) {
  tree_check_t c = {0, 0, 0};
  int was = paused;
  paused = 1;                   /* the walk itself allocates nothing; keep it so */
  assert_int_eq(arbor_tree_walk(arbor_root(r->rt), -1, check_node, &c), 0);
  paused = was;
  return c;
}

/* ------------------------------------------------------ the driver */

typedef void (*scenario_fn)(run_t *r);

typedef struct {
  long runs, refused, in_tree, counted, absorbed;
} tally_t;

static void presize_cb(uv_poll_t *h, int status, int events) {
  (void)h, (void)status, (void)events;
}

/* libuv 1.44 abort()s when its array of fd watchers cannot grow (maybe_resize
 * in src/unix/core.c: the one allocation it does not report), so a fault there
 * would test libuv, not arbor. With libuv's allocations counted, the array is
 * grown before arming to hold fd 250, far above what a scenario opens: a
 * poll watcher on a pipe's end moved there, started (which grows the array)
 * and closed before it ever reached epoll. */
static void presize_watchers(uv_loop_t *loop) {
  enum { HIGH_FD = 250 };
  uv_poll_t h;
  int p[2];
  assert_int_eq(pipe(p), 0);
  assert_int_eq(dup2(p[0], HIGH_FD), HIGH_FD);
  close(p[0]);
  close(p[1]);
  assert_int_eq(uv_poll_init(loop, &h, HIGH_FD), 0);
  assert_int_eq(uv_poll_start(&h, UV_READABLE, presize_cb), 0);
  uv_close((uv_handle_t *)&h, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  close(HIGH_FD);
}

/* Runs the scenario with allocation k failing (0: none); returns whether the
 * k-th allocation happened (so k + 1 is worth a run). */
static int run_once(const char *name, scenario_fn fn, long k, tally_t *t, long *count) {
  run_t r;
  memset(&r, 0, sizeof r);
  assert_int_eq(uv_loop_init(&r.loop), 0);
  if (counting & SRC_UV)
    presize_watchers(&r.loop);
  if (getenv("ALLOC_FAIL_VERBOSE") != NULL)
    fprintf(stderr, "%s: failing allocation %ld\n", name, k);
  arm(k);
  int rc = arbor_runtime_new(&r.rt, &r.loop, &(arbor_runtime_opts_t){.no_signals = 1});
  if (rc != 0) {
    disarm();
    assert_code(rc, ARBOR_ENOMEM);
    assert_int_eq(failed, 1);
    assert_int_eq(uv_loop_close(&r.loop), 0);
    t->runs++;
    t->refused++;
    return 1;
  }
  fn(&r);
  tree_check_t c = check_tree(&r);
  if (c.unfinished != 0) {
    print_error("%s: fault at %ld: %d nodes never finished\n", name, k, c.unfinished);
    arbor_tree_print(arbor_root(r.rt), stderr);
    fail();
  }
  /* The close allocates too (it may be where the fault lands). */
  arbor_test_close(r.rt, &r.loop);
  disarm();
  if (r.have_tmp)
    arbor_test_tmp_close(&r.tmp);
  if (k == 0) {
    *count = seen;
    return 1;
  }
  if (failed == 0)
    return 0;
  t->runs++;
  const char *became = r.refused             ? "refused"
                       : c.enomem_chains > 0 ? "error in the tree"
                       : r.counted           ? "counted"
                                             : "absorbed";
  if (r.refused)
    t->refused++;
  else if (c.enomem_chains > 0)
    t->in_tree++;
  else if (r.counted)
    t->counted++;
  else
    t->absorbed++;
  if (getenv("ALLOC_FAIL_VERBOSE") != NULL)
    fprintf(stderr, "%s: allocation %ld of %ld failed: %s\n", name, k, *count, became);
  return 1;
}

/* src: whose allocations are failed (SRC_*). */
static void run_scenario(const char *name, scenario_fn fn, int src) {
  tally_t t = {0, 0, 0, 0, 0};
  long count = 0;
  counting = src;
  run_once(name, fn, 0, &t, &count);
  const char *only = getenv("ALLOC_FAIL_AT");   /* debugging: that k alone */
  if (only != NULL) {
    run_once(name, fn, atol(only), &t, &count);
    return;
  }
  /* A library may make no allocation at all on the loop thread in a scenario
   * (libuv allocates almost nothing after uv_loop_init): said, not an error. */
  if (count == 0 && src != SRC_ARBOR) {
    printf("%s: 0 allocations\n", name);
    counting = SRC_ARBOR;
    return;
  }
  assert_true(count > 0);
  long k;
  for (k = 1; run_once(name, fn, k, &t, &count); k++) {
  }
  /* Every counted allocation was failed once (thread-pool timing may move the
   * count by a few between runs). */
  assert_true(t.runs >= count - 4);
  printf("%s: %ld allocations, each failed once: %ld refused, %ld an error in the tree, "
         "%ld counted, %ld absorbed; no crash, leak, hang or broken invariant\n",
         name, count, t.refused, t.in_tree, t.counted, t.absorbed);
  counting = SRC_ARBOR;
}

/* ------------------------------------------------------ scenario: callback tasks */

static void on_tick(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_task_done(task);
}
static void on_tick_fail(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_task_fail(task, ARBOR_EFAILED, "task %s failed on purpose", arbor_node_name(task));
}

static int tick_start(arbor_node_t *task, void *arg) {
  return arbor_task_after(task, 1, arg != NULL ? on_tick_fail : on_tick);
}

static void scenario_tasks(run_t *r) {
  arbor_node_t *g = NULL, *t = NULL;
  expect_rc(r, arbor_group_new(arbor_root(r->rt), &(arbor_group_opts_t){.name = "tasks"}, &g),
            0);
  if (g == NULL)
    return;
  for (int i = 0; i < 4; i++) {
    t = NULL;
    expect_rc(r,
              arbor_task_spawn(g, &(arbor_task_spec_t){.name = "tick", .start = tick_start,
                                                       .arg = i == 3 ? (void *)1 : NULL},
                               &t),
              0);
    if (t != NULL)
      expect_rc(r, arbor_node_attr_set(t, "role", "worker"), 0);
  }
  expect_rc(r, arbor_group_join(g, NULL, NULL), 0);
  wait_for(r, arbor_node_is_finished(g));
}

/* ------------------------------------------------------ scenario: fibers */

typedef struct {
  arbor_channel_end_t tx, rx;
  int have_channel;
} fib_shared_t;

static fib_shared_t fib;

static int body_sender(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  int rc = arbor_sleep(cx, 1);
  for (int i = 0; rc == 0 && i < 3; i++)
    rc = arbor_channel_send(cx, &fib.tx, &i);
  arbor_channel_close(&fib.tx);
  return rc;
}

static int body_receiver(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  int item, rc;
  while ((rc = arbor_channel_recv(cx, &fib.rx, &item)) == 0) {
  }
  arbor_channel_close(&fib.rx);
  return rc == ARBOR_EOF ? 0 : rc;
}

static int body_deadline(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_scope_t s;
  int rc = arbor_scope_enter(cx, &s, &(arbor_scope_opts_t){.move_on_after_ms = 1});
  if (rc != 0)
    return rc;
  arbor_sleep(cx, 3600 * 1000);           /* cut short by the deadline */
  return arbor_scope_exit(cx, &s);
}

static int body_child(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  int rc = arbor_fiber_started(cx, NULL);
  return rc != 0 ? rc : arbor_yield(cx);
}

static int in_thread(void *arg) {
  (void)arg;
  return 7;
}

static int body_parent(arbor_ctx_t *cx, void *arg) {
  arbor_node_t *g = arg;
  arbor_fiber_spec_t spec = {.name = "child", .fn = body_child};
  int rc = arbor_fiber_start(cx, g, &spec, NULL, NULL);
  if (rc != 0)
    return rc;
  rc = arbor_run_in_thread(cx, in_thread, NULL);
  return rc == 7 ? 0 : rc;
}

static void scenario_fibers(run_t *r) {
  arbor_node_t *g = NULL;
  fib.have_channel = 0;
  expect_rc(r,
            arbor_group_new(arbor_root(r->rt), &(arbor_group_opts_t){.name = "fibers"}, &g), 0);
  if (g == NULL)
    return;
  int rc = arbor_channel_new(r->rt, 1, sizeof(int), &fib.tx, &fib.rx);
  expect_rc(r, rc, 0);
  if (rc == 0) {
    /* A side whose fiber was refused is closed here, so the other one ends. */
    int s = arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "sender", .fn = body_sender}, NULL);
    expect_rc(r, s, 0);
    if (s != 0)
      arbor_channel_close(&fib.tx);
    s = arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "receiver", .fn = body_receiver},
                          NULL);
    expect_rc(r, s, 0);
    if (s != 0)
      arbor_channel_close(&fib.rx);
  }
  expect_rc(r,
            arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "parent", .fn = body_parent, .arg = g},
                              NULL),
            0);
  expect_rc(r,
            arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "deadline", .fn = body_deadline},
                              NULL),
            0);
  expect_rc(r, arbor_group_join(g, NULL, NULL), 0);
  wait_for(r, arbor_node_is_finished(g));
  /* Ends a spawn refused above left open: the channel is the caller's. */
  if (rc == 0) {
    arbor_channel_close(&fib.tx);
    arbor_channel_close(&fib.rx);
  }
}

/* ------------------------------------------------------ scenario: supervision */

static int flaky_runs;

static int body_flaky(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  if (++flaky_runs <= 2)
    return arbor_fiber_fail(cx, ARBOR_EFAILED, "flaky run %d", flaky_runs);
  return arbor_sleep(cx, 3600 * 1000);
}

static int body_helper(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600 * 1000);
}

static int body_manager(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  int rc = arbor_service_run_task(cx, &(arbor_fiber_spec_t){.name = "helper", .fn = body_helper},
                                  NULL);
  if (rc != 0)
    return rc;
  return arbor_sleep(cx, 3600 * 1000);
}

/* The supervisor failed, or every child runs, flaky after its two failures. */
static int supervision_settled(arbor_node_t *sup, arbor_node_t *flaky, arbor_node_t *inner) {
  if (arbor_node_is_finished(sup))
    return 1;
  return arbor_node_state(sup) == ARBOR_STATE_STARTED &&
         (flaky == NULL || (flaky_runs >= 3 && arbor_service_is_running(flaky))) &&
         (inner == NULL || arbor_node_state(inner) == ARBOR_STATE_STARTED);
}

static void scenario_supervision(run_t *r) {
  arbor_node_t *sup = NULL, *flaky = NULL, *inner = NULL;
  flaky_runs = 0;
  expect_rc(r,
            arbor_supervisor_new(arbor_root(r->rt),
                                 &(arbor_sup_opts_t){.name = "sup", .intensity = 10,
                                                     .no_backoff = 1},
                                 &sup),
            0);
  if (sup == NULL)
    return;
  expect_rc(r,
            arbor_service_add(sup, &(arbor_service_spec_t){.name = "flaky", .fiber = body_flaky},
                              &flaky),
            0);
  expect_rc(r,
            arbor_service_add(sup, &(arbor_service_spec_t){.name = "manager", .fiber = body_manager},
                              NULL),
            0);
  expect_rc(r,
            arbor_supervisor_new(sup, &(arbor_sup_opts_t){.name = "inner", .no_backoff = 1},
                                 &inner),
            0);
  if (inner != NULL)
    expect_rc(r,
              arbor_service_add(inner,
                                &(arbor_service_spec_t){.name = "leaf", .fiber = body_helper},
                                NULL),
              0);
  wait_for(r, supervision_settled(sup, flaky, inner));
  if (!arbor_node_is_finished(sup)) {
    if (flaky != NULL)
      expect_rc(r, arbor_service_restart(flaky), 0);
    arbor_test_spin(&r->loop, 3);
    expect_rc(r, arbor_node_cancel(sup), 0);
  }
  wait_for(r, arbor_node_is_finished(sup));
}

/* ------------------------------------------------------ scenario: a process service */

static char *const prog_argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};

static void scenario_process(run_t *r) {
  arbor_node_t *sup = NULL, *svc = NULL;
  arbor_test_tmp_open(&r->tmp, "allocfail");
  r->have_tmp = 1;
  char log[sizeof r->tmp.path];
  snprintf(log, sizeof log, "%s", arbor_test_tmp_file(&r->tmp, "svc.log"));
  /* intensity 1: two runs, then the supervisor fails with ARBOR_EINTENSITY. */
  expect_rc(r,
            arbor_supervisor_new(arbor_root(r->rt),
                                 &(arbor_sup_opts_t){.name = "procs", .intensity = 1,
                                                     .no_backoff = 1},
                                 &sup),
            0);
  if (sup == NULL)
    return;
  expect_rc(r,
            arbor_service_add(sup,
                              &(arbor_service_spec_t){.name = "prog", .argv = prog_argv,
                                                      .log_file = log, .log_timestamps = 1},
                              &svc),
            0);
  wait_for(r, arbor_node_is_finished(sup) || svc == NULL);
  if (svc == NULL) {
    expect_rc(r, arbor_node_cancel(sup), 0);
    wait_for(r, arbor_node_is_finished(sup));
  }
}

/* ------------------------------------------------------ scenario: the admin server */

static int body_sleeper(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600 * 1000);
}

static void get(run_t *r, int port, const char *path) {
  char url[128];
  long status = 0;
  char *body = NULL;
  paused = 1;                   /* the client's allocations are not arbor's */
  httpc_url(url, sizeof url, port, path);
  paused = 0;
  /* httpc allocates its call on this thread: only the server's part is counted,
   * between begin and end. */
  paused = 1;
  struct httpc_call *c = httpc_begin(&r->loop, &(httpc_opts_t){.url = url});
  paused = 0;
  assert_non_null(c);
  httpc_wait(c, NULL, NULL);
  paused = 1;
  int rc = httpc_end(c, &status, &body, NULL);
  /* A JSON body that arrived whole must be whole: a response cut by a fault
   * must not look complete. */
  int whole_json = 1;
  if (rc == 0 && status == 200 && strncmp(path, "/api/", 5) == 0) {
    cJSON *j = cJSON_Parse(body);
    whole_json = j != NULL;
    cJSON_Delete(j);
  }
  paused = 0;
  if (rc != 0 || !whole_json) {  /* a transfer cut short: only after a fault */
    if (failed == 0 || !whole_json) {
      print_error("fault at %ld (%ld failed): GET %s: curl %d, status %ld, %s\n", fail_at,
                  failed, path, rc, status, whole_json ? "" : "a 200 with a cut JSON body");
      fail();
    }
    r->refused = 1;
  }
  /* A transfer that went through: 200, or a refusal the server chose (500/503)
   * once something failed. (One that did not may have no status at all: a
   * connection libmicrohttpd closed when it could not take it.) */
  if (rc == 0 && status != 200 && !(failed > 0 && (status == 500 || status == 503))) {
    print_error("fault at %ld (%ld failed): GET %s: %ld\n", fail_at, failed, path, status);
    fail();
  }
  if (status != 200)
    r->refused = 1;
  paused = 1;
  free(body);
  paused = 0;
}

static void scenario_admin(run_t *r) {
  arbor_node_t *g = NULL, *f = NULL;
  arbor_admin_t *admin = NULL;
  expect_rc(r, arbor_group_new(arbor_root(r->rt), &(arbor_group_opts_t){.name = "app"}, &g), 0);
  if (g != NULL)
    expect_rc(r,
              arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "sleeper", .fn = body_sleeper},
                                &f),
              0);
  arbor_test_spin(&r->loop, 3);
  expect_rc(r, arbor_admin_start(r->rt, &(arbor_admin_opts_t){.port = 0}, &admin), 0);
  if (admin != NULL) {
    int port = arbor_admin_port(admin);
    char path[64];
    get(r, port, "/api/v1/tree");
    snprintf(path, sizeof path, "/api/v1/nodes/%ju",
             (uintmax_t)(f != NULL ? arbor_node_id(f) : 1));
    get(r, port, path);
    get(r, port, "/metrics");
    get(r, port, "/api/v1/trace");
  }
  if (g != NULL) {
    if (!arbor_node_is_finished(g))   /* a fiber refused its stack failed it */
      expect_rc(r, arbor_node_cancel(g), 0);
    wait_for(r, arbor_node_is_finished(g));
  }
}

/* ------------------------------------------------------ scenario: events and trace export */

static int start_fail(arbor_node_t *task, void *arg) {
  (void)task;
  (void)arg;
  return ARBOR_EFAILED;
}

static void scenario_trace(run_t *r) {
  arbor_node_t *g = NULL;
  expect_rc(r, arbor_group_new(arbor_root(r->rt), &(arbor_group_opts_t){.name = "traced"}, &g),
            0);
  if (g != NULL) {
    expect_rc(r, arbor_task_spawn(g, &(arbor_task_spec_t){.name = "ok", .start = tick_start},
                                  NULL),
              0);
    expect_rc(r,
              arbor_task_spawn(g, &(arbor_task_spec_t){.name = "bad", .start = start_fail}, NULL),
              0);
    expect_rc(r, arbor_group_join(g, NULL, NULL), 0);
    wait_for(r, arbor_node_is_finished(g));
  }
  paused = 1;
  FILE *out = fopen("/dev/null", "w");
  paused = 0;
  assert_non_null(out);
  expect_rc(r, arbor_trace_write(r->rt, ARBOR_TRACE_CHROME, out), 0);
  expect_rc(r, arbor_trace_write(r->rt, ARBOR_TRACE_OTLP, out), 0);
  paused = 1;
  fclose(out);
  paused = 0;
  arbor_event_t ev[64];
  uint64_t cursor = 1;
  assert_true(arbor_events_read(r->rt, &cursor, ev, 64, NULL) >= 0);
}

/* ------------------------------------------------------ scenario: the SSE stream */

/* Checks the whole events ("\n\n"-ended) of an SSE body: each is
 * "id: N\nevent: T\ndata: JSON", N the one after *last (nothing skipped, so
 * nothing lost unseen), JSON parses. Advances *last. A cut tail is not an event
 * yet (SSE clients drop it too). */
static void check_sse(const char *body, uint64_t *last) {
  const char *p = body, *end;
  while ((end = strstr(p, "\n\n")) != NULL) {
    if (*p != ':') {             /* a comment line (heartbeat) is not an event */
      unsigned long long id;
      int n = 0;
      if (sscanf(p, "id: %llu\nevent: %*[a-z_]\ndata: %n", &id, &n) != 1 || n == 0 ||
          id != *last + 1) {
        print_error("fault at %ld (%ld failed): event after %ju: %.*s\n", fail_at, failed,
                    (uintmax_t)*last, (int)(end - p), p);
        fail();
      }
      int was = paused;
      paused = 1;
      char *data = strndup(p + n, (size_t)(end - p - n));
      cJSON *j = cJSON_Parse(data);
      paused = was;
      if (j == NULL) {
        print_error("fault at %ld (%ld failed): event %llu: data not JSON: %s\n", fail_at,
                    failed, id, data);
        fail();
      }
      paused = 1;
      cJSON_Delete(j);
      free(data);
      paused = was;
      *last = id;
    }
    p = end + 2;
  }
}

/* A client follows /api/v1/events from the start until it has every event the
 * tree recorded. A fault may cut the stream (or refuse the request with 503):
 * the client reconnects with ?after= the last id it got, as a browser's
 * EventSource does with Last-Event-ID, and must get the rest, none skipped. */
static void scenario_sse(run_t *r) {
  arbor_node_t *g = NULL;
  arbor_admin_t *admin = NULL;
  expect_rc(r, arbor_group_new(arbor_root(r->rt), &(arbor_group_opts_t){.name = "streamed"}, &g),
            0);
  if (g != NULL) {
    for (int i = 0; i < 2; i++)
      expect_rc(r, arbor_task_spawn(g, &(arbor_task_spec_t){.name = "ok", .start = tick_start},
                                    NULL),
                0);
    expect_rc(r, arbor_group_join(g, NULL, NULL), 0);
    wait_for(r, arbor_node_is_finished(g));
  }
  expect_rc(r, arbor_admin_start(r->rt, &(arbor_admin_opts_t){.port = 0}, &admin), 0);
  if (admin == NULL)
    return;
  arbor_events_stats_t es;
  arbor_events_stats(r->rt, &es);
  uint64_t last = 0;
  for (int tries = 0; last < es.recorded; tries++) {
    char url[128], query[64];
    long status = 0;
    char *body = NULL;
    if (tries == 3) {            /* one fault cuts one stream at most */
      print_error("fault at %ld (%ld failed): events after %ju never came\n", fail_at, failed,
                  (uintmax_t)last);
      fail();
    }
    snprintf(query, sizeof query, "/api/v1/events?after=%ju", (uintmax_t)last);
    paused = 1;
    httpc_url(url, sizeof url, arbor_admin_port(admin), query);
    struct httpc_call *c = httpc_begin(
        &r->loop, &(httpc_opts_t){.url = url, .max_events = (size_t)(es.recorded - last)});
    paused = 0;
    assert_non_null(c);
    httpc_wait(c, NULL, NULL);
    paused = 1;
    int rc = httpc_end(c, &status, &body, NULL);
    paused = 0;
    if (status == 200)
      check_sse(body != NULL ? body : "", &last);
    /* Anything short of every event, only after a fault: a 500/503, a cut, or
     * a connection closed before any answer. */
    if (last < es.recorded || rc != 0 || status != 200) {
      if (failed == 0 ||
          !(status == 200 || status == 500 || status == 503 || (rc != 0 && status == 0))) {
        print_error("fault at %ld (%ld failed): events: curl %d, status %ld, %ju of %ju\n",
                    fail_at, failed, rc, status, (uintmax_t)last, (uintmax_t)es.recorded);
        fail();
      }
      r->refused = 1;
    }
    paused = 1;
    free(body);
    paused = 0;
  }
}

/* ------------------------------------------------------ scenario: OTLP push */

/* The collector: a libmicrohttpd server on its own thread (its allocations are
 * not counted), answering every POST 200 and counting the spans it got. */
static struct MHD_Daemon *collector;
static int collector_port;
static atomic_int collector_spans;

static enum MHD_Result collector_answer(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version,
                                        const char *data, size_t *data_size, void **con_cls) {
  (void)cls, (void)url, (void)method, (void)version;
  if (*con_cls == NULL) {        /* headers only */
    *con_cls = c;
    return MHD_YES;
  }
  if (*data_size > 0) {          /* a piece of the body: count its span ids */
    for (const char *p = data; (p = memmem(p, (size_t)(data + *data_size - p), "\"spanId\"", 8));
         p += 8)
      atomic_fetch_add(&collector_spans, 1);
    *data_size = 0;
    return MHD_YES;
  }
  static const char ok[] = "{}";
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void collector_start(void) {
  collector = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                               collector_answer, NULL, MHD_OPTION_SOCK_ADDR,
                               (struct sockaddr *)&(struct sockaddr_in){
                                   .sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
                               MHD_OPTION_END);
  assert_non_null(collector);
  collector_port = MHD_get_daemon_info(collector, MHD_DAEMON_INFO_BIND_PORT)->port;
}

/* Every span the exporter took is settled: exported or dropped, none queued. */
static int otlp_settled(arbor_otlp_t *o, uint64_t spans) {
  arbor_otlp_stats_t st;
  arbor_otlp_stats(o, &st);
  return st.queue_len == 0 && st.spans_exported + st.spans_dropped >= spans;
}

/* Nodes finish while the exporter pushes them to the collector, 1 ms apart at
 * most; a fault in a request makes it fail and be retried after a 1 ms
 * backoff. Every span the exporter took must be exported or counted dropped,
 * and the collector must have got at least the spans exported (a retry after
 * an answer lost to the fault may send some twice). */
static void scenario_otlp(run_t *r) {
  arbor_node_t *g = NULL;
  arbor_otlp_t *o = NULL;
  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", collector_port);
  atomic_store(&collector_spans, 0);
  expect_rc(r,
            arbor_otlp_start(r->rt,
                             &(arbor_otlp_opts_t){.endpoint = endpoint, .flush_ms = 1,
                                                  .backoff_ms = 1, .backoff_max_ms = 1},
                             &o),
            0);
  if (o == NULL)
    return;
  expect_rc(r, arbor_group_new(arbor_root(r->rt), &(arbor_group_opts_t){.name = "pushed"}, &g),
            0);
  uint64_t nodes = 0;            /* that finish now: a span each */
  if (g != NULL) {
    nodes++;
    for (int i = 0; i < 3; i++) {
      arbor_node_t *t = NULL;
      expect_rc(r, arbor_task_spawn(g, &(arbor_task_spec_t){.name = "ok", .start = tick_start},
                                    &t),
                0);
      nodes += t != NULL;
    }
    expect_rc(r, arbor_group_join(g, NULL, NULL), 0);
    wait_for(r, arbor_node_is_finished(g));
  }
  arbor_otlp_stats_t st;
  wait_for(r, otlp_settled(o, nodes));
  arbor_otlp_stats(o, &st);
  if (st.spans_exported > (uint64_t)atomic_load(&collector_spans)) {
    print_error("fault at %ld (%ld failed): %ju spans exported, the collector got %d\n",
                fail_at, failed, (uintmax_t)st.spans_exported, atomic_load(&collector_spans));
    fail();
  }
  if (st.requests_failed > 0 || st.spans_dropped > 0)
    r->counted = 1;
  if (failed == 0 && (st.requests_failed > 0 || st.spans_dropped > 0)) {
    print_error("no fault: %ju requests failed, %ju spans dropped\n",
                (uintmax_t)st.requests_failed, (uintmax_t)st.spans_dropped);
    fail();
  }
}

/* ------------------------------------------------------ scenario: TCP streams */

static arbor_listener_t *stream_listener;

static int body_server(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_stream_t *s;
  char buf[16];
  int rc = arbor_tcp_accept(cx, stream_listener, &s);
  if (rc != 0)
    return rc;
  int n = arbor_stream_read(cx, s, buf, sizeof buf);
  rc = n > 0 ? arbor_stream_write(cx, s, buf, (size_t)n) : n;
  arbor_stream_close(s);
  return rc;
}

static int body_client(arbor_ctx_t *cx, void *arg) {
  arbor_stream_t *s;
  char buf[16];
  int rc = arbor_tcp_connect(cx, "127.0.0.1", *(int *)arg, &s);
  if (rc != 0)
    return rc;
  rc = arbor_stream_write(cx, s, "ping", 4);
  if (rc == 0) {
    int n = arbor_stream_read(cx, s, buf, sizeof buf);
    rc = n == 4 ? 0 : n < 0 ? n : ARBOR_EFAILED;
  }
  arbor_stream_close(s);
  return rc;
}

static void scenario_streams(run_t *r) {
  arbor_node_t *g = NULL;
  static int port;
  stream_listener = NULL;
  int rc = arbor_tcp_listen(r->rt, "127.0.0.1", 0, 0, &stream_listener);
  expect_rc(r, rc, 0);
  if (rc != 0)
    return;
  port = arbor_listener_port(stream_listener);
  expect_rc(r, arbor_group_new(arbor_root(r->rt), &(arbor_group_opts_t){.name = "tcp"}, &g), 0);
  if (g != NULL) {
    int srv = arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "server", .fn = body_server},
                                NULL);
    expect_rc(r, srv, 0);
    if (srv != 0) {              /* no server: the client's connect is refused */
      arbor_listener_close(stream_listener);
      stream_listener = NULL;
    }
    int cli = arbor_fiber_spawn(
        g, &(arbor_fiber_spec_t){.name = "client", .fn = body_client, .arg = &port}, NULL);
    expect_rc(r, cli, 0);
    if (cli != 0)                /* no client: nobody will connect, stop the server */
      expect_rc(r, arbor_node_cancel(g), 0);
    expect_rc(r, arbor_group_join(g, NULL, NULL), 0);
    /* A side that failed cancels the other (rule 2): the group always ends. */
    wait_for(r, arbor_node_is_finished(g));
  }
  if (stream_listener != NULL)
    arbor_listener_close(stream_listener);
}

/* ------------------------------------------------------ scenario: probes and updates */

static int probe_port;
static const char *probe_host;  /* NULL: 127.0.0.1; a name: resolved by libuv */

static void scenario_probes(run_t *r) {
  arbor_node_t *sup = NULL, *svc = NULL;
  arbor_health_probe_t live = {.kind = ARBOR_PROBE_TCP, .host = probe_host, .port = probe_port,
                               .interval_ms = 1, .failure_threshold = 1000};
  arbor_health_probe_t ready = {.kind = ARBOR_PROBE_TCP, .host = probe_host, .port = probe_port,
                                .interval_ms = 1};
  expect_rc(r,
            arbor_supervisor_new(arbor_root(r->rt),
                                 &(arbor_sup_opts_t){.name = "probed", .no_backoff = 1,
                                                     .intensity = 10},
                                 &sup),
            0);
  if (sup == NULL)
    return;
  expect_rc(r,
            arbor_service_add(sup,
                              &(arbor_service_spec_t){.name = "svc", .fiber = body_helper,
                                                      .liveness = &live, .readiness = &ready},
                              &svc),
            0);
  if (svc != NULL) {
    wait_for(r, arbor_service_is_running(svc) || arbor_node_is_finished(sup));
    /* A changed spec: the next run has no readiness probe. */
    if (!arbor_node_is_finished(sup)) {
      int rc = arbor_service_update(
          svc, &(arbor_service_spec_t){.name = "svc", .fiber = body_helper, .liveness = &live});
      if (!(rc == ARBOR_ENOMEM && failed > 0) && rc != 0 && rc != ARBOR_ESTATE)
        assert_code(rc, 0);
      if (rc == ARBOR_ENOMEM)
        r->refused = 1;
      arbor_probe_info_t pi;
      uint64_t before = arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS, &pi) == 0
                            ? pi.successes + pi.failures
                            : 0;
      wait_for(r, arbor_node_is_finished(sup) ||
                      (arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS, &pi) == 0 &&
                       pi.successes + pi.failures > before + 2));
    }
  }
  if (!arbor_node_is_finished(sup))
    expect_rc(r, arbor_node_cancel(sup), 0);
  wait_for(r, arbor_node_is_finished(sup));
}

/* ------------------------------------------------------ regressions */

static int body_sleeper(arbor_ctx_t *cx, void *arg);
static int nap_go;

static int body_nap(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  while (!nap_go) {
    int rc = arbor_yield(cx);
    if (rc != 0)
      return rc;
  }
  return arbor_sleep(cx, 1);
}

static int count_sleeping(arbor_node_t *g) {
  int n = 0;
  arbor_fiber_info_t fi;
  for (arbor_node_t *c = arbor_node_first_child(g); c != NULL; c = arbor_node_next_sibling(c))
    n += arbor_node_fiber_info(c, &fi) == 0 && fi.wait_what != NULL &&
         strcmp(fi.wait_what, "sleep") == 0;
  return n;
}

/* A fiber's sleep and deadlines arm the runtime's timer heap, which grew when
 * full: out of memory then, the timer was not armed and the fiber slept for
 * good (its group never finished). The slot is now reserved with the node: with
 * 64 fibers asleep (the heap's first size) and no memory left, one more fiber's
 * sleep still ends. */
static void alloc_fail_fiber_sleep_needs_no_memory(void **state) {
  run_t r;
  arbor_node_t *nap = NULL;
  memset(&r, 0, sizeof r);
  nap_go = 0;
  arbor_test_open(&r.loop, &r.rt, &(arbor_runtime_opts_t){.no_signals = 1});
  arbor_node_t *g = arbor_test_group(arbor_root(r.rt), "sleepers");
  assert_code(arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "nap", .fn = body_nap}, &nap),
              0);
  for (int i = 0; i < 64; i++)
    assert_code(arbor_fiber_spawn(g, &(arbor_fiber_spec_t){.name = "sleeper", .fn = body_sleeper},
                                  NULL),
                0);
  wait_for(&r, count_sleeping(g) == 64);
  arm_all();
  nap_go = 1;
  wait_for(&r, arbor_node_is_finished(nap));
  disarm();
  assert_outcome(nap, OK);
  assert_code(arbor_node_cancel(g), 0);
  wait_for(&r, arbor_node_is_finished(g));
  arbor_test_close(r.rt, &r.loop);
}

/* A request whose context cannot be allocated is answered 503 out_of_memory (it
 * was a connection closed without a word); once memory is back the server
 * answers as before. */
static void alloc_fail_admin_request_without_memory_gets_503(void **state) {
  run_t r;
  arbor_admin_t *admin;
  char url[128];
  long status = 0;
  char *body = NULL;
  memset(&r, 0, sizeof r);
  signal(SIGPIPE, SIG_IGN);
  arbor_test_open(&r.loop, &r.rt, &(arbor_runtime_opts_t){.no_signals = 1});
  assert_code(arbor_admin_start(r.rt, &(arbor_admin_opts_t){.port = 0}, &admin), 0);
  httpc_url(url, sizeof url, arbor_admin_port(admin), "/api/v1/tree");
  struct httpc_call *c = httpc_begin(&r.loop, &(httpc_opts_t){.url = url});
  assert_non_null(c);
  arm_all();
  httpc_wait(c, NULL, NULL);
  disarm();
  assert_int_eq(httpc_end(c, &status, &body, NULL), 0);
  assert_int_eq(status, 503);
  assert_non_null(strstr(body, "out_of_memory"));
  free(body);
  assert_int_eq(httpc_request(&r.loop, "GET", url, NULL, NULL, &status, &body, NULL), 0);
  assert_int_eq(status, 200);
  free(body);
  arbor_test_close(r.rt, &r.loop);
}

/* A cancelled fiber that returns ARBOR_ECANCELED was CANCELLED, yet its end made
 * an error first (which the lifecycle then drops): with no memory left, the
 * runtime's out-of-memory error took its place and the cancellation became a
 * failure (ENOMEM "out of memory while recording a failure"). */
static void alloc_fail_cancelled_fiber_without_memory_is_cancelled(void **state) {
  run_t r;
  arbor_node_t *f;
  memset(&r, 0, sizeof r);
  arbor_test_open(&r.loop, &r.rt, &(arbor_runtime_opts_t){.no_signals = 1});
  assert_code(arbor_fiber_spawn(arbor_root(r.rt),
                                &(arbor_fiber_spec_t){.name = "sleeper", .fn = body_helper}, &f),
              0);
  wait_for(&r, count_sleeping(arbor_root(r.rt)) == 1);
  arm_all();
  assert_code(arbor_node_cancel(f), 0);
  wait_for(&r, arbor_node_is_finished(f));
  disarm();
  assert_outcome(f, CANCELLED);
  arbor_test_close(r.rt, &r.loop);
}

/* A restart asked for (arbor_service_restart) whose new run cannot be spawned
 * counted as a failure of the service, but kept no error for it: its failure
 * history did not say why. Now the run fails with the runtime's out-of-memory
 * error in the history, as a run the supervisor starts does. */
static void alloc_fail_restart_without_memory_keeps_enomem(void **state) {
  run_t r;
  arbor_node_t *sup, *svc;
  memset(&r, 0, sizeof r);
  arbor_test_open(&r.loop, &r.rt, &(arbor_runtime_opts_t){.no_signals = 1});
  assert_code(arbor_supervisor_new(arbor_root(r.rt),
                                   &(arbor_sup_opts_t){.name = "sup", .backoff_ms = 3600 * 1000},
                                   &sup),
              0);
  assert_code(arbor_service_add(sup, &(arbor_service_spec_t){.name = "svc", .fiber = body_helper},
                                &svc),
              0);
  wait_for(&r, arbor_test_service_parked(svc));
  assert_code(arbor_service_restart(svc), 0);
  arm_all();
  arbor_service_info_t si;
  wait_for(&r, arbor_service_info(svc, &si) == 0 && si.history > 0);
  disarm();
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(svc, 0, &f), 0);
  assert_true(chain_has(f.error, ARBOR_ENOMEM, 0));
  assert_code(arbor_node_cancel(sup), 0);
  wait_for(&r, arbor_node_is_finished(sup));
  arbor_test_close(r.rt, &r.loop);
}

/* ------------------------------------------------------ the tests */

static void alloc_fail_tasks_refused_or_failed_never_crash(void **state) {
  run_scenario("tasks", scenario_tasks, SRC_ARBOR);
}
static void alloc_fail_fibers_refused_or_failed_never_crash(void **state) {
  run_scenario("fibers", scenario_fibers, SRC_ARBOR);
}
static void alloc_fail_supervision_refused_or_failed_never_crash(void **state) {
  run_scenario("supervision", scenario_supervision, SRC_ARBOR);
}
static void alloc_fail_process_service_refused_or_failed_never_crash(void **state) {
  run_scenario("process service", scenario_process, SRC_ARBOR);
}
static void alloc_fail_admin_server_answers_or_refuses_never_crash(void **state) {
  signal(SIGPIPE, SIG_IGN);
  run_scenario("admin server", scenario_admin, SRC_ARBOR);
}
static void alloc_fail_tcp_streams_refused_or_failed_never_crash(void **state) {
  signal(SIGPIPE, SIG_IGN);
  run_scenario("tcp streams", scenario_streams, SRC_ARBOR);
}
/* What the probes connect to: a socket of the test's, never accepted from (the
 * kernel completes connections from the backlog). Returns it. */
static int probe_listen(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_true(ls >= 0);
  assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_eq(listen(ls, 4096), 0);
  assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
  probe_port = ntohs(a.sin_port);
  return ls;
}

static void alloc_fail_probes_and_update_refused_or_failed_never_crash(void **state) {
  int ls = probe_listen();
  run_scenario("probes and update", scenario_probes, SRC_ARBOR);
  close(ls);
}
static void alloc_fail_trace_export_refused_never_crash(void **state) {
  run_scenario("events and trace", scenario_trace, SRC_ARBOR);
}

/* The libraries' allocations, failed one at a time (their hooks, above). */

/* libuv allocates almost nothing once its loop is open (the scenarios below
 * that it does not allocate in at all say "0 allocations"): a probe's host
 * name resolved (uv_getaddrinfo copies it) is where it does. */
static void alloc_fail_libuv_refused_or_failed_never_crash(void **state) {
  signal(SIGPIPE, SIG_IGN);
  int ls = probe_listen();
  run_scenario("libuv: callback tasks", scenario_tasks, SRC_UV);
  run_scenario("libuv: fibers", scenario_fibers, SRC_UV);
  run_scenario("libuv: supervision", scenario_supervision, SRC_UV);
  run_scenario("libuv: process service", scenario_process, SRC_UV);
  run_scenario("libuv: admin server", scenario_admin, SRC_UV);
  run_scenario("libuv: events and trace", scenario_trace, SRC_UV);
  run_scenario("libuv: tcp streams", scenario_streams, SRC_UV);
  run_scenario("libuv: probes", scenario_probes, SRC_UV);
  /* A probe's host name is resolved at each attempt: uv_getaddrinfo copies it,
   * and an attempt whose copy failed leaked its record (5.5 KiB each, one per
   * interval_ms; valgrind's leak check is what sees it). */
  probe_host = "localhost";
  run_scenario("libuv: probes by host name", scenario_probes, SRC_UV);
  run_scenario("probes by host name", scenario_probes, SRC_ARBOR);
  probe_host = NULL;
  close(ls);
}

/* cJSON builds the admin server's node views and error bodies: a fault is a
 * 500/503 (out_of_memory), never a cut or invalid JSON body. */
static void alloc_fail_cjson_admin_answers_or_refuses_never_crash(void **state) {
  signal(SIGPIPE, SIG_IGN);
  run_scenario("cJSON: admin server", scenario_admin, SRC_CJSON);
}

static void alloc_fail_sse_stream_resumes_none_skipped_never_crash(void **state) {
  signal(SIGPIPE, SIG_IGN);
  run_scenario("SSE stream", scenario_sse, SRC_ARBOR);
  run_scenario("cJSON: SSE stream", scenario_sse, SRC_CJSON);
  run_scenario("libuv: SSE stream", scenario_sse, SRC_UV);
}

/* libmicrohttpd's own allocations (its connections, responses and their
 * headers): the request is answered, refused or its connection closed, never
 * a crash or a cut answer that looks whole. Not in the ASan build (above). */
static void alloc_fail_libmicrohttpd_admin_answers_or_refuses_never_crash(void **state) {
  signal(SIGPIPE, SIG_IGN);
#if HAVE_MHD_FAULTS
  run_scenario("libmicrohttpd: admin server", scenario_admin, SRC_MHD);
  run_scenario("libmicrohttpd: SSE stream", scenario_sse, SRC_MHD);
#else
  printf("libmicrohttpd: not injected in this build (ASan owns malloc)\n");
#endif
}

/* Found here: a libcurl call that failed for memory left the request in flight
 * for good (nothing watched its socket, no timeout fired), and reusing
 * libcurl's multi handle after it divided by zero inside libcurl 7.88
 * (otlp_push.c: socket_action). */
static void alloc_fail_otlp_push_libcurl_fault_retried_never_stuck_or_crash(void **state) {
  signal(SIGPIPE, SIG_IGN);
  collector_start();
  run_scenario("libcurl: OTLP push", scenario_otlp, SRC_CURL);
  run_scenario("OTLP push", scenario_otlp, SRC_ARBOR);
  run_scenario("libuv: OTLP push", scenario_otlp, SRC_UV);
  MHD_stop_daemon(collector);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(alloc_fail_tasks_refused_or_failed_never_crash),
    cmocka_unit_test(alloc_fail_fibers_refused_or_failed_never_crash),
    cmocka_unit_test(alloc_fail_supervision_refused_or_failed_never_crash),
    cmocka_unit_test(alloc_fail_process_service_refused_or_failed_never_crash),
    cmocka_unit_test(alloc_fail_admin_server_answers_or_refuses_never_crash),
    cmocka_unit_test(alloc_fail_trace_export_refused_never_crash),
    cmocka_unit_test(alloc_fail_tcp_streams_refused_or_failed_never_crash),
    cmocka_unit_test(alloc_fail_probes_and_update_refused_or_failed_never_crash),
    cmocka_unit_test(alloc_fail_libuv_refused_or_failed_never_crash),
    cmocka_unit_test(alloc_fail_cjson_admin_answers_or_refuses_never_crash),
    cmocka_unit_test(alloc_fail_sse_stream_resumes_none_skipped_never_crash),
    cmocka_unit_test(alloc_fail_libmicrohttpd_admin_answers_or_refuses_never_crash),
    cmocka_unit_test(alloc_fail_otlp_push_libcurl_fault_retried_never_stuck_or_crash),
    cmocka_unit_test(alloc_fail_fiber_sleep_needs_no_memory),
    cmocka_unit_test(alloc_fail_admin_request_without_memory_gets_503),
    cmocka_unit_test(alloc_fail_cancelled_fiber_without_memory_is_cancelled),
    cmocka_unit_test(alloc_fail_restart_without_memory_keeps_enomem),
};

ARBOR_TEST_MAIN(tests)
