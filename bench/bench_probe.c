/* bench/bench_probe.c - what health probes cost arbor (issue 10, "Health probes"
 * in docs/PERFORMANCE.md).
 *
 *   bench_probe MODE SERVICES INTERVAL_MS WINDOW_S [SETTLE_S]
 *
 * SERVICES fiber services (each sleeps until cancelled), each with a liveness
 * probe of kind MODE every INTERVAL_MS (failure_threshold so high that nothing is
 * ever restarted):
 *   http  GET / against a responder in another process (forked before the
 *         runtime exists, its own loop), which answers 200 and closes;
 *   tcp   a connect to the same responder;
 *   exec  /bin/true;
 *   none  no probe at all (the idle baseline: an arbor without probes).
 * The probes' first attempts are spread over one interval (initial_delay_ms =
 * i * INTERVAL_MS / SERVICES), as services started at different times would be.
 * After SETTLE_S (default 2) this process is sampled, again WINDOW_S later:
 *   cpu_us_per_probe   this process's user + system CPU (getrusage RUSAGE_SELF:
 *                      every thread of arbor; not the responder, not the exec
 *                      children) over the window / the attempts that ended in it;
 *                      sys_us_per_probe its kernel share;
 *   child_cpu_us_per_probe  RUSAGE_CHILDREN's growth per attempt (exec: the
 *                      /bin/true processes, reaped by libuv), for the whole bill;
 *   wakeups_per_s      voluntary + nonvoluntary context switches of every thread
 *                      of this process (/proc/self/task/T/status), as
 *                      bench_supervise's idle mode counts them;
 *   probes_per_s       attempts that ended, per second; failed = those that failed.
 * Prints one RESULT line. Not a test: bench/run.sh may run it; docs/PERFORMANCE.md
 * has the method and the figures (medians of 5 runs with min-max).
 */
#include <arbor.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOUR (3600u * 1000u)

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_probe: %s: %s\n", what, rc < 0 ? arbor_strerror(rc) : "failed");
  exit(1);
}

/* ------------------------------------------------------------ responder */

typedef struct {
  uv_tcp_t h;
  uv_write_t w;
  size_t len;
  char buf[2048];
} conn_t;

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void conn_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  conn_t *c = h->data;
  *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - 1 - c->len));
}

static void conn_written(uv_write_t *w, int status) {
  (void)status;
  conn_t *c = w->data;
  uv_close((uv_handle_t *)&c->h, conn_closed);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn_t *c = s->data;
  if (n < 0 || c->len + (size_t)n >= sizeof c->buf - 1) {
    uv_close((uv_handle_t *)&c->h, conn_closed);   /* a TCP probe: closed at once */
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  if (strstr(c->buf, "\r\n\r\n") == NULL)
    return;
  uv_read_stop(s);
  uv_buf_t out = uv_buf_init((char *)reply, sizeof reply - 1);
  c->w.data = c;
  if (uv_write(&c->w, s, &out, 1, conn_written) < 0)
    uv_close((uv_handle_t *)&c->h, conn_closed);
}

static void on_conn(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  conn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(server->loop, &c->h);
  c->h.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->h) == 0)
    uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read);
  else
    uv_close((uv_handle_t *)&c->h, conn_closed);
}

/* Forks the responder; returns its port. It dies with this process. */
static int responder_start(pid_t *pid) {
  int fds[2];
  if (pipe(fds) < 0)
    die("pipe", -1);
  *pid = fork();
  if (*pid < 0)
    die("fork", -1);
  if (*pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t server;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &server);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&a, 0) < 0 ||
        uv_listen((uv_stream_t *)&server, 1024, on_conn) < 0)
      _exit(1);
    int len = sizeof a;
    uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    if (write(fds[1], &port, sizeof port) != sizeof port)
      _exit(1);
    close(fds[1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(fds[1]);
  int port = 0;
  if (read(fds[0], &port, sizeof port) != sizeof port)
    die("responder", -1);
  close(fds[0]);
  return port;
}

/* ------------------------------------------------------------- sampling */

struct sample {
  uint64_t cpu_us, sys_us, child_cpu_us, switches, attempts, failed, t_ns;
};

static uint64_t tv_us(struct timeval t) {
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_usec;
}

static uint64_t switches_now(void) {
  DIR *d = opendir("/proc/self/task");
  uint64_t total = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", atoi(e->d_name));
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    unsigned long long v;
    while (fgets(line, sizeof line, f) != NULL)
      if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
          sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
        total += v;
    fclose(f);
  }
  if (d != NULL)
    closedir(d);
  return total;
}

static arbor_node_t **svcs;
static size_t nsvcs;

static void take(struct sample *s) {
  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  s->cpu_us = tv_us(self.ru_utime) + tv_us(self.ru_stime);
  s->sys_us = tv_us(self.ru_stime);
  s->child_cpu_us = tv_us(kids.ru_utime) + tv_us(kids.ru_stime);
  s->switches = switches_now();
  s->attempts = s->failed = 0;
  for (size_t i = 0; i < nsvcs; i++) {
    arbor_probe_info_t pi;
    if (arbor_service_probe_info(svcs[i], ARBOR_PROBE_LIVENESS, &pi) == 0) {
      s->attempts += pi.successes + pi.failures;
      s->failed += pi.failures;
    }
  }
  s->t_ns = uv_hrtime();
}

/* ------------------------------------------------------------------ run */

static int sleeper(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  int rc;
  while ((rc = arbor_sleep(cx, HOUR)) == 0)
    ;
  return rc;
}

static struct sample s0, s1;
static int phase;
static double window_s;

static void on_bench_timer(uv_timer_t *t) {
  if (phase++ == 0) {
    take(&s0);
    uv_timer_start(t, on_bench_timer, (uint64_t)(window_s * 1000), 0);
  } else {
    take(&s1);
    uv_stop(t->loop);
  }
}

static void closed_cb(arbor_runtime_t *rt, void *arg) {
  (void)rt;
  *(int *)arg = 1;
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 6) {
    fprintf(stderr, "usage: %s http|tcp|exec|none SERVICES INTERVAL_MS WINDOW_S [SETTLE_S]\n",
            argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  nsvcs = strtoull(argv[2], NULL, 10);
  uint64_t interval = strtoull(argv[3], NULL, 10);
  window_s = strtod(argv[4], NULL);
  double settle_s = argc == 6 ? strtod(argv[5], NULL) : 2.0;
  arbor_probe_kind_t kind = strcmp(mode, "http") == 0   ? ARBOR_PROBE_HTTP
                            : strcmp(mode, "tcp") == 0  ? ARBOR_PROBE_TCP
                            : strcmp(mode, "exec") == 0 ? ARBOR_PROBE_EXEC
                                                        : 0;
  if (kind == 0 && strcmp(mode, "none") != 0) {
    fprintf(stderr, "bench_probe: unknown mode %s\n", mode);
    return 2;
  }
  pid_t rpid = 0;
  int port = kind == ARBOR_PROBE_HTTP || kind == ARBOR_PROBE_TCP ? responder_start(&rpid) : 0;

  uv_loop_t loop;
  uv_loop_init(&loop);
  arbor_runtime_t *rt;
  int rc = arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1});
  if (rc < 0)
    die("runtime", rc);
  svcs = calloc(nsvcs, sizeof *svcs);
  char *exec_argv[] = {"/bin/true", NULL};
  for (size_t i = 0; i < nsvcs; i++) {
    char name[32];
    snprintf(name, sizeof name, "svc%zu", i);
    arbor_health_probe_t hp = {.kind = kind, .port = port, .argv = exec_argv,
                               .interval_ms = interval, .failure_threshold = 1000000,
                               .initial_delay_ms = i * interval / (nsvcs > 0 ? nsvcs : 1)};
    arbor_service_spec_t spec = {.name = name, .fiber = sleeper,
                                 .liveness = kind != 0 ? &hp : NULL};
    if ((rc = arbor_service_add(arbor_root(rt), &spec, &svcs[i])) < 0)
      die("service", rc);
  }
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_bench_timer, (uint64_t)(settle_s * 1000), 0);
  uv_run(&loop, UV_RUN_DEFAULT);

  double secs = (double)(s1.t_ns - s0.t_ns) / 1e9;
  uint64_t attempts = s1.attempts - s0.attempts;
  printf("RESULT peer=arbor bench=probe mode=%s services=%zu interval_ms=%llu window_s=%.2f "
         "probes_per_s=%.1f failed=%llu cpu_us_per_probe=%.2f sys_us_per_probe=%.2f "
         "child_cpu_us_per_probe=%.2f "
         "cpu_percent=%.3f wakeups_per_s=%.2f\n",
         mode, nsvcs, (unsigned long long)interval, secs, (double)attempts / secs,
         (unsigned long long)(s1.failed - s0.failed),
         attempts > 0 ? (double)(s1.cpu_us - s0.cpu_us) / (double)attempts : 0.0,
         attempts > 0 ? (double)(s1.sys_us - s0.sys_us) / (double)attempts : 0.0,
         attempts > 0 ? (double)(s1.child_cpu_us - s0.child_cpu_us) / (double)attempts : 0.0,
         (double)(s1.cpu_us - s0.cpu_us) / 1e4 / secs,
         (double)(s1.switches - s0.switches) / secs);

  uv_close((uv_handle_t *)&t, NULL);
  int closed = 0;
  arbor_runtime_close(rt, closed_cb, &closed);
  while (!closed)
    uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_NOWAIT);
  int lc = uv_loop_close(&loop);
  free(svcs);
  if (rpid > 0) {
    kill(rpid, SIGKILL);
    waitpid(rpid, NULL, 0);
  }
  return lc == 0 ? 0 : 1;
}
