/* tests/http/test_load.c - the admin server under load (http/server.c,
 * stream.c, events.c): many slow readers and many idle connections do not grow
 * its memory past the configured limits, and it goes on answering others.
 *
 *   - 100 SSE clients with a small receive buffer, read one byte per poll by a
 *     thread of their own, while the tree records tens of thousands of events:
 *     each stream holds at most one batch of formatted events (events.c) and
 *     MHD's connection pool (connection_memory), a client that falls a ring
 *     behind gets a gap event, none is cut off; and what they have not read
 *     waits in the ring, not in the kernel: no server socket's send queue
 *     holds more than a capped send buffer (stream.c, STREAM_SNDBUF);
 *   - 1,000 idle keep-alive connections (RLIMIT_NOFILE raised to its hard limit
 *     as needed; skipped when that is too low) with max_connections set for
 *     them: bounded memory, /healthz answered on another connection, and one
 *     connection more is told 503 and closed.
 * Memory is the process's RSS (the clients are raw sockets: their buffers are
 * the kernel's), asserted against connections x (connection_memory + a
 * stream's batch) + a base. Under ASan (its quarantine keeps freed memory) and
 * valgrind the load runs and the behaviour is checked, not the RSS.
 *
 * ARBOR_LOAD_REPORT=1 also prints RSS before and after and the p50 / p99 of
 * /healthz round trips on a keep-alive connection during each load, the
 * longest loop iteration meanwhile, and the same while the tasks record their
 * events (a batch before each round trip: every stream is woken), with and
 * without the SSE clients: the figures of docs/RELIABILITY.md ("Load"). The
 * test asserts on no time.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "http/httpc.h"
#include "http/server_fixture.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define SSE_CLIENTS 100
#define IDLE_CONNECTIONS 1000
#define BURST_TASKS 6000         /* about 5 events each: several rings' worth */
#define SSE_BATCH_BOUND (2 * 16384)  /* events.c: one batch (16 KiB) plus one event */
#define RSS_BASE_SLACK (24u << 20)   /* the tree's retained nodes, allocator slack */
#define LATENCY_SAMPLES 200
#define SSE_SNDBUF_BOUND (128u << 10)  /* stream.c's STREAM_SNDBUF, doubled by Linux, x2 */

/* ------------------------------------------------------------ fixtures */

static int report(void) { return getenv("ARBOR_LOAD_REPORT") != NULL; }

static int rss_checked(void) { return !UNDER_ASAN && !RUNNING_ON_VALGRIND; }

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f != NULL) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* A connection to the server whose receive buffer is about `rcvbuf` bytes
 * (set before connect, so the window is small from the start); 0: default. */
static int connect_small(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (rcvbuf > 0)
    assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_all(int fd, const char *s) {
  size_t n = strlen(s);
  assert_int_eq(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* The most bytes waiting in the send queue of one of the server's connections
 * (the server is in this process: its sockets are among our fds), and their
 * sum. What a slow client has not read yet waits there, in kernel memory the
 * RSS does not show. */
static void server_backlog(int port, size_t *max, size_t *sum) {
  *max = *sum = 0;
  struct rlimit rl;
  int top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
  for (int fd = 0; fd < top; fd++) {
    struct sockaddr_in self, peer;
    socklen_t len = sizeof self, plen = sizeof peer;
    if (getsockname(fd, (struct sockaddr *)&self, &len) != 0 || self.sin_family != AF_INET ||
        ntohs(self.sin_port) != port ||
        getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
      continue;                  /* not a socket, not the server's, or its listener */
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0)
      continue;
    *sum += (size_t)queued;
    if ((size_t)queued > *max)
      *max = (size_t)queued;
  }
}

/* ----------------------------------------------- /healthz round trips */

/* One keep-alive connection timing GET /healthz, the loop driven meanwhile. */
struct probe {
  int fd;
  char buf[2048];
  size_t len;
};

static int probe_answered(void *arg) {
  struct probe *p = arg;
  ssize_t n;
  while (p->len + 1 < sizeof p->buf &&
         (n = recv(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len, MSG_DONTWAIT)) > 0)
    p->len += (size_t)n;
  p->buf[p->len] = '\0';
  return strstr(p->buf, "{\"status\":\"ok\"}") != NULL;
}

/* The longest loop iteration while the round trips run (check to check). */
static uint64_t it_last, it_max;

static void it_check(uv_check_t *h) {
  (void)h;
  uint64_t now = uv_hrtime();
  if (it_last != 0 && now - it_last > it_max)
    it_max = now - it_last;
  it_last = now;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Asserts /healthz answers on a connection of its own; with ARBOR_LOAD_REPORT
 * times LATENCY_SAMPLES round trips and prints p50 / p99 / max. step, when not
 * NULL, runs before each round trip (it adds to the load: records events). */
static void healthz_round_trips_with(struct fx *f, const char *load, void (*step)(void *),
                                     void *arg) {
  struct probe p = {.fd = connect_small(f->port, 0)};
  int samples = report() ? LATENCY_SAMPLES : 3;
  uint64_t *us = calloc((size_t)samples, sizeof *us);
  assert_non_null(us);
  uv_check_t chk;
  uv_check_init(&f->loop, &chk);
  uv_check_start(&chk, it_check);
  it_last = it_max = 0;
  for (int i = 0; i < samples; i++) {
    p.len = 0;
    if (step != NULL)
      step(arg);
    uint64_t t0 = uv_hrtime();
    send_all(p.fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    httpc_run_until(&f->loop, probe_answered, &p);
    us[i] = (uv_hrtime() - t0) / 1000;
    assert_int_eq(strncmp(p.buf, "HTTP/1.1 200", 12), 0);
  }
  if (report()) {
    qsort(us, (size_t)samples, sizeof *us, cmp_u64);
    printf("LOAD %s: /healthz round trip p50 %llu us, p99 %llu us, max %llu us (%d samples); "
           "longest loop iteration %llu us\n",
           load, (unsigned long long)us[samples / 2], (unsigned long long)us[samples * 99 / 100],
           (unsigned long long)us[samples - 1], samples, (unsigned long long)(it_max / 1000));
  }
  uv_close((uv_handle_t *)&chk, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);   /* the close completes in this pass */
  free(us);
  close(p.fd);
}

static void healthz_round_trips(struct fx *f, const char *load) {
  healthz_round_trips_with(f, load, NULL, NULL);
}

/* ----------------------------------------------------- slow SSE clients */

struct readers {
  int fd[SSE_CLIENTS];
  char head[SSE_CLIENTS][16];    /* the first bytes: the status line */
  size_t got[SSE_CLIENTS];       /* bytes read */
  int gone[SSE_CLIENTS];         /* end of file or an error */
  pthread_mutex_t mu;
  int stop;
  pthread_t thread;
};

/* One byte per readable client per round: slow readers by construction (each
 * byte costs a poll and a recv, the window stays almost shut). */
static void *read_slowly(void *arg) {
  struct readers *r = arg;
  struct pollfd pfd[SSE_CLIENTS];
  for (;;) {
    pthread_mutex_lock(&r->mu);
    int stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    if (stop)
      return NULL;
    for (int i = 0; i < SSE_CLIENTS; i++)
      pfd[i] = (struct pollfd){.fd = r->gone[i] ? -1 : r->fd[i], .events = POLLIN};
    if (poll(pfd, SSE_CLIENTS, 20) <= 0)
      continue;
    for (int i = 0; i < SSE_CLIENTS; i++) {
      if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char c;
      ssize_t n = recv(r->fd[i], &c, 1, MSG_DONTWAIT);
      pthread_mutex_lock(&r->mu);
      if (n == 1) {
        if (r->got[i] < sizeof r->head[i] - 1)
          r->head[i][r->got[i]] = c;
        r->got[i]++;
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        r->gone[i] = 1;
      }
      pthread_mutex_unlock(&r->mu);
    }
  }
}

/* Whether every client has its status line. */
static int readers_started(void *arg) {
  struct readers *r = arg;
  int n = 0;
  pthread_mutex_lock(&r->mu);
  for (int i = 0; i < SSE_CLIENTS; i++)
    n += r->got[i] >= 12;
  pthread_mutex_unlock(&r->mu);
  return n == SSE_CLIENTS;
}

static int at_once(arbor_node_t *task, void *arg) {
  (void)arg;
  return arbor_task_done(task);
}

struct burst {
  arbor_runtime_t *rt;
  int spawned, total;
  int batch;                     /* tasks spawned per step */
};

/* Spawns the next batch of tasks (each records ~5 events). */
static void burst_step(void *arg) {
  struct burst *b = arg;
  for (int i = 0; i < b->batch && b->spawned < b->total; i++, b->spawned++)
    assert_code(arbor_task_spawn(arbor_root(b->rt),
                                 &(arbor_task_spec_t){.name = "burst", .start = at_once}, NULL),
                0);
}

static int burst_recorded(void *arg) {
  struct burst *b = arg;
  /* a batch at a time, with loop iterations in between (the streams run) */
  burst_step(b);
  arbor_node_info_t info;
  arbor_node_info(arbor_root(b->rt), &info);
  return b->spawned == b->total && info.live_children == 0;
}

/* Records the burst's events, 200 tasks per loop iteration. With
 * ARBOR_LOAD_REPORT, first as many again a batch before each /healthz round
 * trip: what a request meets while the ring moves and every stream is woken. */
static void burst_run(struct fx *f, struct burst *b, const char *load) {
  if (report()) {
    b->batch = b->total / LATENCY_SAMPLES;
    healthz_round_trips_with(f, load, burst_step, b);
    b->batch = 200;
    httpc_run_until(&f->loop, burst_recorded, b);
    b->spawned = 0;              /* then the burst itself, as without the report */
  }
  b->batch = 200;
  httpc_run_until(&f->loop, burst_recorded, b);
}

static void load_slow_sse_clients_memory_bounded(void **state) {
  struct fx f;
  const size_t conn_mem = 64 * 1024;
  fx_open(&f, &(arbor_admin_opts_t){.max_connections = SSE_CLIENTS + 8,
                                    .connection_memory = conn_mem});
  size_t rss0 = rss_bytes();
  struct readers *r = calloc(1, sizeof *r);
  assert_non_null(r);
  pthread_mutex_init(&r->mu, NULL);
  for (int i = 0; i < SSE_CLIENTS; i++) {
    r->fd[i] = connect_small(f.port, 2048);
    send_all(r->fd[i], "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  assert_int_eq(pthread_create(&r->thread, NULL, read_slowly, r), 0);
  httpc_run_until(&f.loop, readers_started, r);
  for (int i = 0; i < SSE_CLIENTS; i++)
    assert_int_eq(strncmp(r->head[i], "HTTP/1.1 200", 12), 0);

  /* tens of thousands of events while they read a byte at a time */
  /* (valgrind runs the threads one at a time: a tenth of the events, still
   * far more than the clients read meanwhile) */
  struct burst b = {.rt = f.rt, .total = RUNNING_ON_VALGRIND ? BURST_TASKS / 10 : BURST_TASKS};
  burst_run(&f, &b, "100 slow SSE clients, while 6,000 tasks record events");
  /* Their backlog waits in the ring, not in the kernel: an event stream's send
   * buffer is capped (stream.c, STREAM_SNDBUF: 32 KiB, which Linux doubles),
   * where autotuning would let each queue up to tcp_wmem's 4 MiB, all of it
   * formatted and copied by the loop. */
  size_t queued_max, queued_sum;
  server_backlog(f.port, &queued_max, &queued_sum);
  if (report())
    printf("LOAD 100 slow SSE clients: send queues %zu KiB in all, %zu KiB the longest\n",
           queued_sum >> 10, queued_max >> 10);
  assert_uint_le(queued_max, SSE_SNDBUF_BOUND);
  healthz_round_trips(&f, "100 slow SSE clients");
  size_t rss1 = rss_bytes();
  size_t bound = SSE_CLIENTS * (conn_mem + SSE_BATCH_BOUND) + RSS_BASE_SLACK;
  if (report())
    printf("LOAD 100 slow SSE clients, %d tasks: RSS %zu KiB before, %zu KiB after (+%zu KiB; "
           "bound +%zu KiB)\n",
           BURST_TASKS, rss0 >> 10, rss1 >> 10, (rss1 - rss0) >> 10, bound >> 10);
  if (rss_checked())
    assert_uint_le(rss1 - rss0, bound);

  /* none was cut off: each is still connected, reading its backlog */
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  int gone = 0;
  for (int i = 0; i < SSE_CLIENTS; i++)
    gone += r->gone[i];
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  assert_int_eq(gone, 0);
  f.want = SSE_CLIENTS;          /* the round trips' connection has gone */
  httpc_run_until(&f.loop, fx_connections_are, &f);
  for (int i = 0; i < SSE_CLIENTS; i++)
    close(r->fd[i]);
  f.want = 0;                    /* the streams notice within STREAM_PROBE_MS */
  httpc_run_until(&f.loop, fx_connections_are, &f);
  pthread_mutex_destroy(&r->mu);
  free(r);
  fx_close(&f);
}

/* ------------------------------------------------ idle keep-alive ones */

struct idle {
  int fd[IDLE_CONNECTIONS];
  char buf[IDLE_CONNECTIONS][1024];
  size_t len[IDLE_CONNECTIONS];
  int n;
};

static int idle_answered(void *arg) {
  struct idle *d = arg;
  int done = 0;
  for (int i = 0; i < d->n; i++) {
    ssize_t k;
    while (d->len[i] + 1 < sizeof d->buf[i] &&
           (k = recv(d->fd[i], d->buf[i] + d->len[i], sizeof d->buf[i] - 1 - d->len[i],
                     MSG_DONTWAIT)) > 0)
      d->len[i] += (size_t)k;
    d->buf[i][d->len[i]] = '\0';
    done += strchr(d->buf[i], '}') != NULL;
  }
  return done == d->n;
}

/* Raises the soft RLIMIT_NOFILE to at least want, up to the hard limit;
 * returns whether want fds are now allowed. */
static int raise_nofile(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur >= want)
    return 1;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
    return 0;
  rl.rlim_cur = want;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

static void load_idle_keepalive_connections_bounded(void **state) {
  /* both ends of each connection are in this process, and curl's, and ours */
  if (!raise_nofile(2 * IDLE_CONNECTIONS + 256)) {
    print_message("RLIMIT_NOFILE's hard limit is below %d: skipped\n",
                  2 * IDLE_CONNECTIONS + 256);
    skip();
  }
  struct fx f;
  const size_t conn_mem = 16 * 1024;
  fx_open(&f, &(arbor_admin_opts_t){.max_connections = IDLE_CONNECTIONS + 1,
                                    .connection_memory = conn_mem});
  healthz_round_trips(&f, "idle server");
  if (report()) {                /* the same events as above, no stream to wake */
    struct burst b = {.rt = f.rt, .total = BURST_TASKS};
    burst_run(&f, &b, "idle server, while 6,000 tasks record events");
  }
  size_t rss0 = rss_bytes();
  struct idle *d = calloc(1, sizeof *d);
  assert_non_null(d);
  /* in batches the listen backlog takes (128): connect, then let the server
   * accept them before the next batch */
  for (int i = 0; i < IDLE_CONNECTIONS; i += 100) {
    for (int k = i; k < i + 100; k++) {
      d->fd[k] = connect_small(f.port, 0);
      send_all(d->fd[k], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    d->n = i + 100;
    f.want = (unsigned)d->n;
      httpc_run_until(&f.loop, fx_connections_are, &f);
  }
  httpc_run_until(&f.loop, idle_answered, d);
  for (int i = 0; i < IDLE_CONNECTIONS; i++)
    assert_int_eq(strncmp(d->buf[i], "HTTP/1.1 200", 12), 0);

  /* all kept alive and idle: another client is answered (the last slot) */
  healthz_round_trips(&f, "1,000 idle keep-alive connections");
  size_t rss1 = rss_bytes();
  size_t bound = IDLE_CONNECTIONS * conn_mem + RSS_BASE_SLACK;
  if (report())
    printf("LOAD 1,000 idle keep-alive connections: RSS %zu KiB before, %zu KiB after (+%zu "
           "KiB; bound +%zu KiB)\n",
           rss0 >> 10, rss1 >> 10, (rss1 - rss0) >> 10, bound >> 10);
  if (rss_checked())
    assert_uint_le(rss1 - rss0, bound);
  f.want = IDLE_CONNECTIONS;     /* the round trips' connection has gone */
  httpc_run_until(&f.loop, fx_connections_are, &f);

  /* one more holds the last slot; the next is refused with 503 and closed */
  int last = connect_small(f.port, 0);
  f.want = IDLE_CONNECTIONS + 1;
  httpc_run_until(&f.loop, fx_connections_are, &f);
  static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  char out[2048];
  long n = httpc_raw_exchange(&f.loop, f.port, get, sizeof get - 1, out, sizeof out, 20000);
  assert_true(n > 0);            /* closed by the server, not the bound */
  assert_int_eq(strncmp(out, "HTTP/1.1 503", 12), 0);

  close(last);
  for (int i = 0; i < IDLE_CONNECTIONS; i++)
    close(d->fd[i]);
  f.want = 0;
  httpc_run_until(&f.loop, fx_connections_are, &f);
  free(d);
  fx_close(&f);
}

/* ------------------------------------------- many streams, one budget */

/* Streams of a test route (http__test_routes), each sending SHARE_BYTES as
 * fast as its client reads, while a prepare handle (once per iteration, just
 * before the poll) counts loop iterations: the most bytes all fills together
 * handed out in one iteration must stay within the streams' shared budget
 * (stream.c, STREAM_ROUND_BYTES: 64 KiB a round, a turn of at least 1 KiB per
 * stream). A stream's turn may begin up to four times an iteration (a resume by
 * the heartbeat timer or by the wake, the loop time moving before and after
 * the poll), run over by 1 KiB, and grow while other streams end (their share
 * is freed): the bound below. Before the turns were shared, each stream had
 * 64 KiB per wake, and 6 MiB went out in one iteration here (330 KiB since). */
#define SHARE_STREAMS 32
#define SHARE_BYTES (256 * 1024)
#define SHARE_BOUND (4 * (2 * 64 * 1024 + 2 * SHARE_STREAMS * 1024))

static unsigned share_iteration, share_seen;
static size_t share_bytes, share_bytes_max;
static int share_done;

static void share_count(uv_prepare_t *p) {
  (void)p;
  share_iteration++;
}

static ssize_t share_fill(void *state, char *buf, size_t max, int heartbeat) {
  (void)heartbeat;
  size_t *left = state;
  if (*left == 0)
    return -1;                   /* the end */
  size_t n = *left < max ? *left : max;
  memset(buf, 'x', n);
  *left -= n;
  if (share_seen != share_iteration) {
    share_seen = share_iteration;
    share_bytes = 0;
  }
  share_bytes += n;
  if (share_bytes > share_bytes_max)
    share_bytes_max = share_bytes;
  return (ssize_t)n;
}

static void share_free(void *state) {
  free(state);
  share_done++;
}

static const struct http_stream_ops share_ops = {share_fill, share_free};

static enum MHD_Result share_handler(struct http_req *r) {
  size_t *left = malloc(sizeof *left);
  if (left == NULL)
    return http_error(r, 500, "internal", "out of memory");
  *left = SHARE_BYTES;
  return http_stream(r, "application/octet-stream", &share_ops, left, 0);
}

static const struct http_route share_routes[] = {{"GET", "/test/share", share_handler}};

static void load_streams_share_a_bounded_budget_per_iteration(void **state) {
  struct fx f;
  fx_open(&f, &(arbor_admin_opts_t){.max_connections = SHARE_STREAMS + 8});
  http__test_routes(share_routes, 1);
  share_iteration = share_seen = 0;
  share_bytes = share_bytes_max = 0;
  share_done = 0;
  uv_prepare_t prep;
  uv_prepare_init(&f.loop, &prep);
  uv_prepare_start(&prep, share_count);
  static char url[128];
  httpc_opts_t o = {.url = httpc_url(url, sizeof url, f.port, "/test/share")};
  struct httpc_call *c[SHARE_STREAMS];
  for (int i = 0; i < SHARE_STREAMS; i++)
    assert_non_null(c[i] = httpc_begin(&f.loop, &o));
  /* every stream ends whole: none starved behind the others */
  for (int i = 0; i < SHARE_STREAMS; i++) {
    httpc_wait(c[i], NULL, NULL);
    long status;
    assert_int_eq(httpc_end(c[i], &status, NULL, NULL), 0);
    assert_int_eq(status, 200);
  }
  assert_int_eq(share_done, SHARE_STREAMS);
  if (report())
    printf("LOAD %d streams of %d KiB: at most %zu KiB handed out in one iteration (bound %d "
           "KiB)\n",
           SHARE_STREAMS, SHARE_BYTES >> 10, share_bytes_max >> 10, SHARE_BOUND >> 10);
  assert_uint_le(share_bytes_max, SHARE_BOUND);
  uv_close((uv_handle_t *)&prep, NULL);
  http__test_routes(NULL, 0);
  fx_close(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(load_streams_share_a_bounded_budget_per_iteration),
    cmocka_unit_test(load_slow_sse_clients_memory_bounded),
    cmocka_unit_test(load_idle_keepalive_connections_bounded),
};

ARBOR_TEST_MAIN(tests)
