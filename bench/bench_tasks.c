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
 * Observation (issue 7), ARBOR_BENCH_OBSERVE in the environment:
 *   on        (the default) events recorded into the ring, the peer name as above
 *   off       the runtime's no_events = 1: no event recorded (counters kept);
 *             peer name + "/off"
 *   otlp      as on, plus an OTLP push exporter (arbor_otlp_start, default
 *             options) sending to a collector in a thread of this process that
 *             answers every POST 200 "{}" (keep-alive); peer name + "/otlp"
 *   otlp-dead as otlp, to an endpoint that refuses connections (a socket bound,
 *             never listening): every request fails, the exporter backs off and
 *             drops; peer name + "/otlp-dead"
 * With an exporter the loop never runs dry by itself (its handles are open
 * until the runtime closes): once the group FINISHED, a 1 ms timer waits until
 * the exporter's queue is empty (its last partial batch leaves flush_ms, 1 s,
 * after it was queued; at most 10 s; with otlp-dead at once), then stops it.
 * So in every mode the line also says done_ns (the first spawn to the group's
 * FINISHED, the figure to compare across modes) and cpu_ns (the loop thread's
 * CPU time, CLOCK_THREAD_CPUTIME_ID, from the first spawn to uv_run's return:
 * the span writing and sending that happen after the group finished count,
 * the wait for the flush does not; the collector thread's CPU does not).
 * Optional sizes, for every mode: ARBOR_BENCH_RING (event_capacity),
 * ARBOR_BENCH_RETAIN (retain_finished), ARBOR_BENCH_OTLP_QUEUE (the exporter's
 * max_queue, with 2 KiB per span for max_queue_bytes): a ring and a queue as big
 * as the run let the exporter write every span instead of dropping the burst.
 *
 * Prints the harness's line, `RESULT peer=arbor bench=... n=... ns_per_task=...`,
 * plus done_ns, cpu_ns, events recorded, and the exporter's figures (spans_*,
 * requests, events_missed, collector_requests). Not a test: bench/run.sh runs it
 * beside the libuv floor and reports medians.
 */
#include <arbor.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t t_done;
static size_t started;

static int use_uv;

/* ------------------------------------------------ observation (issue 7) */

static arbor_otlp_t *otlp;
static uv_timer_t drain_timer;
static uint64_t drain_t0, t_drained;
static int otlp_dead;
static arbor_otlp_stats_t otlp_final;     /* its stats when stopped */
static atomic_ulong collector_requests;

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t env_size(const char *name) {
  const char *v = getenv(name);
  return v != NULL ? (size_t)strtoull(v, NULL, 10) : 0;
}

/* One collector connection: each request's head up to its blank line, its
 * Content-Length body, then 200 with a two-byte body; until the client closes. */
static void collector_serve(int fd) {
  static char buf[1 << 16];
  size_t len = 0;
  for (;;) {
    char *end = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
    if (end == NULL) {
      if (len == sizeof buf)
        return;                  /* a head this big: not a collector's client */
      ssize_t r = read(fd, buf + len, sizeof buf - len);
      if (r <= 0)
        return;
      len += (size_t)r;
      continue;
    }
    size_t head = (size_t)(end + 4 - buf), body = 0;
    *end = '\0';
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    if (cl != NULL)
      body = (size_t)strtoull(cl + 17, NULL, 10);
    size_t have = len - head;    /* body bytes already read */
    while (have < body) {        /* read and forget the rest of the body */
      char sink[1 << 16];
      size_t want = body - have < sizeof sink ? body - have : sizeof sink;
      ssize_t r = read(fd, sink, want);
      if (r <= 0)
        return;
      have += (size_t)r;
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 2\r\n\r\n{}";
    if (write(fd, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
      return;
    collector_requests++;
    size_t used = head + (body < len - head ? body : len - head);
    memmove(buf, buf + used, len - used);
    len -= used;
  }
}

static void *collector_main(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
      continue;
    collector_serve(fd);
    close(fd);
  }
  return NULL;
}

/* A socket on 127.0.0.1, a free port; listening (a collector) or not (dead:
 * connect is refused). Returns its port; the fd stays open for the run. */
static int local_socket(int listening, int *fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      (listening && listen(fd, 16) < 0) || getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
    perror("bench_tasks: collector socket");
    exit(1);
  }
  *fd_out = fd;
  return ntohs(a.sin_port);
}

static void start_otlp(arbor_runtime_t *rt, int dead) {
  int fd, port = local_socket(!dead, &fd);
  otlp_dead = dead;
  if (!dead) {
    pthread_t th;
    if (pthread_create(&th, NULL, collector_main, (void *)(intptr_t)fd) != 0) {
      fprintf(stderr, "bench_tasks: pthread_create failed\n");
      exit(1);
    }
    pthread_detach(th);          /* blocked in accept when the process exits */
  }
  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", port);
  size_t q = env_size("ARBOR_BENCH_OTLP_QUEUE");
  int rc = arbor_otlp_start(rt, &(arbor_otlp_opts_t){.endpoint = endpoint, .max_queue = q,
                                                      .max_queue_bytes = q * 2048}, &otlp);
  if (rc < 0) {
    fprintf(stderr, "bench_tasks: arbor_otlp_start: %s\n", arbor_strerror(rc));
    exit(1);
  }
}

static void on_drain_closed(uv_handle_t *h) { (void)h; }

/* Every ms once the group FINISHED: stops the exporter when its queue is empty
 * (dead: at once; 10 s at most), so that uv_run can return. */
static void on_drain(uv_timer_t *t) {
  arbor_otlp_stats_t st;
  arbor_otlp_stats(otlp, &st);
  if (!otlp_dead && st.queue_len > 0 && uv_hrtime() - drain_t0 < 10000000000u)
    return;
  t_drained = uv_hrtime();
  otlp_final = st;               /* it frees itself once stopped */
  arbor_otlp_stop(otlp);
  uv_close((uv_handle_t *)t, on_drain_closed);
}

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
  (void)arg;
  t_done = uv_hrtime();
  if (otlp != NULL) {
    drain_t0 = t_done;
    uv_timer_init(arbor_runtime_loop(arbor_node_runtime(group)), &drain_timer);
    uv_timer_start(&drain_timer, on_drain, 0, 1);
  }
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
  const char *obs = getenv("ARBOR_BENCH_OBSERVE");
  if (obs == NULL || *obs == '\0')
    obs = "on";
  if (strcmp(obs, "on") != 0 && strcmp(obs, "off") != 0 && strcmp(obs, "otlp") != 0 &&
      strcmp(obs, "otlp-dead") != 0) {
    fprintf(stderr, "ARBOR_BENCH_OBSERVE must be on, off, otlp or otlp-dead, not %s\n", obs);
    return 2;
  }
  char peer[64];
  snprintf(peer, sizeof peer, "%s%s%s", use_uv ? "arbor-uv" : "arbor",
           strcmp(obs, "on") == 0 ? "" : "/", strcmp(obs, "on") == 0 ? "" : obs);
  uv_loop_t *loop = uv_default_loop();
  arbor_runtime_t *rt;
  arbor_node_t *group;
  arbor_runtime_new(&rt, loop, &(arbor_runtime_opts_t){
                                   .no_signals = 1,
                                   .no_events = strcmp(obs, "off") == 0,
                                   .event_capacity = env_size("ARBOR_BENCH_RING"),
                                   .retain_finished = env_size("ARBOR_BENCH_RETAIN")});
  if (strncmp(obs, "otlp", 4) == 0)
    start_otlp(rt, strcmp(obs, "otlp-dead") == 0);
  uint64_t cpu0 = thread_cpu_ns();

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
    /* With an exporter, uv_run's return waited for its queue to drain (mostly
     * idle, the batching deadline): the spawn's own figure is done_ns then. */
    uint64_t fig = otlp != NULL ? t_done - t0 : dt, cpu = thread_cpu_ns() - cpu0;
    printf("RESULT peer=%s bench=spawn n=%zu wall_ns=%llu done_ns=%llu cpu_ns=%llu "
           "ns_per_task=%.1f cpu_ns_per_task=%.1f",
           peer, n, (unsigned long long)dt, (unsigned long long)(t_done - t0),
           (unsigned long long)cpu, (double)fig / (double)n, (double)cpu / (double)n);
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
    printf("RESULT peer=%s bench=cancel n=%zu start_ns=%llu cancel_ns=%llu ns_per_task=%.1f",
           peer, n, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
           (double)(t2 - t1) / (double)n);
  } else {
    fprintf(stderr, "bad mode %s\n", argv[1]);
    return 2;
  }
  arbor_events_stats_t st;
  arbor_events_stats(rt, &st);
  printf(" events_recorded=%llu", (unsigned long long)st.recorded);
  if (otlp != NULL) {
    const arbor_otlp_stats_t os = otlp_final;
    printf(" queue_left=%zu spans_queued=%llu spans_exported=%llu spans_dropped=%llu requests=%llu "
           "requests_failed=%llu events_missed=%llu collector_requests=%lu drain_ms=%.1f",
           os.queue_len, (unsigned long long)os.spans_queued, (unsigned long long)os.spans_exported,
           (unsigned long long)os.spans_dropped, (unsigned long long)os.requests,
           (unsigned long long)os.requests_failed, (unsigned long long)os.events_missed,
           (unsigned long)atomic_load(&collector_requests), (double)(t_drained - drain_t0) / 1e6);
  }
  printf("\n");
  fprintf(stderr, "events recorded=%llu dropped=%llu\n", (unsigned long long)st.recorded,
          (unsigned long long)st.dropped);
  arbor_runtime_close(rt, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
