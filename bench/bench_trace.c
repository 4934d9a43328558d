/* bench/bench_trace.c - issue 7's export benchmark: a 100,000-node history
 * written out as a trace, and GET /metrics on that runtime.
 *
 *   bench_trace history NODES GROUPS METRICS_CALLS
 *
 * The history: a runtime retaining every finished node (retain_finished =
 * NODES + GROUPS + 1024) and, under the root, GROUPS groups of NODES / GROUPS
 * callback tasks each, all FINISHED before anything is measured:
 *   - most groups: every task ends OK on a 0-4 ms arbor_task_after timer;
 *   - every 10th group (g % 10 == 3): its first task fails at 0 ms with a
 *     two-link error chain (EIO "sync batch failed", caused by ECONNRESET), so
 *     the group FAILS with an error group and its siblings still waiting are
 *     CANCELLED (rule 2);
 *   - every 10th group (g % 10 == 7): its tasks wait an hour and the group is
 *     cancelled 20 ms after the build (CANCELLED, not failure);
 * plus a few live nodes: a supervisor with 3 fiber services sleeping an hour,
 * one of which ("flaky") fails in its first 2 incarnations and is restarted at
 * once (RESTART events, a restart count, a failed incarnation's chain).
 * 1 + GROUPS + NODES + 1 + 3 services + their incarnations in all.
 *
 * Then, for each format (chrome, otlp), on the loop thread, with nothing else
 * running:
 *   snapshot_ms  trace_snapshot_take of the whole tree (tracing/trace.h), freed
 *   tracks_ms    chrome only: chrome_assign_tracks on that snapshot (tracks: how
 *                many it made)
 *   init_ms      trace_export_init: the snapshot, plus Chrome's track layout
 *   format_ms    trace_export_read until the document is complete (64 KiB
 *                reads into one buffer, thrown away), and its bytes
 *   write_ms     arbor_trace_write to /dev/null (all of the above, and stdio)
 *   http_*       GET /api/v1/trace?format=F from a client thread (libcurl, the
 *                body thrown away): the download's time and bytes, and the
 *                loop's longest stall meanwhile, two ways:
 *                  gap_max_ms   the largest gap between two runs of a 1 ms
 *                               repeating uv_timer, or from its last run to
 *                               the phase's end (what a timer on this loop
 *                               would have seen; 1-2 ms when idle: libuv's
 *                               timers have ms granularity)
 *                  iter_max_ms  the longest loop iteration's busy time: from
 *                               one uv_prepare callback to the next, minus the
 *                               time blocked in epoll_wait meanwhile
 *                               (uv_metrics_idle_time), as bench_admin.c does;
 *                               iter_cpu_max_ms is the loop thread's CPU time
 *                               in its longest iteration (preemption by another
 *                               process shows in the first, not here)
 * then GET /metrics METRICS_CALLS times, one after the other on one kept-alive
 * connection after 20 warm-up calls: latency p50/p99/max (client side, with
 * libcurl's own cost), bytes, and the same two stalls. And an idle phase first
 * (200 ms, nothing but the meters) for the stalls' floor.
 *
 * The client is a thread of this process (on 2 cores it has the other one);
 * it reports back with a uv_async_t. RESULT lines:
 *   RESULT peer=arbor bench=trace phase=idle|chrome|otlp|metrics nodes=... ...
 * bench/run.sh (TRACE=0 skips it) runs it REPS times and prints medians with
 * min-max. Not a test.
 */
#include <arbor.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace.h"

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_trace: %s: %s\n", what,
          rc < 0 ? arbor_strerror(rc) : rc > 0 ? strerror(rc) : "failed");
  exit(1);
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Linear interpolation between closest ranks (bench_admin's pct). Sorts xs. */
static double pct(double *xs, size_t n, double q) {
  if (n == 0)
    return 0;
  qsort(xs, n, sizeof *xs, cmp_double);
  double k = (double)(n - 1) * q;
  size_t lo = (size_t)k, hi = lo + 1 < n ? lo + 1 : n - 1;
  return xs[lo] + (xs[hi] - xs[lo]) * (k - (double)lo);
}

static uv_loop_t loop;
static arbor_runtime_t *rt;
static arbor_admin_t *admin;
static size_t nodes_total, groups_total;

/* ------------------------------------------------------------- the meters */

static uv_prepare_t meter;
static uv_timer_t ticker;
static int measuring;
static uint64_t last_t, last_idle, last_cpu, last_tick;
static uint64_t iter_max, iter_cpu_max, gap_max, iterations;

static void on_meter(uv_prepare_t *h) {
  uint64_t t = uv_hrtime(), idle = uv_metrics_idle_time(h->loop), cpu = thread_cpu_ns();
  if (measuring) {
    uint64_t busy = (t - last_t) - (idle - last_idle);
    if (busy > iter_max)
      iter_max = busy;
    if (cpu - last_cpu > iter_cpu_max)
      iter_cpu_max = cpu - last_cpu;
    iterations++;
  }
  last_t = t;
  last_idle = idle;
  last_cpu = cpu;
}

static void on_tick(uv_timer_t *h) {
  (void)h;
  uint64_t t = uv_hrtime();
  if (measuring && t - last_tick > gap_max)
    gap_max = t - last_tick;
  last_tick = t;
}

static void meter_begin(void) {
  iter_max = iter_cpu_max = gap_max = iterations = 0;
  last_t = last_tick = uv_hrtime();
  last_idle = uv_metrics_idle_time(&loop);
  last_cpu = thread_cpu_ns();
  measuring = 1;
}

/* " gap_max_ms=... iter_max_ms=... iter_cpu_max_ms=... iterations=..." */
static void meter_end(char *out, size_t size) {
  /* The gap still open counts too: a download that ends inside a long
   * iteration ends the phase (its uv_async runs in that iteration's poll)
   * before the timer runs again. */
  if (uv_hrtime() - last_tick > gap_max)
    gap_max = uv_hrtime() - last_tick;
  measuring = 0;
  snprintf(out, size, "gap_max_ms=%.3f iter_max_ms=%.3f iter_cpu_max_ms=%.3f iterations=%llu",
           (double)gap_max / 1e6, (double)iter_max / 1e6, (double)iter_cpu_max / 1e6,
           (unsigned long long)iterations);
}

/* ------------------------------------------------- the client thread */

struct job {
  char url[128];
  int warmups, calls;            /* calls 1: one download */
  /* results */
  long status;
  double *lat_ms;                /* calls entries */
  uint64_t bytes;                /* of the last response */
  int failed;
};

static struct job job;
static pthread_t client;
static uv_async_t client_done;

static size_t count_body(char *d, size_t size, size_t n, void *arg) {
  (void)d;
  *(uint64_t *)arg += size * n;
  return size * n;
}

static void *client_main(void *arg) {
  struct job *j = arg;
  CURL *c = curl_easy_init();
  if (c == NULL) {
    j->failed = 1;
    uv_async_send(&client_done);
    return NULL;
  }
  curl_easy_setopt(c, CURLOPT_URL, j->url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &j->bytes);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
  for (int i = -j->warmups; i < j->calls && !j->failed; i++) {
    j->bytes = 0;
    uint64_t t0 = uv_hrtime();
    CURLcode rc = curl_easy_perform(c);
    uint64_t t1 = uv_hrtime();
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->status);
    if (rc != CURLE_OK || j->status != 200) {
      fprintf(stderr, "bench_trace: GET %s: %s, status %ld\n", j->url, curl_easy_strerror(rc),
              j->status);
      j->failed = 1;
    } else if (i >= 0) {
      j->lat_ms[i] = (double)(t1 - t0) / 1e6;
    }
  }
  curl_easy_cleanup(c);
  uv_async_send(&client_done);
  return NULL;
}

static void client_start(const char *path, int warmups, int calls) {
  free(job.lat_ms);
  memset(&job, 0, sizeof job);
  snprintf(job.url, sizeof job.url, "http://127.0.0.1:%d%s", arbor_admin_port(admin), path);
  job.warmups = warmups;
  job.calls = calls;
  job.lat_ms = calloc((size_t)calls, sizeof *job.lat_ms);
  if (job.lat_ms == NULL)
    die("calloc", ENOMEM);
  meter_begin();
  int rc = pthread_create(&client, NULL, client_main, &job);
  if (rc != 0)
    die("pthread_create", rc);
}

/* ------------------------------------------------------------- phases */

static const arbor_trace_format_t formats[] = {ARBOR_TRACE_CHROME, ARBOR_TRACE_OTLP};
static const char *const format_names[] = {"chrome", "otlp"};
static int phase;                /* index into the sequence below */
static int metrics_calls;
static char line[2048];          /* the RESULT line being put together */
static uv_timer_t phase_timer;

static void next_phase(void);

static double ms_since(uint64_t t0) { return (double)(uv_hrtime() - t0) / 1e6; }

/* The timed parts that need no client: snapshot, export, arbor_trace_write. */
static void measure_local(int f) {
  arbor_trace_format_t format = formats[f];
  struct trace_snapshot s;
  uint64_t t0 = uv_hrtime();
  int rc = trace_snapshot_take(&s, arbor_root(rt), NULL);
  double snap_ms = ms_since(t0);
  if (rc < 0)
    die("trace_snapshot_take", rc);
  size_t nnodes = s.nnodes, nevents = s.nevents;
  /* Chrome's track layout on its own (trace_export_init does it after the
   * snapshot): how much of init_ms it is. */
  double tracks_ms = 0;
  int ntracks = 0;
  if (format == ARBOR_TRACE_CHROME) {
    t0 = uv_hrtime();
    ntracks = chrome_assign_tracks(&s);
    tracks_ms = ms_since(t0);
    if (ntracks < 0)
      die("chrome_assign_tracks", ntracks);
  }
  trace_snapshot_free(&s);

  struct trace_export x;
  t0 = uv_hrtime();
  rc = trace_export_init(&x, arbor_root(rt), format, NULL);
  double init_ms = ms_since(t0);
  if (rc < 0)
    die("trace_export_init", rc);
  static char buf[64 * 1024];
  uint64_t bytes = 0;
  ssize_t n;
  t0 = uv_hrtime();
  while ((n = trace_export_read(&x, buf, sizeof buf)) > 0)
    bytes += (uint64_t)n;
  double format_ms = ms_since(t0);
  if (n < 0)
    die("trace_export_read", (int)n);
  trace_export_free(&x);

  FILE *out = fopen("/dev/null", "w");
  if (out == NULL)
    die("fopen /dev/null", errno);
  t0 = uv_hrtime();
  rc = arbor_trace_write(rt, format, out);
  double write_ms = ms_since(t0);
  fclose(out);
  if (rc < 0)
    die("arbor_trace_write", rc);

  snprintf(line, sizeof line,
           "RESULT peer=arbor bench=trace phase=%s nodes=%zu groups=%zu snapshot_nodes=%zu "
           "snapshot_events=%zu snapshot_ms=%.2f tracks_ms=%.2f tracks=%d init_ms=%.2f format_ms=%.2f bytes=%llu "
           "bytes_per_node=%.0f write_ms=%.2f",
           format_names[f], nodes_total, groups_total, nnodes, nevents, snap_ms, tracks_ms, ntracks, init_ms, format_ms,
           (unsigned long long)bytes, (double)bytes / (double)nnodes, write_ms);
}

static void on_idle_done(uv_timer_t *h) {
  (void)h;
  char m[256];
  meter_end(m, sizeof m);
  printf("RESULT peer=arbor bench=trace phase=idle nodes=%zu groups=%zu %s\n", nodes_total,
         groups_total, m);
  fflush(stdout);
  next_phase();
}

/* The client thread finished its job: its figures, then the next phase. */
static void on_client_done(uv_async_t *h) {
  (void)h;
  pthread_join(client, NULL);
  char m[256];
  meter_end(m, sizeof m);
  if (job.failed)
    die("the client failed", 0);
  size_t len = strlen(line);
  if (job.calls == 1) {          /* a trace download, appended to measure_local's */
    snprintf(line + len, sizeof line - len, " http_ms=%.2f http_bytes=%llu http_status=%ld %s",
             job.lat_ms[0], (unsigned long long)job.bytes, job.status, m);
  } else {
    double mx = 0;
    for (int i = 0; i < job.calls; i++)
      mx = job.lat_ms[i] > mx ? job.lat_ms[i] : mx;
    double p50 = pct(job.lat_ms, (size_t)job.calls, .5);
    double p99 = pct(job.lat_ms, (size_t)job.calls, .99);
    snprintf(line, sizeof line,
             "RESULT peer=arbor bench=trace phase=metrics nodes=%zu groups=%zu calls=%d p50_ms=%.3f "
             "p99_ms=%.3f max_ms=%.3f bytes=%llu %s",
             nodes_total, groups_total, job.calls, p50, p99, mx, (unsigned long long)job.bytes, m);
  }
  printf("%s\n", line);
  fflush(stdout);
  next_phase();
}

static void on_closed(uv_handle_t *h) { (void)h; }

/* idle, chrome, otlp, metrics, then the end. */
static void next_phase(void) {
  switch (phase++) {
  case 0:
    meter_begin();
    uv_timer_start(&phase_timer, on_idle_done, 200, 0);
    break;
  case 1:
  case 2: {
    int f = phase - 2;
    measure_local(f);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/trace?format=%s", format_names[f]);
    client_start(path, 0, 1);
    break;
  }
  case 3:
    client_start("/metrics", 20, metrics_calls);
    break;
  default:
    uv_close((uv_handle_t *)&meter, on_closed);
    uv_close((uv_handle_t *)&ticker, on_closed);
    uv_close((uv_handle_t *)&phase_timer, on_closed);
    uv_close((uv_handle_t *)&client_done, on_closed);
    int rc = arbor_shutdown(rt, 0);
    if (rc < 0)
      die("arbor_shutdown", rc);
  }
}

/* ------------------------------------------------------------ the history */

static size_t groups_left;
static size_t live_started;
static arbor_node_t **to_cancel;
static size_t nto_cancel;
static uv_timer_t cancel_timer, ready_timer;

static void on_task_timer(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_task_done(task);
}

static void on_task_fail(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_error_t *cause = arbor_error_new(-ECONNRESET, "peer %llu reset the connection",
                                         (unsigned long long)arbor_node_id(task));
  arbor_task_fail_error(task, arbor_error_wrap(cause, -EIO, "sync batch failed"));
}

/* arg: the task's delay in ms; UINT32_MAX: fail at 0 ms. */
static int history_start(arbor_node_t *task, void *arg) {
  uintptr_t d = (uintptr_t)arg;
  if (d == UINT32_MAX)
    return arbor_task_after(task, 0, on_task_fail);
  return arbor_task_after(task, d, on_task_timer);
}

static void on_group_finished(arbor_node_t *g, void *arg) {
  (void)g;
  (void)arg;
  groups_left--;
}

static void on_cancel_timer(uv_timer_t *h) {
  (void)h;
  for (size_t i = 0; i < nto_cancel; i++) {
    arbor_node_cancel(to_cancel[i]);
    arbor_node_unref(to_cancel[i]);
  }
  uv_close((uv_handle_t *)h, on_closed);
}

static int sleeper(arbor_ctx_t *cx, void *arg) {
  static int flaky_runs;
  if (arg != NULL && flaky_runs++ < 2)
    return -EIO;                 /* the flaky one's first two incarnations */
  live_started++;
  for (;;) {
    int rc = arbor_sleep(cx, 3600 * 1000);
    if (rc < 0)
      return rc;
  }
}

static void build_history(size_t n, size_t ngroups) {
  arbor_node_t *sup;
  int rc = arbor_supervisor_new(arbor_root(rt),
                                &(arbor_sup_opts_t){.name = "live", .no_backoff = 1,
                                                    .intensity = 10, .parallel_stop = 1},
                                &sup);
  if (rc < 0)
    die("arbor_supervisor_new", rc);
  static const char *const names[] = {"heartbeat", "flaky", "db-sync"};
  for (int i = 0; i < 3; i++) {
    rc = arbor_service_add(sup, &(arbor_service_spec_t){.name = names[i], .fiber = sleeper,
                                                       .arg = i == 1 ? (void *)1 : NULL},
                           NULL);
    if (rc < 0)
      die("arbor_service_add", rc);
  }
  to_cancel = calloc(ngroups, sizeof *to_cancel);
  if (to_cancel == NULL)
    die("calloc", ENOMEM);
  groups_left = ngroups;
  for (size_t g = 0; g < ngroups; g++) {
    char name[32];
    snprintf(name, sizeof name, "batch-%03zu", g);
    arbor_node_t *grp;
    rc = arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = name}, &grp);
    if (rc < 0)
      die("arbor_group_new", rc);
    if (g % 10 == 7) {
      arbor_node_ref(grp);
      to_cancel[nto_cancel++] = grp;
    }
    size_t k = n / ngroups + (g < n % ngroups);
    for (size_t i = 0; i < k; i++) {
      uintptr_t d = g % 10 == 7 ? 3600 * 1000 : g % 10 == 3 && i == 0 ? UINT32_MAX : i % 5;
      rc = arbor_task_spawn(grp, &(arbor_task_spec_t){.name = i % 2 ? "fetch" : "store",
                                                       .start = history_start, .arg = (void *)d},
                            NULL);
      if (rc < 0)
        die("arbor_task_spawn", rc);
    }
    arbor_group_join(grp, on_group_finished, NULL);   /* after its children: an empty
                                                         group joined finishes */
  }
  nodes_total = 1 + ngroups + n + 1 + 3;
  groups_total = ngroups;
}

/* Every 10 ms: once every group finished and the live services run, the
 * measuring starts. */
static void on_ready_timer(uv_timer_t *h) {
  if (groups_left > 0 || live_started < 3)
    return;
  uv_close((uv_handle_t *)h, on_closed);
  next_phase();
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  if (argc != 5 || strcmp(argv[1], "history") != 0) {
    fprintf(stderr, "usage: %s history NODES GROUPS METRICS_CALLS\n", argv[0]);
    return 2;
  }
  size_t n = strtoull(argv[2], NULL, 10), ngroups = strtoull(argv[3], NULL, 10);
  metrics_calls = atoi(argv[4]);
  if (n == 0 || ngroups == 0 || metrics_calls <= 0)
    return 2;
  /* Before any thread: curl_global_init is not thread-safe everywhere (the
   * comment at the top of tracing/otlp_push.c). */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    die("curl_global_init", 0);
  if (uv_loop_init(&loop) != 0 || uv_loop_configure(&loop, UV_METRICS_IDLE_TIME) != 0)
    die("uv_loop_init", 0);
  int rc = arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){
                                             .no_signals = 1,
                                             .retain_finished = n + ngroups + 1024});
  if (rc < 0)
    die("arbor_runtime_new", rc);
  rc = arbor_admin_start(rt, NULL, &admin);
  if (rc < 0)
    die("arbor_admin_start", rc);
  uint64_t t0 = uv_hrtime();
  build_history(n, ngroups);

  uv_prepare_init(&loop, &meter);
  uv_prepare_start(&meter, on_meter);
  uv_timer_init(&loop, &ticker);
  uv_timer_start(&ticker, on_tick, 1, 1);
  uv_timer_init(&loop, &phase_timer);
  uv_async_init(&loop, &client_done, on_client_done);
  uv_timer_init(&loop, &cancel_timer);
  uv_timer_start(&cancel_timer, on_cancel_timer, 20, 0);
  uv_timer_init(&loop, &ready_timer);
  uv_timer_start(&ready_timer, on_ready_timer, 10, 10);
  fprintf(stderr, "bench_trace: %zu nodes, %zu groups: built in %.0f ms\n", nodes_total, ngroups,
          ms_since(t0));

  int run_rc = arbor_run(rt);    /* until arbor_shutdown, after the last phase */
  uv_run(&loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(&loop);
  free(job.lat_ms);
  free(to_cancel);
  /* The history has failed groups on purpose: arbor_run reports the first
   * (an error group); only a hang would matter, and the phases show it. */
  (void)run_rc;
  if (closed != 0)
    fprintf(stderr, "bench_trace: uv_loop_close: %s\n", uv_strerror(closed));
  return closed != 0 || phase < 4;
}
