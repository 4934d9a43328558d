/* bench/bench_web_tree.c - the server of the dashboard's benchmarks (issue 8;
 * bench/web_render.mjs drives it and the browser): a big tree and an event
 * generator behind the admin API, nothing else.
 *
 *   bench_web_tree NODES [GROUPS] [PORT]
 *
 * The tree has NODES nodes in all: the root, GROUPS groups under it (default
 * 100, named g000...), the generator's group "gen" and NODES - 2 - GROUPS
 * callback tasks ("t") spread evenly over the GROUPS groups, each waiting on a
 * one-hour arbor_task_after timer (as bench_admin's "big" mode). The admin API serves it on 127.0.0.1:PORT (0, the
 * default: any free port); once every task waits, stdout gets the daemon's
 * line, "arbor: dashboard at http://127.0.0.1:PORT/".
 *
 * Then commands on stdin, one a line, each answered by one line on stdout:
 *   rate R   from now on, the generator spawns tiny tasks under "gen" (each ends
 *            in its start) on a 1 ms timer, as many as keep the ring's own count
 *            of recorded events at R per second since this command (a late tick
 *            catches up, at most R/50 tasks at a time); 0 stops it. "OK rate=R"
 *   stats    "STATS recorded=N nodes=N CREATED=N STARTING=N ... FINISHED=N
 *            spawned=N": events ever recorded, the nodes in the tree now by state
 *            (arbor_runtime_stats), tiny tasks spawned since the start.
 * The end of stdin (or SIGTERM) shuts the runtime down and exits 0.
 *
 * Every FINISHED node is retained (retain_finished is far above what a run
 * spawns), so the tree the events describe is exactly the tree the server
 * holds, and the dashboard's counts can be compared with these. Not a test.
 */
#include <arbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static arbor_runtime_t *rt;
static arbor_admin_t *admin;
static arbor_node_t *gen_group;
static uv_timer_t gen_timer;
static uv_pipe_t input;
static uv_prepare_t ready_watch;
static int input_open, gen_open, watch_open;
static uint64_t want_started, started;
static uint64_t gen_rate, gen_t0, gen_rec0, gen_spawned, spawned_total;
static char line[256];
static size_t line_len;

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_web_tree: %s: %s\n", what, rc < 0 ? arbor_strerror(rc) : "failed");
  exit(1);
}

static void on_closed(uv_handle_t *h) { (void)h; }

/* ------------------------------------------------------------- the tree */

static void on_hour(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_task_done(task);
}

static int hour_start(arbor_node_t *task, void *arg) {
  (void)arg;
  started++;
  return arbor_task_after(task, 3600 * 1000, on_hour);
}

static void build_tree(uint64_t nodes, uint64_t groups) {
  uint64_t tasks = nodes - 2 - groups;
  want_started = tasks;
  for (uint64_t g = 0; g < groups; g++) {
    char name[24];
    arbor_node_t *grp;
    snprintf(name, sizeof name, "g%03llu", (unsigned long long)g);
    int rc = arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = name}, &grp);
    if (rc < 0)
      die("arbor_group_new", rc);
    uint64_t n = tasks / groups + (g < tasks % groups);
    for (uint64_t i = 0; i < n; i++)
      if ((rc = arbor_task_spawn(grp, &(arbor_task_spec_t){.name = "t", .start = hour_start},
                                 NULL)) < 0)
        die("arbor_task_spawn", rc);
  }
  int rc = arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = "gen"}, &gen_group);
  if (rc < 0)
    die("arbor_group_new (gen)", rc);
}

/* --------------------------------------------------------- the generator */

static int tiny_start(arbor_node_t *task, void *arg) {
  (void)arg;
  return arbor_task_done(task);
}

static uint64_t recorded_now(void) {
  arbor_events_stats_t st;
  arbor_events_stats(rt, &st);
  return st.recorded;
}

/* Every ms: spawn enough tiny tasks to bring the events recorded since `rate`
 * up to rate x elapsed, counting what each task actually records (the ring's
 * count), so the rate is the ring's whatever a task costs in events. */
static void on_gen_tick(uv_timer_t *h) {
  (void)h;
  double want = (double)gen_rate * (double)(uv_hrtime() - gen_t0) / 1e9;
  double have = (double)(recorded_now() - gen_rec0);
  double per_task = gen_spawned >= 100 ? have / (double)gen_spawned : 4;
  if (per_task < 1)
    per_task = 1;
  uint64_t cap = gen_rate / 50 + 1;
  for (uint64_t k = 0; k < cap && have + (double)k * per_task < want; k++) {
    int rc = arbor_task_spawn(gen_group, &(arbor_task_spec_t){.name = "tick", .start = tiny_start},
                              NULL);
    if (rc < 0)
      die("arbor_task_spawn (generator)", rc);
    gen_spawned++;
    spawned_total++;
  }
}

/* ---------------------------------------------------------- the commands */

static void stop_all(void) {
  if (input_open)
    uv_close((uv_handle_t *)&input, on_closed);
  if (gen_open)
    uv_close((uv_handle_t *)&gen_timer, on_closed);
  if (watch_open)
    uv_close((uv_handle_t *)&ready_watch, on_closed);
  input_open = gen_open = watch_open = 0;
}

static void command(const char *c) {
  if (strncmp(c, "rate ", 5) == 0) {
    gen_rate = strtoull(c + 5, NULL, 10);
    uv_timer_stop(&gen_timer);
    if (gen_rate > 0) {
      gen_t0 = uv_hrtime();
      gen_rec0 = recorded_now();
      gen_spawned = 0;
      uv_timer_start(&gen_timer, on_gen_tick, 1, 1);
    }
    printf("OK rate=%llu\n", (unsigned long long)gen_rate);
  } else if (strcmp(c, "stats") == 0) {
    arbor_stats_t st;
    uint64_t by_state[ARBOR_STATE_COUNT] = {0}, total = 0;
    arbor_runtime_stats(rt, &st);
    for (int k = 0; k < ARBOR_KIND_COUNT; k++)
      for (int s = 0; s < ARBOR_STATE_COUNT; s++)
        by_state[s] += st.nodes[k][s], total += st.nodes[k][s];
    printf("STATS recorded=%llu nodes=%llu", (unsigned long long)st.events_recorded,
           (unsigned long long)total);
    for (int s = 0; s < ARBOR_STATE_COUNT; s++)
      printf(" %s=%llu", arbor_state_name((arbor_state_t)s), (unsigned long long)by_state[s]);
    printf(" spawned=%llu\n", (unsigned long long)spawned_total);
  } else {
    printf("ERR unknown command: %s\n", c);
  }
  fflush(stdout);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  static char mem[4096];
  (void)h, (void)size;
  *buf = uv_buf_init(mem, sizeof mem);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)s;
  if (n < 0) {                       /* the end of stdin: shut down */
    stop_all();
    int rc = arbor_shutdown(rt, 0);
    if (rc < 0 && rc != ARBOR_EALREADY)
      die("arbor_shutdown", rc);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char ch = buf->base[i];
    if (ch == '\n') {
      line[line_len] = '\0';
      command(line);
      line_len = 0;
    } else if (line_len + 1 < sizeof line) {
      line[line_len++] = ch;
    }
  }
}

/* Serving: every task waits on its timer. Print the URL, then take commands. */
static void on_ready_watch(uv_prepare_t *h) {
  if (started < want_started)
    return;
  uv_close((uv_handle_t *)h, on_closed);
  watch_open = 0;
  printf("arbor: dashboard at http://127.0.0.1:%d/\n", arbor_admin_port(admin));
  fflush(stdout);
  if (uv_pipe_init(&loop, &input, 0) != 0 || uv_pipe_open(&input, 0) != 0)
    die("stdin is not a pipe", 0);
  input_open = 1;
  uv_unref((uv_handle_t *)&input);   /* arbor_run ends with the tree, not with stdin */
  uv_read_start((uv_stream_t *)&input, on_alloc, on_read);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s NODES [GROUPS] [PORT]   (then commands on stdin: rate R, stats)\n",
            argv[0]);
    return 2;
  }
  uint64_t nodes = strtoull(argv[1], NULL, 10);
  uint64_t groups = argc > 2 ? strtoull(argv[2], NULL, 10) : 100;
  int port = argc > 3 ? atoi(argv[3]) : 0;
  if (groups == 0 || nodes < groups + 3) {
    fprintf(stderr, "bench_web_tree: NODES must be at least GROUPS + 3\n");
    return 2;
  }
  if (uv_loop_init(&loop) != 0)
    die("uv_loop_init", 0);
  int rc = arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.retain_finished = 1u << 22,
                                                                 .event_capacity = 1u << 16});
  if (rc < 0)
    die("arbor_runtime_new", rc);
  build_tree(nodes, groups);
  if ((rc = arbor_admin_start(rt, &(arbor_admin_opts_t){.port = port}, &admin)) < 0)
    die("arbor_admin_start", rc);
  uv_timer_init(&loop, &gen_timer);
  uv_unref((uv_handle_t *)&gen_timer);
  gen_open = 1;
  uv_prepare_init(&loop, &ready_watch);
  uv_prepare_start(&ready_watch, on_ready_watch);
  uv_unref((uv_handle_t *)&ready_watch);
  watch_open = 1;
  int run_rc = arbor_run(rt);
  stop_all();
  uv_run(&loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(&loop);
  if (run_rc < 0 && run_rc != ARBOR_ECANCELED)
    fprintf(stderr, "bench_web_tree: arbor_run: %s\n", arbor_strerror(run_rc));
  return closed != 0;
}
