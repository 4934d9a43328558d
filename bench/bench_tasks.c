/* bench/bench_tasks.c - benchmarks A and B of ../shared/peers, for arbor.
 *
 *   spawn N   A: spawn N callback tasks into one group; each arms a zero timer and
 *               calls arbor_task_done when it fires. Timed from before the first
 *               spawn until uv_run returns: the group is FINISHED and every node
 *               beyond the retention bound freed, as the floor times until its
 *               last timer is freed.
 *   cancel N  B: N tasks each waiting on a 1-hour timer; once all are STARTED,
 *               cancel the group. Timed from the cancel call until uv_run returns
 *               (every timer gone, every node FINISHED, evicted nodes freed).
 *
 * The timer is the runtime's own (arbor_task_after) by default, or, with
 * ARBOR_BENCH_TIMER=uv in the environment, a uv_timer_t each task owns (the peer
 * name is then arbor-uv): the same work through the libuv-handle path.
 *
 * Prints the harness's line, `RESULT peer=arbor bench=... n=... ns_per_task=...`.
 * Event recording stays on (it cannot be turned off). Not a test: bench/run.sh runs
 * it beside the libuv floor and reports medians.
 */
#include <arbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t t_done;
static size_t started;

static int use_uv;

static void on_timer(uv_timer_t *t) { arbor_task_done(t->data); }
static void on_after(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_task_done(task);
}

static int task_start(arbor_node_t *task, void *arg) {
  uint64_t timeout = *(uint64_t *)arg;
  if (!use_uv) {
    started++;
    return arbor_task_after(task, timeout, on_after);
  }
  uv_timer_t *t = arbor_task_data(task);
  uv_timer_init(arbor_runtime_loop(arbor_node_runtime(task)), t);
  t->data = task;
  arbor_task_own(task, (uv_handle_t *)t);
  started++;
  return uv_timer_start(t, on_timer, timeout, 0);
}

static void on_group_finished(arbor_node_t *group, void *arg) {
  (void)group;
  (void)arg;
  t_done = uv_hrtime();
}

static void spawn_all(arbor_node_t *group, size_t n, uint64_t *timeout) {
  arbor_task_spec_t spec = {.name = "t", .start = task_start, .arg = timeout,
                            .data_size = use_uv ? sizeof(uv_timer_t) : 0};
  for (size_t i = 0; i < n; i++) {
    int rc = arbor_task_spawn(group, &spec, NULL);
    if (rc < 0) {
      fprintf(stderr, "spawn: %s\n", arbor_strerror(rc));
      exit(1);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s spawn|cancel N\n", argv[0]);
    return 2;
  }
  size_t n = strtoull(argv[2], NULL, 10);
  const char *mode = getenv("ARBOR_BENCH_TIMER");
  use_uv = mode != NULL && strcmp(mode, "uv") == 0;
  const char *peer = use_uv ? "arbor-uv" : "arbor";
  uv_loop_t *loop = uv_default_loop();
  arbor_runtime_t *rt;
  arbor_node_t *group;
  arbor_runtime_new(&rt, loop, &(arbor_runtime_opts_t){.no_signals = 1});

  if (strcmp(argv[1], "spawn") == 0) {
    uint64_t timeout = 0;
    uint64_t t0 = uv_hrtime();
    arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = "bench"}, &group);
    spawn_all(group, n, &timeout);
    arbor_group_join(group, on_group_finished, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t dt = uv_hrtime() - t0;
    if (t_done == 0) {
      fprintf(stderr, "the group did not finish\n");
      return 1;
    }
    printf("RESULT peer=%s bench=spawn n=%zu wall_ns=%llu ns_per_task=%.1f\n", peer, n,
           (unsigned long long)dt, (double)dt / (double)n);
  } else if (strcmp(argv[1], "cancel") == 0) {
    uint64_t timeout = 3600u * 1000u;
    uint64_t t0 = uv_hrtime();
    arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = "bench"}, &group);
    spawn_all(group, n, &timeout);
    arbor_group_join(group, on_group_finished, NULL);
    while (started < n)
      uv_run(loop, UV_RUN_NOWAIT);
    uint64_t t1 = uv_hrtime();
    arbor_node_cancel(group);
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t t2 = uv_hrtime();
    if (t_done == 0) {
      fprintf(stderr, "the group did not finish\n");
      return 1;
    }
    printf("RESULT peer=%s bench=cancel n=%zu start_ns=%llu cancel_ns=%llu ns_per_task=%.1f\n",
           peer, n, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
           (double)(t2 - t1) / (double)n);
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
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
