/* bench/bench_fibers.c - the fiber benchmarks of the fiber issue.
 *
 *   switch N [F]  F fibers (default 1) each call arbor_yield N/F times: fiber ->
 *                 loop -> fiber. Timed inside the fibers, from the first yield of
 *                 the first to the last yield of the last; ns per yield. With one
 *                 fiber every yield is a whole loop iteration; with many, one
 *                 iteration resumes them all.
 *   spawn N       A with fibers: N fibers in one group, each yields once and
 *                 returns; timed from before the first spawn until uv_run returns,
 *                 as bench_tasks times A. Two rounds in one runtime whose stack
 *                 pool holds N: "cold" (empty pool: every stack is mmap'd) then
 *                 "warm" (every stack comes from the pool the first round filled).
 *   cancel N      B with fibers: N fibers each in arbor_sleep(1 hour); once all
 *                 sleep, cancel the group; timed from the cancel until uv_run
 *                 returns (every fiber woken with ARBOR_ECANCELED, returned, its
 *                 stack pooled or unmapped). Default stack pool (64). Also prints
 *                 the resident memory per sleeping fiber (RSS growth from before
 *                 the first spawn to when all sleep, /proc/self/statm). With
 *                 ARBOR_BENCH_POOL=K in the environment the pool holds K stacks
 *                 (printed as pool=K): K >= N shows B without the munmap per stack.
 *
 * Prints the harness's line, `RESULT peer=arbor-fiber bench=... n=...
 * ns_per_task=...` (ns_per_switch for switch; pool=cold|warm for spawn).
 *
 * Guarded stacks cost two VMAs each and vm.max_map_count (65,530 by default) caps
 * them at about 32,700 live fibers. When fibers fail for lack of a stack, no
 * RESULT is printed; a `FIBERS-FAILED ...` line says how many and what
 * max_map_count the run needs, and the exit status is 3.
 */
#include <arbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t t_done;
static size_t started, returned, ok_bodies;
static size_t stack_failures, other_failures;

static uint64_t t_first = 0, t_last = 0;
static size_t yields_each;

static long page_kb(void) { return sysconf(_SC_PAGESIZE) / 1024; }

static long rss_kb(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return 0;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2)
    resident = 0;
  fclose(f);
  return resident * page_kb();
}

static long max_map_count(void) {
  long v = -1;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  if (f != NULL) {
    if (fscanf(f, "%ld", &v) != 1)
      v = -1;
    fclose(f);
  }
  return v;
}

/* ---------------------------------------------------------------- bodies */

static int body_switch(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  if (t_first == 0)
    t_first = uv_hrtime();
  for (size_t i = 0; i < yields_each; i++)
    if (arbor_yield(cx) < 0)
      return -1;
  t_last = uv_hrtime();
  ok_bodies++;
  return 0;
}

static int body_spawn(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  started++;
  int rc = arbor_yield(cx);
  if (rc == 0)
    ok_bodies++;
  returned++;
  return rc;
}

static int body_sleep(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  started++;
  int rc = arbor_sleep(cx, 3600u * 1000u);
  returned++;
  return rc == ARBOR_ECANCELED ? rc : -1;   /* woken any other way: an error */
}

/* ------------------------------------------------------------------ group */

/* Counts the children that failed, and those that failed for want of a stack. */
static void on_group_finished(arbor_node_t *group, void *arg) {
  (void)arg;
  t_done = uv_hrtime();
  const arbor_error_t *err = arbor_node_error(group);
  if (err == NULL)
    return;
  size_t n = arbor_error_child_count(err);
  for (size_t i = 0; i < n; i++) {
    if (arbor_error_code(arbor_error_child(err, i)) == ARBOR_ENOMEM)
      stack_failures++;
    else
      other_failures++;
  }
  if (n == 0)
    other_failures++;
}

static arbor_node_t *spawn_group(arbor_runtime_t *rt, size_t n, arbor_fiber_fn fn) {
  arbor_node_t *group;
  t_done = 0;
  started = returned = ok_bodies = stack_failures = other_failures = 0;
  if (arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = "bench"}, &group) < 0)
    exit(1);
  arbor_fiber_spec_t spec = {.name = "f", .fn = fn};
  for (size_t i = 0; i < n; i++) {
    int rc = arbor_fiber_spawn(group, &spec, NULL);
    if (rc < 0) {
      fprintf(stderr, "spawn: %s\n", arbor_strerror(rc));
      exit(1);
    }
  }
  arbor_group_join(group, on_group_finished, NULL);
  return group;
}

/* 1 (and a FIBERS-FAILED line) when the round did not run every fiber. */
/* extra: "" or a field for the line (" pool=cold"). */
static int round_failed(const char *bench, const char *extra, size_t n, size_t want_ok) {
  if (t_done != 0 && stack_failures == 0 && other_failures == 0 && ok_bodies == want_ok)
    return 0;
  long mmc = max_map_count();
  printf("FIBERS-FAILED peer=arbor-fiber bench=%s%s n=%zu ran=%zu no_stack=%zu "
         "other_failed=%zu bodies_ok=%zu max_map_count=%ld needs_max_map_count>=%zu\n",
         bench, extra, n, started, stack_failures,
         other_failures, ok_bodies, mmc, 2 * n + 1000);
  if (stack_failures > 0)
    fprintf(stderr,
            "bench_fibers: only %zu of %zu fibers got a stack; the next failed with ENOMEM "
            "(each guarded stack is 2 VMAs and vm.max_map_count is %ld), and its group "
            "cancelled the rest. `sysctl -w vm.max_map_count=%zu` lets %zu fibers live.\n",
            started, n, mmc, 2 * n + 1000, n);
  return 1;
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s switch N [FIBERS] | spawn N | cancel N\n", argv[0]);
    return 2;
  }
  size_t n = strtoull(argv[2], NULL, 10);
  if (n == 0)
    return 2;
  uv_loop_t *loop = uv_default_loop();
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {.no_signals = 1};
  int failed = 0;

  if (strcmp(argv[1], "switch") == 0) {
    size_t fibers = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    if (fibers == 0 || fibers > n)
      return 2;
    yields_each = n / fibers;
    arbor_runtime_new(&rt, loop, &opts);
    spawn_group(rt, fibers, body_switch);
    uv_run(loop, UV_RUN_DEFAULT);
    if (round_failed("switch", "", fibers, fibers)) {
      failed = 1;
    } else {
      size_t total = yields_each * fibers;
      printf("RESULT peer=arbor-fiber bench=switch n=%zu fibers=%zu wall_ns=%llu "
             "ns_per_switch=%.2f\n",
             total, fibers, (unsigned long long)(t_last - t_first),
             (double)(t_last - t_first) / (double)total);
    }
  } else if (strcmp(argv[1], "spawn") == 0) {
    opts.fiber_stack_pool = n;   /* the warm round finds every stack pooled */
    /* ARBOR_BENCH_OBSERVE=off: no events recorded (issue 7's overhead rows). */
    const char *obs = getenv("ARBOR_BENCH_OBSERVE");
    opts.no_events = obs != NULL && strcmp(obs, "off") == 0;
    arbor_runtime_new(&rt, loop, &opts);
    static const char *rounds[] = {"cold", "warm"};
    static const char *round_fields[] = {" pool=cold", " pool=warm"};
    for (int r = 0; r < 2 && !failed; r++) {
      uint64_t t0 = uv_hrtime();
      spawn_group(rt, n, body_spawn);
      uv_run(loop, UV_RUN_DEFAULT);
      uint64_t dt = uv_hrtime() - t0;
      if (round_failed("spawn", round_fields[r], n, n)) {
        failed = 1;
        break;
      }
      printf("RESULT peer=arbor-fiber%s bench=spawn pool=%s n=%zu wall_ns=%llu ns_per_task=%.1f\n",
             opts.no_events ? "/off" : "", rounds[r], n, (unsigned long long)dt, (double)dt / (double)n);
      fflush(stdout);
    }
  } else if (strcmp(argv[1], "cancel") == 0) {
    const char *pool = getenv("ARBOR_BENCH_POOL");
    char pool_field[40] = "";
    if (pool != NULL && *pool != '\0') {
      opts.fiber_stack_pool = strtoull(pool, NULL, 10);
      snprintf(pool_field, sizeof pool_field, " pool=%zu", opts.fiber_stack_pool);
    }
    arbor_runtime_new(&rt, loop, &opts);
    long rss0 = rss_kb();
    uint64_t t0 = uv_hrtime();
    arbor_node_t *group = spawn_group(rt, n, body_sleep);
    while (started < n && t_done == 0)
      uv_run(loop, UV_RUN_NOWAIT);
    uint64_t t1 = uv_hrtime();
    long rss1 = rss_kb();
    arbor_node_cancel(group);
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t t2 = uv_hrtime();
    /* Every body must have been woken by the cancel: ok_bodies counts none here. */
    ok_bodies = returned;
    if (round_failed("cancel", pool_field, n, n)) {
      failed = 1;
    } else {
      printf("RESULT peer=arbor-fiber bench=cancel%s n=%zu start_ns=%llu cancel_ns=%llu "
             "ns_per_task=%.1f kb_per_fiber=%.2f\n",
             pool_field, n, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
             (double)(t2 - t1) / (double)n, (double)(rss1 - rss0) / (double)n);
    }
  } else {
    fprintf(stderr, "bad mode %s\n", argv[1]);
    return 2;
  }
  arbor_events_stats_t st;
  arbor_events_stats(rt, &st);
  fprintf(stderr, "events recorded=%llu dropped=%llu\n", (unsigned long long)st.recorded,
          (unsigned long long)st.dropped);
  arbor_runtime_close(rt, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0)
    return 1;
  return failed ? 3 : 0;
}
