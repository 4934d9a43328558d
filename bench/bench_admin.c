/* bench/bench_admin.c - the admin API's benchmarks (issue 6), for arbor.
 *
 * One arbor process serves the admin API (arbor_admin_start on 127.0.0.1, port 0)
 * on its loop; the load comes from a helper process forked before the runtime
 * exists (so it is no child arbor reaps, and it never shares arbor's loop or its
 * core: the machine has 2). The helper drives the run in phases over a pipe:
 * "B phase" (arbor starts measuring, answers "A <events recorded>"), the load,
 * "E phase key=value..." (arbor stops measuring and prints one RESULT line with
 * the helper's figures and its own), and "Q" at the end (arbor_shutdown, then
 * arbor_run returns and the loop is closed).
 *
 * What arbor measures in every phase is its loop's longest stall: the busy time
 * of each loop iteration, i.e. the time from one uv_prepare callback to the next
 * minus what the loop spent blocked in epoll_wait (uv_metrics_idle_time, with
 * UV_METRICS_IDLE_TIME set on the loop). That is everything a request, a timer or
 * an event stream made the loop do between two polls, the time for which nothing
 * else on the loop could run; reported as iter_max_ms, iter_p99_ms (over the
 * iterations of the phase; microsecond histogram), the three longest
 * (stall_top_ms) and loop_busy_pct. Plus arbor's CPU time (getrusage) per request.
 *
 *   tree SERVICES CALLS SECONDS     SERVICES process services running
 *        `/bin/sleep 3600` under one supervisor (parallel_stop). Once all run:
 *        GET /api/v1/tree as supervisord's D was measured (../shared/peers
 *        BASELINES.md): 50 warm-up calls, then CALLS sequential calls on one
 *        kept-alive connection (phase latency: p50/p90/p99/max ms, response bytes,
 *        nodes in it); the helper's own closed-loop load generator with 1 and 4
 *        connections for SECONDS each (load_c1, load_c4: req/s); then `wrk -t1
 *        -cC -dSECONDS --latency` with C = 1 and 4 when wrk is on PATH (wrk_c1,
 *        wrk_c4; ARBOR_BENCH_WRK=none skips it, or names the binary).
 *   big NODES GROUPS SECONDS        a tree of NODES callback tasks in GROUPS groups
 *        under the root, each task waiting on a one-hour arbor_task_after timer
 *        (1 + GROUPS + NODES nodes). Phases of SECONDS each: tree (GET
 *        /api/v1/tree with its default paging, one connection, back to back),
 *        tree_c4 (the same on 4 connections, or $ARBOR_BENCH_TREE_CONNS: the loop
 *        saturated, tree_cN), children (GET
 *        /api/v1/nodes/{group}/children, default limit, paging through every group
 *        from offset 0 to its end, one connection) and detail (GET
 *        /api/v1/nodes/{task} of tasks spread over the tree, 4 connections).
 *   sse CLIENTS RATE SECONDS        a generator task group under the root spawns
 *        tiny callback tasks (each ends in its start) on a 1 ms timer, enough for
 *        RATE recorded events per second (the rate kept by the ring's own count).
 *        Phase gen: the generator alone for SECONDS / 2 (the loop's own cost of
 *        recording). Phase sse: CLIENTS clients GET /api/v1/events?after=SEQ from
 *        the generator's start and follow it for SECONDS; then the generator stops
 *        and the clients get up to 5 s to catch up. Per client: events received,
 *        gap events and the events they said were missed, breaks in the seq
 *        without a gap event; delivery latency (event time_ns to its arrival in
 *        the client, the same monotonic clock); bytes. The server's connection
 *        limit is set to CLIENTS + 8 (the default, 64, would refuse 100 clients;
 *        $ARBOR_BENCH_MAX_CONNECTIONS sets it in every mode, 0: the default).
 *
 * RESULT lines: peer=arbor bench=admin mode=M phase=P then the helper's keys, then
 * arbor's: iter_max_ms, iter_p99_ms, iter_p999_ms (wall-clock busy time per
 * iteration), iter_cpu_max_ms, iter_cpu_p99_ms (the loop thread's CPU time per
 * iteration: preemption on a shared machine shows in the first, not here),
 * stall_top_ms and stall_top_at_s (the three longest and when, into the phase,
 * they ended), loop_busy_pct, cpu_ms and cpu_ms_per_req (getrusage, the whole
 * process), events_recorded and events_per_s. bench/run.sh runs every mode REPS times and reports
 * medians (min-max) beside supervisord's D. Not a test.
 */
#include <arbor.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_admin: %s: %s\n", what,
          rc < 0 ? arbor_strerror(rc) : rc > 0 ? strerror(rc) : "failed");
  exit(1);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ----------------------------------------------------------- statistics */

/* A histogram of durations: 1 us buckets below 100 ms, 1 ms buckets up to 100 s,
 * the exact maximum beside. For what comes by the million (loop iterations,
 * delivered events), where keeping every sample would cost more than it says. */
#define HFINE 100000
#define HCOARSE 100000
typedef struct {
  uint32_t *fine, *coarse;
  uint64_t n, over, max_ns, sum_ns;
} hist_t;

static void hist_init(hist_t *h) {
  memset(h, 0, sizeof *h);
  h->fine = calloc(HFINE, sizeof *h->fine);
  h->coarse = calloc(HCOARSE, sizeof *h->coarse);
  if (h->fine == NULL || h->coarse == NULL)
    die("calloc", ENOMEM);
}

static void hist_reset(hist_t *h) {
  memset(h->fine, 0, HFINE * sizeof *h->fine);
  memset(h->coarse, 0, HCOARSE * sizeof *h->coarse);
  h->n = h->over = h->max_ns = h->sum_ns = 0;
}

static void hist_free(hist_t *h) {
  free(h->fine);
  free(h->coarse);
}

static void hist_add(hist_t *h, uint64_t ns) {
  uint64_t us = ns / 1000;
  if (us < HFINE)
    h->fine[us]++;
  else if (us / 1000 - HFINE / 1000 < HCOARSE)
    h->coarse[us / 1000 - HFINE / 1000]++;
  else
    h->over++;
  h->n++;
  h->sum_ns += ns;
  if (ns > h->max_ns)
    h->max_ns = ns;
}

/* The q-quantile in ms (nearest rank; the bucket's lower edge, so a 1 us or
 * 1 ms resolution), or the maximum when it falls in the overflow. */
static double hist_pct_ms(const hist_t *h, double q) {
  if (h->n == 0)
    return 0;
  uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
  if (rank == 0)
    rank = 1;
  for (size_t i = 0; i < HFINE; i++)
    if ((seen += h->fine[i]) >= rank)
      return (double)i / 1e3;
  for (size_t i = 0; i < HCOARSE; i++)
    if ((seen += h->coarse[i]) >= rank)
      return (double)(i + HFINE / 1000);
  return (double)h->max_ns / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ../shared/peers/lib/sup_bench.py's pct(): linear interpolation between
 * closest ranks, so request latencies compare with supervisord's. Sorts xs. */
static double pct(double *xs, size_t n, double q) {
  if (n == 0)
    return 0;
  qsort(xs, n, sizeof *xs, cmp_double);
  double k = (double)(n - 1) * q;
  size_t lo = (size_t)k, hi = lo + 1 < n ? lo + 1 : n - 1;
  return xs[lo] + (xs[hi] - xs[lo]) * (k - (double)lo);
}

/* Request latencies in ms, every one kept (a phase makes at most a few 100k). */
typedef struct {
  double *v;
  size_t n, cap;
} samples_t;

static void samples_add(samples_t *s, double ms) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 4096;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (s->v == NULL)
      die("realloc", ENOMEM);
  }
  s->v[s->n++] = ms;
}

/* ====================================================== the helper (client) */

static int to_parent = -1, from_parent = -1;

/* A key=value list for the E line, appended to as a phase's figures come in. */
typedef struct {
  char s[3072];
} kv_t;

static void kv(kv_t *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kv(kv_t *k, const char *fmt, ...) {
  size_t len = strlen(k->s);
  if (len + 2 >= sizeof k->s)
    return;
  if (len > 0)
    k->s[len++] = ' ';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->s + len, sizeof k->s - len, fmt, ap);
  va_end(ap);
}

/* One line from arbor over the control pipe (blocking); returns its length. */
static size_t ctl_read_line(char *line, size_t max) {
  size_t n = 0;
  for (;;) {
    char c;
    ssize_t r = read(from_parent, &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      _exit(4);                  /* arbor went away */
    if (c == '\n' || n + 1 == max)
      break;
    line[n++] = c;
  }
  line[n] = '\0';
  return n;
}

/* Sends a control line and waits for arbor's "A <events recorded>". */
static uint64_t ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static uint64_t ctl(const char *fmt, ...) {
  char msg[4000];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof msg - 1)
    n = (int)sizeof msg - 2;
  msg[n++] = '\n';
  if (write(to_parent, msg, (size_t)n) != n)
    _exit(4);
  char line[64];
  ctl_read_line(line, sizeof line);
  return line[0] == 'A' ? strtoull(line + 1, NULL, 10) : 0;
}

/* ------------------------------------------- an HTTP/1.1 response parser
 *
 * Incremental, for one keep-alive connection: Content-Length or chunked bodies
 * (an event stream is chunked), the body handed to on_body as it comes. */
enum { RP_HEAD, RP_BODY, RP_CHUNK_LINE, RP_CHUNK_DATA, RP_CHUNK_CRLF, RP_TRAILER, RP_DONE };

typedef void (*body_cb)(void *arg, const char *d, size_t n);

typedef struct {
  int state, status, chunked, close;
  char head[8192];
  size_t hlen;
  char line[80];
  size_t llen;
  int64_t remain;                /* body or chunk bytes left; -1: until close */
  uint64_t body_bytes;
  body_cb on_body;
  void *arg;
} rparser_t;

static void rp_reset(rparser_t *p) {
  p->state = RP_HEAD;
  p->status = p->chunked = p->close = 0;
  p->hlen = p->llen = 0;
  p->remain = 0;
  p->body_bytes = 0;
}

/* The status line and the headers this client cares about. */
static void rp_parse_head(rparser_t *p) {
  p->head[p->hlen] = '\0';
  p->status = strncmp(p->head, "HTTP/1.", 7) == 0 ? atoi(p->head + 9) : -1;
  const char *cl = strcasestr(p->head, "\r\ncontent-length:");
  const char *te = strcasestr(p->head, "\r\ntransfer-encoding:");
  const char *cn = strcasestr(p->head, "\r\nconnection:");
  p->chunked = te != NULL && strncasecmp(te + 20 + strspn(te + 20, " "), "chunked", 7) == 0;
  p->close = cn != NULL && strncasecmp(cn + 13 + strspn(cn + 13, " "), "close", 5) == 0;
  if (p->chunked) {
    p->state = RP_CHUNK_LINE;
    p->llen = 0;
  } else if (cl != NULL) {
    p->remain = strtoll(cl + 17, NULL, 10);
    p->state = p->remain > 0 ? RP_BODY : RP_DONE;
  } else {
    p->remain = -1;
    p->state = RP_BODY;
  }
  p->hlen = 0;
}

static void rp_body(rparser_t *p, const char *d, size_t n) {
  p->body_bytes += n;
  if (p->on_body != NULL && n > 0)
    p->on_body(p->arg, d, n);
}

/* Consumes bytes until the response is complete (state RP_DONE); returns how
 * many it took. -1 on a response it cannot parse. */
static ssize_t rp_feed(rparser_t *p, const char *d, size_t n) {
  size_t i = 0;
  while (i < n && p->state != RP_DONE) {
    switch (p->state) {
    case RP_HEAD: {
      size_t old = p->hlen, room = sizeof p->head - 1 - p->hlen;
      size_t take = n - i < room ? n - i : room;
      if (take == 0)
        return -1;
      memcpy(p->head + p->hlen, d + i, take);
      p->hlen += take;
      size_t from = old > 3 ? old - 3 : 0;
      char *end = memmem(p->head + from, p->hlen - from, "\r\n\r\n", 4);
      if (end == NULL) {
        i += take;
        break;
      }
      size_t used = (size_t)(end + 4 - p->head) - old;
      p->hlen = (size_t)(end + 4 - p->head);
      i += used;
      rp_parse_head(p);
      break;
    }
    case RP_BODY:
    case RP_CHUNK_DATA: {
      size_t take = n - i;
      if (p->remain >= 0 && (uint64_t)p->remain < take)
        take = (size_t)p->remain;
      rp_body(p, d + i, take);
      i += take;
      if (p->remain >= 0 && (p->remain -= (int64_t)take) == 0)
        p->state = p->state == RP_BODY ? RP_DONE : RP_CHUNK_CRLF;
      p->llen = 0;
      break;
    }
    case RP_CHUNK_CRLF:
    case RP_CHUNK_LINE:
    case RP_TRAILER: {
      char c = d[i++];
      if (c != '\n') {
        if (p->llen + 1 < sizeof p->line)
          p->line[p->llen++] = c;
        break;
      }
      p->line[p->llen] = '\0';
      if (p->llen > 0 && p->line[p->llen - 1] == '\r')
        p->line[--p->llen] = '\0';
      if (p->state == RP_CHUNK_CRLF) {
        p->state = RP_CHUNK_LINE;
      } else if (p->state == RP_CHUNK_LINE) {
        char *e;
        p->remain = (int64_t)strtoull(p->line, &e, 16);
        if (e == p->line)
          return -1;
        p->state = p->remain > 0 ? RP_CHUNK_DATA : RP_TRAILER;
      } else if (p->llen == 0) {
        p->state = RP_DONE;
      }
      p->llen = 0;
      break;
    }
    }
  }
  return (ssize_t)i;
}

/* ------------------------------------------------------- connections */

static int port;

static int conn_open(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket", errno);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
    die("connect to the admin server", errno);
  return fd;
}

static void send_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      die("send", errno);
    buf += w;
    n -= (size_t)w;
  }
}

static void send_get(int fd, const char *path, const char *extra) {
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: bench_admin\r\n%s\r\n",
                   path, port, extra ? extra : "");
  send_all(fd, req, (size_t)n);
}

/* A whole body, kept when the caller wants to look at it. */
typedef struct {
  char *d;
  size_t n, cap;
} body_t;

static void body_keep(void *arg, const char *d, size_t n) {
  body_t *b = arg;
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->d = realloc(b->d, b->cap);
    if (b->d == NULL)
      die("realloc", ENOMEM);
  }
  memcpy(b->d + b->n, d, n);
  b->n += n;
  b->d[b->n] = '\0';
}

/* One blocking GET on a new connection; returns the status, the body in *body. */
static int get_once(const char *path, body_t *body) {
  int fd = conn_open();
  rparser_t *p = calloc(1, sizeof *p);
  rp_reset(p);
  p->on_body = body_keep;
  p->arg = body;
  body->n = 0;
  send_get(fd, path, "Connection: close\r\n");
  char buf[65536];
  while (p->state != RP_DONE) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0 && p->state == RP_BODY && p->remain < 0)
      p->state = RP_DONE;        /* a body that ends with the connection */
    if (r <= 0 || rp_feed(p, buf, (size_t)r) < 0)
      break;
  }
  int st = p->state == RP_DONE ? p->status : -1;
  free(p);
  close(fd);
  return st;
}

/* ----------------------------------------------------- closed-loop load */

/* The path of request number i (over all connections). */
typedef const char *(*path_fn)(size_t i, char *buf, size_t max);

typedef struct {
  int fd;
  rparser_t p;
  uint64_t t_sent;
} lconn_t;

typedef struct {
  samples_t lat;                 /* ms, per answered request */
  uint64_t ok, bad, reconnects, bytes;
  double secs;
} load_t;

static void lc_send(lconn_t *c, path_fn fn, size_t i) {
  char path[512];
  rp_reset(&c->p);
  c->p.on_body = NULL;
  send_get(c->fd, fn(i, path, sizeof path), NULL);
  c->t_sent = mono_ns();
}

static void lc_connect(lconn_t *c, int ep, size_t slot) {
  c->fd = conn_open();
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = slot};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
    die("epoll_ctl", errno);
}

/* CONNS kept-alive connections, each with one request outstanding (no
 * pipelining), for `seconds` or until max_requests are answered (0: no limit);
 * what is still outstanding then is not counted. A connection the server closes
 * is opened again (reconnects) and its request sent again. */
static void run_load(int conns, double seconds, size_t max_requests, path_fn fn, load_t *out) {
  memset(out, 0, sizeof *out);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  lconn_t *cs = calloc((size_t)conns, sizeof *cs);
  char *buf = malloc(1 << 16);
  if (ep < 0 || cs == NULL || buf == NULL)
    die("load generator", errno ? errno : ENOMEM);
  size_t issued = 0, done = 0;
  for (int k = 0; k < conns; k++) {
    lc_connect(&cs[k], ep, (size_t)k);
    if (max_requests == 0 || issued < max_requests)
      lc_send(&cs[k], fn, issued++);
  }
  uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(seconds * 1e9);
  while (max_requests ? done < max_requests : mono_ns() < end) {
    struct epoll_event evs[16];
    int wait_ms = 1000;
    if (max_requests == 0)
      wait_ms = (int)((end - mono_ns()) / 1000000) + 1;
    int n = epoll_wait(ep, evs, 16, wait_ms);
    if (n < 0 && errno == EINTR)
      continue;
    for (int e = 0; e < n; e++) {
      lconn_t *c = &cs[evs[e].data.u64];
      ssize_t r = recv(c->fd, buf, 1 << 16, 0);
      if (r < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (r > 0 && rp_feed(&c->p, buf, (size_t)r) >= 0 && c->p.state != RP_DONE)
        continue;
      uint64_t now = mono_ns();
      int reconnect = r <= 0 || c->p.state != RP_DONE || c->p.close;
      if (c->p.state == RP_DONE) {
        samples_add(&out->lat, (double)(now - c->t_sent) / 1e6);
        out->bytes += c->p.body_bytes;
        if (c->p.status == 200)
          out->ok++;
        else
          out->bad++;
        done++;
      }
      if (reconnect) {
        if (c->p.state != RP_DONE)
          out->bad++;            /* cut off mid-response */
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        lc_connect(c, ep, evs[e].data.u64);
        out->reconnects++;
      }
      if (max_requests == 0 || issued < max_requests)
        lc_send(c, fn, issued++);
    }
  }
  out->secs = (double)(mono_ns() - t0) / 1e9;
  for (int k = 0; k < conns; k++)
    close(cs[k].fd);
  close(ep);
  free(cs);
  free(buf);
}

/* The figures of a load phase as key=value pairs. */
static void load_kv(kv_t *k, load_t *l) {
  size_t n = l->lat.n;
  if (n > 0)
    qsort(l->lat.v, n, sizeof *l->lat.v, cmp_double);   /* max is the last */
  kv(k, "requests=%llu errors=%llu reconnects=%llu rps=%.1f bytes_per_resp=%.0f",
     (unsigned long long)l->ok, (unsigned long long)l->bad, (unsigned long long)l->reconnects,
     l->secs > 0 ? (double)n / l->secs : 0, n ? (double)l->bytes / (double)n : 0);
  kv(k, "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f", pct(l->lat.v, n, .5),
     pct(l->lat.v, n, .9), pct(l->lat.v, n, .99), n ? l->lat.v[n - 1] : 0);
  free(l->lat.v);
  l->lat.v = NULL;
}

/* One load phase: B, the load, E with its figures and `extra`. */
static void load_phase(const char *phase, int conns, double seconds, size_t max_requests,
                       path_fn fn, const char *extra) {
  load_t l;
  kv_t k = {""};
  ctl("B %s", phase);
  run_load(conns, seconds, max_requests, fn, &l);
  kv(&k, "conns=%d client=own", conns);
  load_kv(&k, &l);
  if (extra != NULL)
    kv(&k, "%s", extra);
  ctl("E %s %s", phase, k.s);
}

/* --------------------------------------------------------------- wrk */

/* wrk's binary: $ARBOR_BENCH_WRK ("none": no wrk), else wrk on PATH. */
static const char *wrk_path(void) {
  static char found[4096];
  const char *env = getenv("ARBOR_BENCH_WRK");
  if (env != NULL && *env != '\0')
    return strcmp(env, "none") == 0 ? NULL : env;
  const char *path = getenv("PATH");
  while (path != NULL && *path != '\0') {
    size_t len = strcspn(path, ":");
    snprintf(found, sizeof found, "%.*s/wrk", (int)len, path);
    if (access(found, X_OK) == 0)
      return found;
    path += len + (path[len] == ':');
  }
  return NULL;
}

/* "215.29us", "1.20ms", "2.01s", "1.00m" in ms; -1 when absent. */
static double wrk_ms(const char *text) {
  char *e;
  double v = strtod(text, &e);
  if (e == text)
    return -1;
  if (strncmp(e, "us", 2) == 0)
    return v / 1e3;
  if (strncmp(e, "ms", 2) == 0)
    return v;
  if (*e == 's')
    return v * 1e3;
  if (*e == 'm')
    return v * 60e3;
  return -1;
}

/* The value after `key` on wrk's output, as text; NULL when absent. */
static const char *wrk_after(const char *out, const char *key) {
  const char *p = strstr(out, key);
  return p ? p + strlen(key) + strspn(p + strlen(key), " \t") : NULL;
}

/* Runs `wrk -t1 -cCONNS -dSECONDS --latency URL` (as the peers ran it against
 * supervisord) and puts its figures in k. Returns -1 when it did not run. */
static int run_wrk(const char *bin, int conns, int seconds, const char *path, kv_t *k) {
  int p[2];
  if (pipe(p) < 0)
    return -1;
  char url[256], c[16], d[16];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  snprintf(c, sizeof c, "-c%d", conns);
  snprintf(d, sizeof d, "-d%ds", seconds);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execl(bin, "wrk", "-t1", c, d, "--latency", "--timeout", "10s", url, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  char out[16384];
  size_t n = 0;
  ssize_t r;
  while ((r = read(p[0], out + n, sizeof out - 1 - n)) > 0 || (r < 0 && errno == EINTR))
    if (r > 0)
      n += (size_t)r;
  out[n] = '\0';
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  const char *rps = wrk_after(out, "Requests/sec:");
  if (pid < 0 || rps == NULL) {
    fprintf(stderr, "bench_admin: %s did not run (status %d): %s\n", bin, st, out);
    return -1;
  }
  const char *req = strstr(out, " requests in ");
  const char *l50 = wrk_after(out, " 50%"), *l99 = wrk_after(out, " 99%");
  const char *non2xx = wrk_after(out, "Non-2xx or 3xx responses:");
  const char *serr = wrk_after(out, "Socket errors:");
  unsigned long long requests = 0;
  if (req != NULL) {
    const char *s = req;
    while (s > out && s[-1] >= '0' && s[-1] <= '9')
      s--;
    requests = strtoull(s, NULL, 10);
  }
  kv(k, "conns=%d client=wrk requests=%llu rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%lld", conns,
     requests, strtod(rps, NULL), l50 ? wrk_ms(l50) : -1, l99 ? wrk_ms(l99) : -1,
     non2xx ? strtoll(non2xx, NULL, 10) : 0);
  if (serr != NULL)
    kv(k, "socket_errors=\"%.*s\"", (int)strcspn(serr, "\n"), serr);
  return 0;
}

/* ------------------------------------------------------ helper: tree mode */

/* Occurrences of a needle in a body. */
static size_t count_of(const body_t *b, const char *needle) {
  size_t n = 0, len = strlen(needle);
  for (const char *p = b->d; p != NULL && (p = memmem(p, b->n - (size_t)(p - b->d), needle, len));
       p += len)
    n++;
  return n;
}

static const char *tree_path(size_t i, char *buf, size_t max) {
  (void)i;
  snprintf(buf, max, "/api/v1/tree");
  return buf;
}

static void helper_tree(int services, size_t calls, double seconds) {
  body_t b = {0};
  int st = get_once("/api/v1/tree", &b);
  if (st != 200) {
    fprintf(stderr, "bench_admin: GET /api/v1/tree: status %d: %.300s\n", st, b.d ? b.d : "");
    free(b.d);
    return;
  }
  char extra[256];
  snprintf(extra, sizeof extra, "services=%d resp_bytes=%zu nodes=%zu services_in_tree=%zu",
           services, b.n, count_of(&b, "\"id\":"), count_of(&b, "\"kind\":\"service\""));
  free(b.d);
  load_t warm;
  run_load(1, 0, 50, tree_path, &warm);          /* as supervisord's: 50 warm-up calls */
  free(warm.lat.v);
  load_phase("latency", 1, 0, calls, tree_path, extra);
  load_phase("load_c1", 1, seconds, 0, tree_path, NULL);
  load_phase("load_c4", 4, seconds, 0, tree_path, NULL);
  const char *wrk = wrk_path();
  if (wrk == NULL) {
    fprintf(stderr, "bench_admin: no wrk (ARBOR_BENCH_WRK or PATH): wrk phases skipped\n");
    return;
  }
  for (int c = 1; c <= 4; c += 3) {
    kv_t k = {""};
    char phase[16];
    snprintf(phase, sizeof phase, "wrk_c%d", c);
    ctl("B %s", phase);
    if (run_wrk(wrk, c, (int)(seconds + 0.5), "/api/v1/tree", &k) < 0)
      kv(&k, "conns=%d client=wrk failed=1", c);
    ctl("E %s %s", phase, k.s);
  }
}

/* ------------------------------------------------------- helper: big mode */

static uint64_t *groups, *group_size, *task_ids;
static size_t ngroups, ntask_ids, page_g, page_off;

/* The numbers after each `"key":` in a body, in order, into out (at most max). */
static size_t numbers_of(const body_t *b, const char *key, uint64_t *out, size_t max) {
  char needle[64];
  snprintf(needle, sizeof needle, "\"%s\":", key);
  size_t n = 0, len = strlen(needle);
  for (const char *p = b->d; n < max && p != NULL &&
                             (p = memmem(p, b->n - (size_t)(p - b->d), needle, len));
       p += len)
    out[n++] = strtoull(p + len, NULL, 10);
  return n;
}

static const char *children_path(size_t i, char *buf, size_t max) {
  (void)i;
  snprintf(buf, max, "/api/v1/nodes/%llu/children?offset=%zu",
           (unsigned long long)groups[page_g], page_off);
  /* Next page; after a group's last page, the next group's first. */
  if ((page_off += 100) >= group_size[page_g]) {
    page_off = 0;
    page_g = (page_g + 1) % ngroups;
  }
  return buf;
}

static const char *detail_path(size_t i, char *buf, size_t max) {
  snprintf(buf, max, "/api/v1/nodes/%llu", (unsigned long long)task_ids[i % ntask_ids]);
  return buf;
}

/* The groups (the root's children) and their sizes, then 1000 task ids spread
 * over the tree: 100 pages of 10 at evenly spaced offsets. */
static int discover(void) {
  body_t b = {0};
  char path[256];
  if (get_once("/api/v1/tree?depth=1&limit=1000", &b) != 200)
    return -1;
  uint64_t ids[1001];
  size_t n = numbers_of(&b, "id", ids, 1001);
  ngroups = n > 0 ? n - 1 : 0;              /* the first is the root */
  groups = calloc(ngroups + 1, sizeof *groups);
  group_size = calloc(ngroups + 1, sizeof *group_size);
  task_ids = calloc(1000, sizeof *task_ids);
  for (size_t g = 0; g < ngroups; g++) {
    groups[g] = ids[g + 1];
    snprintf(path, sizeof path, "/api/v1/nodes/%llu/children?limit=1", (unsigned long long)groups[g]);
    if (get_once(path, &b) != 200 || numbers_of(&b, "total", &group_size[g], 1) != 1)
      return -1;
  }
  for (size_t j = 0; j < 100 && ngroups > 0; j++) {
    size_t g = j % ngroups;
    snprintf(path, sizeof path, "/api/v1/nodes/%llu/children?offset=%llu&limit=10",
             (unsigned long long)groups[g], (unsigned long long)(group_size[g] * (j / ngroups + 1) /
                                                                  (100 / ngroups + 2)));
    if (get_once(path, &b) != 200)
      return -1;
    uint64_t got[40];
    size_t k = numbers_of(&b, "id", got, 40);
    /* each child's "id" (its "parent_id" does not match "\"id\":") */
    for (size_t t = 0; t < k && ntask_ids < 1000; t++)
      task_ids[ntask_ids++] = got[t];
  }
  free(b.d);
  return ngroups > 0 && ntask_ids > 0 ? 0 : -1;
}

static void helper_big(size_t nodes, double seconds) {
  if (discover() != 0) {
    fprintf(stderr, "bench_admin: could not find the groups and tasks through the API\n");
    return;
  }
  body_t b = {0};
  int st = get_once("/api/v1/tree", &b);
  uint64_t count = 0, depth = 0;
  numbers_of(&b, "count", &count, 1);
  numbers_of(&b, "depth", &depth, 1);
  char extra[512];
  snprintf(extra, sizeof extra,
           "tree_nodes=%zu groups=%zu status=%d resp_bytes=%zu nodes_in_resp=%zu count=%llu "
           "truncated=%d",
           nodes + ngroups + 1, ngroups, st, b.n, count_of(&b, "\"id\":"),
           (unsigned long long)count, count_of(&b, "\"truncated\":true") > 0);
  free(b.d);
  load_phase("tree", 1, seconds, 0, tree_path, extra);
  /* $ARBOR_BENCH_TREE_CONNS: the connections of the tree_cN phase (default 4). */
  const char *tc = getenv("ARBOR_BENCH_TREE_CONNS");
  int conns = tc != NULL && atoi(tc) > 0 ? atoi(tc) : 4;
  char phase[32];
  snprintf(phase, sizeof phase, "tree_c%d", conns);
  load_phase(phase, conns, seconds, 0, tree_path, extra);
  load_phase("children", 1, seconds, 0, children_path, extra);
  load_phase("detail", 4, seconds, 0, detail_path, extra);
}

/* -------------------------------------------------------- helper: sse mode */

typedef struct {
  int fd, ok;                    /* ok: answered 200 */
  rparser_t p;
  char line[16384];              /* a line being assembled */
  size_t llen;
  int gap_pending;               /* a gap event's data line comes next */
  uint64_t last, events, gaps, missed, breaks, beats;
} sse_client_t;

static hist_t sse_lat;           /* event time_ns -> read by the client */
static uint64_t sse_now;         /* when the bytes being parsed were read */

static void sse_line(sse_client_t *c, const char *l, size_t n) {
  if (n >= 4 && memcmp(l, "id: ", 4) == 0) {
    uint64_t seq = strtoull(l + 4, NULL, 10);
    if (seq != c->last + 1 && !c->gap_pending && seq > c->last)
      c->breaks += seq - c->last - 1;     /* events skipped with no gap event */
    c->last = seq;
    c->events++;
    c->gap_pending = 0;
  } else if (n >= 10 && memcmp(l, "event: gap", 10) == 0) {
    c->gaps++;
    c->gap_pending = 1;
  } else if (n >= 6 && memcmp(l, "data: ", 6) == 0) {
    const char *m = c->gap_pending ? memmem(l, n, "\"missed\":", 9) : NULL;
    const char *t = m ? NULL : memmem(l, n, "\"time_ns\":", 10);
    if (m != NULL)
      c->missed += strtoull(m + 9, NULL, 10);
    if (t != NULL) {
      uint64_t ns = strtoull(t + 10, NULL, 10);
      hist_add(&sse_lat, sse_now > ns ? sse_now - ns : 0);
    }
  } else if (n >= 1 && l[0] == ':') {
    c->beats++;
  }
}

/* The stream's bytes, split into lines. */
static void sse_body(void *arg, const char *d, size_t n) {
  sse_client_t *c = arg;
  while (n > 0) {
    const char *nl = memchr(d, '\n', n);
    size_t take = nl ? (size_t)(nl - d) : n;
    if (c->llen + take < sizeof c->line) {
      memcpy(c->line + c->llen, d, take);
      c->llen += take;
    } else {
      c->llen = sizeof c->line;            /* too long: dropped */
    }
    if (nl == NULL)
      return;
    if (c->llen < sizeof c->line)
      sse_line(c, c->line, c->llen);
    c->llen = 0;
    d += take + 1;
    n -= take + 1;
  }
}

/* Reads whatever the clients have until `until` (monotonic ns), or, with
 * want_seq, until every live client has seen that seq. */
static void sse_pump(sse_client_t *cs, int nc, int ep, uint64_t until, uint64_t want_seq) {
  static char buf[1 << 16];
  while (mono_ns() < until) {
    if (want_seq) {
      int behind = 0;
      for (int i = 0; i < nc; i++)
        behind += cs[i].fd >= 0 && cs[i].last < want_seq;
      if (behind == 0)
        return;
    }
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 10);
    sse_now = mono_ns();
    for (int e = 0; e < n; e++) {
      sse_client_t *c = &cs[evs[e].data.u64];
      ssize_t r = recv(c->fd, buf, sizeof buf, 0);
      if (r < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (r <= 0 || rp_feed(&c->p, buf, (size_t)r) < 0 || c->p.state == RP_DONE) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);  /* the stream ended: gone */
        close(c->fd);
        c->fd = -1;
        continue;
      }
      if (c->p.status == 200)
        c->ok = 1;
    }
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void helper_sse(int clients, double seconds) {
  kv_t k = {""};
  /* The generator alone: the loop's cost of spawning, finishing and recording. */
  ctl("B gen");
  struct timespec half = {(time_t)(seconds / 2), (long)((seconds / 2 - (time_t)(seconds / 2)) * 1e9)};
  nanosleep(&half, NULL);
  uint64_t g_last = ctl("S");
  kv(&k, "clients=0 last_seq=%llu", (unsigned long long)g_last);
  ctl("E gen %s", k.s);

  /* The clients subscribe from the generator's first event (?after=s0), so a
   * client that connects late still owes every event: none lost to timing. */
  hist_init(&sse_lat);
  uint64_t s0 = ctl("B sse");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  sse_client_t *cs = calloc((size_t)clients, sizeof *cs);
  char path[128];
  snprintf(path, sizeof path, "/api/v1/events?after=%llu", (unsigned long long)s0);
  for (int i = 0; i < clients; i++) {
    sse_client_t *c = &cs[i];
    rp_reset(&c->p);
    c->p.on_body = sse_body;
    c->p.arg = c;
    c->last = s0;
    c->fd = conn_open();
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    send_get(c->fd, path, "Accept: text/event-stream\r\n");
  }
  uint64_t t0 = mono_ns();
  sse_pump(cs, clients, ep, t0 + (uint64_t)(seconds * 1e9), 0);
  /* Stop generating; give the clients up to 5 s to catch up with the last one. */
  uint64_t last = ctl("S");
  uint64_t t_stop = mono_ns();
  sse_pump(cs, clients, ep, t_stop + 5000000000u, last);
  double catchup_s = (double)(mono_ns() - t_stop) / 1e9;

  uint64_t owed = last > s0 ? last - s0 : 0, *got = calloc((size_t)clients, sizeof *got);
  uint64_t events = 0, gaps = 0, missed = 0, breaks = 0, bytes = 0, live = 0, ok = 0;
  for (int i = 0; i < clients; i++) {
    sse_client_t *c = &cs[i];
    got[i] = c->events;
    events += c->events;
    gaps += c->gaps;
    missed += c->missed;
    breaks += c->breaks;
    bytes += c->p.body_bytes;
    ok += c->ok;
    if (c->fd >= 0) {
      live++;
      close(c->fd);
    }
  }
  qsort(got, (size_t)clients, sizeof *got, cmp_u64);
  close(ep);
  kv_t r = {""};
  kv(&r, "clients=%d answered=%llu live_at_end=%llu events_owed=%llu", clients,
     (unsigned long long)ok, (unsigned long long)live, (unsigned long long)owed);
  kv(&r, "events_min=%llu events_median=%llu events_max=%llu delivered_pct=%.2f",
     (unsigned long long)got[0], (unsigned long long)got[clients / 2],
     (unsigned long long)got[clients - 1],
     owed ? 100.0 * (double)events / ((double)owed * clients) : 0);
  kv(&r, "gap_events=%llu missed=%llu breaks=%llu catchup_s=%.3f",
     (unsigned long long)gaps, (unsigned long long)missed, (unsigned long long)breaks, catchup_s);
  kv(&r, "delivered_per_s=%.0f mbit_per_s=%.1f lat_p50_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f",
     (double)events / seconds, (double)bytes * 8 / 1e6 / ((double)(t_stop - t0) / 1e9 + catchup_s),
     hist_pct_ms(&sse_lat, .5), hist_pct_ms(&sse_lat, .99), (double)sse_lat.max_ns / 1e6);
  ctl("E sse %s", r.s);
  free(got);
  free(cs);
  hist_free(&sse_lat);
}

/* The helper: waits for arbor's "P <port>" (everything is up), runs the mode's
 * phases, says "Q". */
static void helper_main(const char *mode, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  char line[64];
  ctl_read_line(line, sizeof line);
  if (line[0] != 'P')
    _exit(0);                    /* arbor could not start: nothing to measure */
  port = atoi(line + 2);
  if (strcmp(mode, "tree") == 0)
    helper_tree(atoi(argv[2]), strtoull(argv[3], NULL, 10), strtod(argv[4], NULL));
  else if (strcmp(mode, "big") == 0)
    helper_big(strtoull(argv[2], NULL, 10), strtod(argv[4], NULL));
  else
    helper_sse(atoi(argv[2]), strtod(argv[4], NULL));
  ctl("Q");
}

/* ====================================================== arbor (the server) */

static uv_loop_t loop;
static arbor_runtime_t *rt;
static arbor_admin_t *admin;
static int to_helper = -1, from_helper = -1;
static const char *mode;

/* ------------------------------------------------------------ stall meter
 *
 * A prepare callback runs once per loop iteration, just before the poll. The
 * time from one to the next, less what the loop spent blocked in epoll_wait
 * meanwhile, is what that iteration kept the loop busy. */
static uv_prepare_t meter;
static hist_t stalls, stalls_cpu;
static int measuring;
static uint64_t last_cpu, last_t, last_idle, busy_sum, top[3], top_at[3], phase_t0;
static struct rusage ru0;
static arbor_events_stats_t ev0;

/* This thread's CPU time: an iteration's wall-clock busy time also counts the
 * time the kernel gave the core to someone else (a shared 2-core machine); its
 * CPU time does not, so the two together tell arbor's work from the machine's. */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_meter(uv_prepare_t *h) {
  uint64_t t = uv_hrtime(), idle = uv_metrics_idle_time(h->loop), cpu = thread_cpu_ns();
  if (measuring && last_t != 0) {
    uint64_t busy = (t - last_t) - (idle - last_idle);
    hist_add(&stalls, busy);
    hist_add(&stalls_cpu, cpu - last_cpu);
    busy_sum += busy;
    for (int i = 0; i < 3; i++)
      if (busy > top[i]) {
        memmove(&top[i + 1], &top[i], (size_t)(2 - i) * sizeof *top);
        memmove(&top_at[i + 1], &top_at[i], (size_t)(2 - i) * sizeof *top_at);
        top[i] = busy;
        top_at[i] = t - phase_t0;          /* when it ended, into the phase */
        break;
      }
  }
  last_t = t;
  last_idle = idle;
  last_cpu = cpu;
}

static void phase_begin(void) {
  hist_reset(&stalls);
  hist_reset(&stalls_cpu);
  last_cpu = thread_cpu_ns();
  busy_sum = 0;
  memset(top, 0, sizeof top);
  memset(top_at, 0, sizeof top_at);
  getrusage(RUSAGE_SELF, &ru0);
  arbor_events_stats(rt, &ev0);
  phase_t0 = uv_hrtime();
  last_t = phase_t0;
  last_idle = uv_metrics_idle_time(&loop);
  measuring = 1;
}

static double cpu_ms(const struct rusage *a, const struct rusage *b) {
  return (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec) * 1e3 +
         (double)(b->ru_utime.tv_usec - a->ru_utime.tv_usec) / 1e3 +
         (double)(b->ru_stime.tv_sec - a->ru_stime.tv_sec) * 1e3 +
         (double)(b->ru_stime.tv_usec - a->ru_stime.tv_usec) / 1e3;
}

/* Prints the phase's RESULT line: the helper's figures, then ours. */
static void phase_end(const char *phase, const char *helper_kv) {
  measuring = 0;
  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  arbor_events_stats_t ev1;
  arbor_events_stats(rt, &ev1);
  double wall = (double)(uv_hrtime() - phase_t0) / 1e9, cpu = cpu_ms(&ru0, &ru1);
  const char *rq = strstr(helper_kv, "requests=");
  unsigned long long requests = rq ? strtoull(rq + 9, NULL, 10) : 0;
  printf("RESULT peer=arbor bench=admin mode=%s phase=%s %s iter_max_ms=%.3f iter_p99_ms=%.3f "
         "iter_p999_ms=%.3f stall_top_ms=%.3f,%.3f,%.3f stall_top_at_s=%.3f,%.3f,%.3f iter_cpu_max_ms=%.3f iter_cpu_p99_ms=%.3f iterations=%llu loop_busy_pct=%.1f "
         "cpu_ms=%.1f cpu_ms_per_req=%.4f events_recorded=%llu events_per_s=%.0f "
         "events_dropped=%llu wall_s=%.2f\n",
         mode, phase, helper_kv, (double)stalls.max_ns / 1e6, hist_pct_ms(&stalls, .99),
         hist_pct_ms(&stalls, .999), (double)top[0] / 1e6, (double)top[1] / 1e6,
         (double)top[2] / 1e6, (double)top_at[0] / 1e9, (double)top_at[1] / 1e9,
         (double)top_at[2] / 1e9, (double)stalls_cpu.max_ns / 1e6, hist_pct_ms(&stalls_cpu, .99),
         (unsigned long long)stalls.n,
         wall > 0 ? 100.0 * (double)busy_sum / 1e9 / wall : 0, cpu,
         requests ? cpu / (double)requests : 0, (unsigned long long)(ev1.recorded - ev0.recorded),
         wall > 0 ? (double)(ev1.recorded - ev0.recorded) / wall : 0,
         (unsigned long long)(ev1.dropped - ev0.dropped), wall);
  fflush(stdout);
}

/* ------------------------------------------------ sse mode: the generator */

static arbor_node_t *gen_group;
static uv_timer_t gen_timer;
static int gen_timer_open;
static uint64_t gen_rate, gen_t0, gen_rec0, gen_spawned;

static int tiny_start(arbor_node_t *task, void *arg) {
  (void)arg;
  return arbor_task_done(task);
}

/* Every ms: spawn enough tiny tasks to bring the events recorded since the start
 * up to rate x elapsed (the ring's own count, so whatever a task records counts;
 * a late tick catches up, at most rate/50 tasks at a time). */
static void on_gen_tick(uv_timer_t *h) {
  (void)h;
  arbor_events_stats_t st;
  arbor_events_stats(rt, &st);
  double want = (double)gen_rate * (double)(uv_hrtime() - gen_t0) / 1e9;
  double have = (double)(st.recorded - gen_rec0);
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
  }
}

static void gen_start(void) {
  arbor_events_stats_t st;
  arbor_events_stats(rt, &st);
  gen_t0 = uv_hrtime();
  gen_rec0 = st.recorded;
  gen_spawned = 0;
  uv_timer_start(&gen_timer, on_gen_tick, 1, 1);
}

/* ------------------------------------------------------ the control pipe */

static uv_poll_t ctl_poll;
static char ctl_buf[8192];
static size_t ctl_len;

static void on_closed(uv_handle_t *h) { (void)h; }

static void reply(uint64_t value) {
  char line[32];
  int n = snprintf(line, sizeof line, "A %llu\n", (unsigned long long)value);
  if (write(to_helper, line, (size_t)n) != n)
    fprintf(stderr, "bench_admin: the helper went away\n");
}

static uint64_t recorded_now(void) {
  arbor_events_stats_t st;
  arbor_events_stats(rt, &st);
  return st.recorded;
}

/* The end: every handle of ours closed, everything stopped; arbor_run returns
 * once every node has finished (and closes the runtime, the admin server too). */
static void finish(void) {
  uv_close((uv_handle_t *)&ctl_poll, on_closed);
  uv_close((uv_handle_t *)&meter, on_closed);
  if (gen_timer_open)
    uv_close((uv_handle_t *)&gen_timer, on_closed);
  gen_timer_open = 0;
  int rc = arbor_shutdown(rt, 0);
  if (rc < 0)
    die("arbor_shutdown", rc);
}

/* B PHASE, E PHASE KV..., S (stop the generator), Q. Each gets "A <events
 * recorded>" back, so the helper goes on only once we have done it. */
static void ctl_line(char *line) {
  char *arg = strchr(line, ' ');
  if (arg != NULL)
    *arg++ = '\0';
  if (line[0] == 'B' && arg != NULL) {
    if (gen_timer_open)
      gen_start();
    phase_begin();
    reply(gen_timer_open ? gen_rec0 : recorded_now());
  } else if (line[0] == 'E' && arg != NULL) {
    char *kvs = strchr(arg, ' ');
    if (kvs != NULL)
      *kvs++ = '\0';
    if (gen_timer_open)
      uv_timer_stop(&gen_timer);
    phase_end(arg, kvs ? kvs : "");
    reply(recorded_now());
  } else if (line[0] == 'S') {
    if (gen_timer_open)
      uv_timer_stop(&gen_timer);
    reply(recorded_now());
  } else if (line[0] == 'Q') {
    reply(0);
    finish();
  }
}

static void on_ctl(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  ssize_t r = status < 0 ? -1 : read(from_helper, ctl_buf + ctl_len, sizeof ctl_buf - 1 - ctl_len);
  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (r <= 0) {
    fprintf(stderr, "bench_admin: the helper ended early\n");
    finish();
    return;
  }
  ctl_len += (size_t)r;
  char *start = ctl_buf, *nl;
  while ((nl = memchr(start, '\n', ctl_len - (size_t)(start - ctl_buf))) != NULL) {
    *nl = '\0';
    ctl_line(start);
    if (uv_is_closing((uv_handle_t *)&ctl_poll))
      return;
    start = nl + 1;
  }
  ctl_len -= (size_t)(start - ctl_buf);
  memmove(ctl_buf, start, ctl_len);
}

/* ----------------------------------------------------- the trees to serve */

static arbor_node_t **svcs;
static size_t nsvcs;
static uint64_t started, want_started;
static uv_prepare_t ready_watch;

static int hour_start(arbor_node_t *task, void *arg);

static void on_hour(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_task_done(task);
}

/* A big tree's task: waits an hour on the runtime's timer heap. */
static int hour_start(arbor_node_t *task, void *arg) {
  (void)arg;
  started++;
  return arbor_task_after(task, 3600 * 1000, on_hour);
}

static void build_tree(int services) {
  arbor_node_t *sup;
  int rc = arbor_supervisor_new(arbor_root(rt),
                                &(arbor_sup_opts_t){.name = "sleepers", .parallel_stop = 1}, &sup);
  if (rc < 0)
    die("arbor_supervisor_new", rc);
  static char *argv[] = {"/bin/sleep", "3600", NULL};
  svcs = calloc((size_t)services, sizeof *svcs);
  nsvcs = (size_t)services;
  for (size_t i = 0; i < nsvcs; i++) {
    char name[24];
    snprintf(name, sizeof name, "s%03zu", i);
    rc = arbor_service_add(sup, &(arbor_service_spec_t){.name = name, .argv = argv}, &svcs[i]);
    if (rc < 0)
      die("arbor_service_add", rc);
    arbor_node_ref(svcs[i]);
  }
}

static void build_big(size_t nodes, size_t ngroup) {
  want_started = nodes;
  for (size_t g = 0; g < ngroup; g++) {
    char name[24];
    snprintf(name, sizeof name, "g%03zu", g);
    arbor_node_t *grp;
    int rc = arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = name}, &grp);
    if (rc < 0)
      die("arbor_group_new", rc);
    size_t n = nodes / ngroup + (g < nodes % ngroup);
    for (size_t i = 0; i < n; i++) {
      rc = arbor_task_spawn(grp, &(arbor_task_spec_t){.name = "t", .start = hour_start}, NULL);
      if (rc < 0)
        die("arbor_task_spawn", rc);
    }
  }
}

static void build_sse(uint64_t rate) {
  int rc = arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = "gen"}, &gen_group);
  if (rc < 0)
    die("arbor_group_new", rc);
  gen_rate = rate;
  uv_timer_init(&loop, &gen_timer);
  uv_unref((uv_handle_t *)&gen_timer);
  gen_timer_open = 1;
}

/* Everything is up when every service runs a program (tree) or every task waits
 * on its timer (big). */
static int tree_ready(void) {
  for (size_t i = 0; i < nsvcs; i++) {
    arbor_service_info_t si;
    if (arbor_service_info(svcs[i], &si) != 0 || si.phase != ARBOR_PHASE_RUNNING || si.pid <= 0)
      return 0;
  }
  return started >= want_started;
}

static void on_ready_watch(uv_prepare_t *h) {
  if (!tree_ready())
    return;
  uv_close((uv_handle_t *)h, on_closed);
  char line[32];
  int n = snprintf(line, sizeof line, "P %d\n", arbor_admin_port(admin));
  if (write(to_helper, line, (size_t)n) != n)
    die("write to the helper", errno);
  uv_poll_init(&loop, &ctl_poll, from_helper);
  uv_poll_start(&ctl_poll, UV_READABLE, on_ctl);
}

/* ------------------------------------------------------------------ main */

static int usage(const char *prog) {
  fprintf(stderr,
          "usage: %s tree SERVICES CALLS SECONDS   GET /api/v1/tree with process services\n"
          "       %s big NODES GROUPS SECONDS      a big tree served with default paging\n"
          "       %s sse CLIENTS RATE SECONDS      event streams following RATE events/s\n",
          prog, prog, prog);
  return 2;
}

int main(int argc, char **argv) {
  mode = argc > 1 ? argv[1] : "";
  if (argc != 5 || (strcmp(mode, "tree") != 0 && strcmp(mode, "big") != 0 &&
                    strcmp(mode, "sse") != 0))
    return usage(argv[0]);
  signal(SIGPIPE, SIG_IGN);
  int down[2], up[2];
  if (pipe(down) < 0 || pipe(up) < 0)
    die("pipe", errno);
  fflush(stdout);
  pid_t helper = fork();
  if (helper < 0)
    die("fork", errno);
  if (helper == 0) {
    close(down[1]);
    close(up[0]);
    from_parent = down[0];
    to_parent = up[1];
    helper_main(mode, argv);
    _exit(0);
  }
  close(down[0]);
  close(up[1]);
  to_helper = down[1];
  from_helper = up[0];
  fcntl(from_helper, F_SETFL, O_NONBLOCK);
  fcntl(to_helper, F_SETFD, FD_CLOEXEC);
  fcntl(from_helper, F_SETFD, FD_CLOEXEC);

  if (uv_loop_init(&loop) != 0 || uv_loop_configure(&loop, UV_METRICS_IDLE_TIME) != 0)
    die("uv_loop_init", 0);
  int rc = arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1});
  if (rc < 0)
    die("arbor_runtime_new", rc);
  unsigned max_conn = 0;
  if (strcmp(mode, "tree") == 0) {
    build_tree(atoi(argv[2]));
  } else if (strcmp(mode, "big") == 0) {
    size_t g = strtoull(argv[3], NULL, 10);
    build_big(strtoull(argv[2], NULL, 10), g ? g : 1);
  } else {
    build_sse(strtoull(argv[3], NULL, 10));
    max_conn = (unsigned)atoi(argv[2]) + 8;
  }
  /* $ARBOR_BENCH_MAX_CONNECTIONS: the server's limit (0: its default, 64). */
  if (getenv("ARBOR_BENCH_MAX_CONNECTIONS") != NULL)
    max_conn = (unsigned)atoi(getenv("ARBOR_BENCH_MAX_CONNECTIONS"));
  rc = arbor_admin_start(rt, &(arbor_admin_opts_t){.max_connections = max_conn}, &admin);
  if (rc < 0) {
    fprintf(stderr, "bench_admin: arbor_admin_start: %s\n", arbor_strerror(rc));
    close(to_helper);            /* the helper ends without a port */
    if (gen_timer_open)
      uv_close((uv_handle_t *)&gen_timer, on_closed);
    arbor_shutdown(rt, 1);
  } else {
    hist_init(&stalls);
    hist_init(&stalls_cpu);
    uv_prepare_init(&loop, &meter);
    uv_prepare_start(&meter, on_meter);
    uv_unref((uv_handle_t *)&meter);
    uv_prepare_init(&loop, &ready_watch);
    uv_prepare_start(&ready_watch, on_ready_watch);
  }
  int run_rc = arbor_run(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(&loop);
  int st = 0;
  waitpid(helper, &st, 0);
  if (stalls.fine != NULL) {
    hist_free(&stalls);
    hist_free(&stalls_cpu);
  }
  free(svcs);
  if (run_rc < 0 && run_rc != ARBOR_ECANCELED)
    fprintf(stderr, "bench_admin: arbor_run: %s\n", arbor_strerror(run_rc));
  if (closed != 0)
    fprintf(stderr, "bench_admin: uv_loop_close: %s\n", uv_strerror(closed));
  return rc < 0 || closed != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}
