/* test_otlp_push.c - the OTLP/HTTP push exporter (tracing/otlp_push.c) against a
 * local receiver.
 *
 * The receiver is a libmicrohttpd server on 127.0.0.1, port 0, with its own
 * threads (one per connection, so a stalled answer holds only its own
 * request); the test's loop runs arbor and the exporter. Its modes: accept
 * (200, keep the bodies), fail (a status for the first N requests, then 200),
 * stall (never answers until the test ends). A dead collector is a port that
 * was bound and closed (connection refused).
 *
 * With ARBOR_OTLP_DUMP set to a directory, otlp_push_spans_arrive_as_otlp_json
 * writes each body it received there (otlp-push-N.json), for
 * ../shared/validators/check-otlp-json.mjs (scripts/validate.sh).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- receiver */

enum { RX_ACCEPT, RX_FAIL, RX_STALL };
#define RX_BODIES_MAX 64

struct rx {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int mode;
  int fail_status;               /* RX_FAIL: the answer to the first fail_count */
  int fail_count;
  const char *retry_after;       /* RX_FAIL: a Retry-After header, or NULL */
  int released;                  /* RX_STALL: answer now (the test ends) */
  int requests;                  /* complete requests seen */
  int spans;                     /* spans in the bodies answered 200 */
  char *bodies[RX_BODIES_MAX];   /* the bodies answered 200 */
  int nbodies;
  uint64_t at_ns[RX_BODIES_MAX]; /* when each request arrived (monotonic) */
  char content_type[64], test_header[64];
};

struct rx_req {
  char *p;
  size_t len;
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int count_spans(const char *body) {
  cJSON *doc = cJSON_Parse(body);
  cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "resourceSpans"), 0);
  cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(rs, "scopeSpans"), 0);
  int n = cJSON_GetArraySize(cJSON_GetObjectItem(ss, "spans"));
  cJSON_Delete(doc);
  return n;
}

static enum MHD_Result rx_answer(struct MHD_Connection *c, int status, const char *retry_after) {
  static const char ok[] = "{}";
  struct MHD_Response *r =
      MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Content-Type", "application/json");
  if (retry_after != NULL)
    MHD_add_response_header(r, "Retry-After", retry_after);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *data, size_t *data_size, void **con_cls) {
  struct rx *rx = cls;
  struct rx_req *req = *con_cls;
  if (req == NULL) {             /* headers only */
    req = calloc(1, sizeof *req);
    if (req == NULL)
      return MHD_NO;
    *con_cls = req;
    pthread_mutex_lock(&rx->mu);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const char *th = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Arbor-Test");
    snprintf(rx->content_type, sizeof rx->content_type, "%s", ct != NULL ? ct : "");
    snprintf(rx->test_header, sizeof rx->test_header, "%s", th != NULL ? th : "");
    pthread_mutex_unlock(&rx->mu);
    return MHD_YES;
  }
  if (*data_size > 0) {
    char *p = realloc(req->p, req->len + *data_size + 1);
    if (p == NULL)
      return MHD_NO;
    memcpy(p + req->len, data, *data_size);
    req->p = p;
    req->len += *data_size;
    req->p[req->len] = '\0';
    *data_size = 0;
    return MHD_YES;
  }
  int ok = strcmp(method, "POST") == 0 && strcmp(url, "/v1/traces") == 0 && req->p != NULL;
  pthread_mutex_lock(&rx->mu);
  int n = rx->requests++;
  if (n < RX_BODIES_MAX)
    rx->at_ns[n] = mono_ns();
  int status = ok ? 200 : 404;
  const char *retry_after = NULL;
  if (rx->mode == RX_STALL) {
    while (!rx->released)
      pthread_cond_wait(&rx->cv, &rx->mu);
  } else if (rx->mode == RX_FAIL && n < rx->fail_count) {
    status = rx->fail_status;
    retry_after = rx->retry_after;
  }
  if (status == 200 && rx->nbodies < RX_BODIES_MAX) {
    rx->spans += count_spans(req->p);
    rx->bodies[rx->nbodies++] = req->p;
    req->p = NULL;
  }
  pthread_cond_broadcast(&rx->cv);
  pthread_mutex_unlock(&rx->mu);
  (void)version;
  return rx_answer(c, status, retry_after);
}

static void rx_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  struct rx_req *req = *con_cls;
  if (req != NULL) {
    free(req->p);
    free(req);
  }
  *con_cls = NULL;
}

static void rx_start(struct rx *rx, int mode) {
  memset(rx, 0, sizeof *rx);
  pthread_mutex_init(&rx->mu, NULL);
  pthread_cond_init(&rx->cv, NULL);
  rx->mode = mode;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  rx->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                           0, NULL, NULL, rx_handler, rx, MHD_OPTION_SOCK_ADDR, &sa,
                           MHD_OPTION_NOTIFY_COMPLETED, rx_completed, rx, MHD_OPTION_END);
  assert_non_null(rx->d);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(rx->d, MHD_DAEMON_INFO_BIND_PORT);
  assert_non_null(info);
  rx->port = info->port;
  assert_true(rx->port > 0);
}

static void rx_stop(struct rx *rx) {
  pthread_mutex_lock(&rx->mu);
  rx->released = 1;              /* a stalled request answers (to nobody) and ends */
  pthread_cond_broadcast(&rx->cv);
  pthread_mutex_unlock(&rx->mu);
  MHD_stop_daemon(rx->d);
  for (int i = 0; i < rx->nbodies; i++)
    free(rx->bodies[i]);
  pthread_cond_destroy(&rx->cv);
  pthread_mutex_destroy(&rx->mu);
}

/* Reads an int field of the receiver under its lock. */
static int rx_get(struct rx *rx, const int *field) {
  pthread_mutex_lock(&rx->mu);
  int v = *field;
  pthread_mutex_unlock(&rx->mu);
  return v;
}

/* A port nobody listens on: bound, then closed (connection refused). */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

/* ---------------------------------------------------------------- helpers */

static void on_guard(uv_timer_t *t) { *(int *)t->data = 1; }

/* Blocking loop passes until cond holds, at most ms milliseconds of loop time
 * (a guard timer ends a wait that would otherwise block on a far timer). */
#define run_until_ms(loop, cond, ms)                                                   \
  do {                                                                                 \
    uv_timer_t guard_;                                                                 \
    int expired_ = 0, held_ = 0;                                                       \
    uv_timer_init((loop), &guard_);                                                    \
    guard_.data = &expired_;                                                           \
    uv_timer_start(&guard_, on_guard, (ms), 0);                                        \
    while (!(held_ = (cond)) && !expired_)                                             \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    uv_close((uv_handle_t *)&guard_, NULL);                                            \
    uv_run((loop), UV_RUN_NOWAIT);                                                     \
    if (!held_) {                                                                      \
      print_error("condition never held in %d ms: %s\n", (int)(ms), #cond);           \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* Runs the loop for ms milliseconds of loop time. */
static void run_for_ms(uv_loop_t *loop, uint64_t ms) {
  uv_timer_t t;
  int expired = 0;
  uv_timer_init(loop, &t);
  t.data = &expired;
  uv_timer_start(&t, on_guard, ms, 0);
  while (!expired)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static arbor_otlp_stats_t stats_of(arbor_otlp_t *o) {
  arbor_otlp_stats_t s;
  arbor_otlp_stats(o, &s);
  return s;
}

static arbor_otlp_t *start_at(arbor_runtime_t *rt, int port, arbor_otlp_opts_t opts) {
  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/", port);   /* one '/' stripped */
  opts.endpoint = endpoint;
  arbor_otlp_t *o = NULL;
  assert_code(arbor_otlp_start(rt, &opts, &o), 0);
  assert_non_null(o);
  return o;
}

/* A task that ends as soon as it starts (OK), or fails with start_rc. */
static arbor_node_t *spawn_done(arbor_node_t *parent, arbor_probe_t *p, const char *name) {
  p->done_in_start = p->start_rc == 0;
  return arbor_test_spawn(parent, p, name, 0);
}

static void spawn_many(arbor_node_t *parent, int n) {
  static arbor_probe_t p;        /* shared: only counts */
  for (int i = 0; i < n; i++)
    spawn_done(parent, &p, "many");
}

static int is_hex(const char *s, size_t n) {
  if (s == NULL || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
      return 0;
  return 1;
}

static int is_decimal(const char *s) {
  if (s == NULL || *s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (!isdigit((unsigned char)*s))
      return 0;
  return 1;
}

static void span_id_of(char out[17], uint64_t id) {
  snprintf(out, 17, "%016llx", (unsigned long long)id);
}

static void dump_bodies(const struct rx *rx) {
  const char *dir = getenv("ARBOR_OTLP_DUMP");
  if (dir == NULL || *dir == '\0')
    return;
  for (int i = 0; i < rx->nbodies; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/otlp-push-%d.json", dir, i + 1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(rx->bodies[i], f);
    assert_int_eq(fclose(f), 0);
  }
}

/* ------------------------------------------------------------------ tests */

static void otlp_push_start_checks_arguments(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_otlp_t *o = (arbor_otlp_t *)&o;
  arbor_test_open(&loop, &rt, NULL);
  const char *bad[] = {"ftp://127.0.0.1:4318", "127.0.0.1:4318", "http://", "https:///x",
                       "", "HTTP//x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_code(arbor_otlp_start(rt, &(arbor_otlp_opts_t){.endpoint = bad[i]}, &o), ARBOR_EINVAL);
    assert_null(o);
  }
  assert_code(arbor_otlp_start(rt, &(arbor_otlp_opts_t){0}, &o), ARBOR_EINVAL);
  assert_code(arbor_otlp_start(rt, NULL, &o), ARBOR_EINVAL);
  assert_code(arbor_otlp_start(NULL, &(arbor_otlp_opts_t){.endpoint = "http://x"}, &o),
              ARBOR_EINVAL);
  assert_null(arbor_otlp_of(rt));
  assert_null(arbor_otlp_of(NULL));

  assert_code(arbor_otlp_start(rt, &(arbor_otlp_opts_t){.endpoint = "https://collector:4318"}, &o),
              0);
  assert_ptr_equal(arbor_otlp_of(rt), o);
  arbor_otlp_t *second = NULL;
  assert_code(arbor_otlp_start(rt, &(arbor_otlp_opts_t){.endpoint = "http://127.0.0.1:1"},
                               &second),
              ARBOR_EALREADY);
  assert_null(second);
  assert_code(arbor_otlp_stop(NULL), ARBOR_EINVAL);
  assert_code(arbor_otlp_stop(o), 0);
  assert_null(arbor_otlp_of(rt));
  /* One per runtime at a time: after a stop, another may start. */
  assert_code(arbor_otlp_start(rt, &(arbor_otlp_opts_t){.endpoint = "http://127.0.0.1:1"},
                               &second),
              0);
  assert_ptr_equal(arbor_otlp_of(rt), second);
  arbor_test_close(rt, &loop);
}

static void otlp_push_spans_arrive_as_otlp_json(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_ACCEPT);
  arbor_test_open(&loop, &rt, NULL);
  const char *headers[] = {"X-Arbor-Test: yes", NULL};
  arbor_otlp_t *o = start_at(rt, rx.port,
                             (arbor_otlp_opts_t){.service_name = "otlp-test",
                                                 .headers = headers, .flush_ms = 10});
  arbor_node_t *g = arbor_test_group(arbor_root(rt), "workers");
  arbor_probe_t p[3] = {{0}, {0}, {.start_rc = ARBOR_ETIMEDOUT}};
  spawn_done(g, &p[0], "plain");
  spawn_done(g, &p[1], "odd \"name\"\n\\ \xff");
  spawn_done(g, &p[2], "fails");
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  uint64_t gid = arbor_node_id(g);

  run_until_ms(&loop, stats_of(o).spans_exported == 4, 10000);
  arbor_otlp_stats_t s = stats_of(o);
  assert_uint_eq(s.spans_queued, 4);
  assert_uint_eq(s.spans_dropped, 0);
  assert_uint_eq(s.requests_failed, 0);
  assert_uint_eq(s.queue_len, 0);
  assert_uint_eq(s.queue_bytes, 0);
  assert_uint_eq(s.requests, (uint64_t)rx_get(&rx, &rx.requests));
  assert_int_eq(rx_get(&rx, &rx.spans), 4);

  pthread_mutex_lock(&rx.mu);
  assert_string_equal(rx.content_type, "application/json");
  assert_string_equal(rx.test_header, "yes");
  dump_bodies(&rx);
  char trace_id[33] = "";
  int seen = 0, seen_parent = 0;
  for (int b = 0; b < rx.nbodies; b++) {
    cJSON *doc = cJSON_Parse(rx.bodies[b]);
    assert_non_null(doc);
    cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "resourceSpans"), 0);
    cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(rs, "scopeSpans"), 0);
    cJSON *spans = cJSON_GetObjectItem(ss, "spans");
    assert_true(cJSON_IsArray(spans));
    cJSON *sp;
    cJSON_ArrayForEach(sp, spans) {
      const char *tid = cJSON_GetStringValue(cJSON_GetObjectItem(sp, "traceId"));
      const char *sid = cJSON_GetStringValue(cJSON_GetObjectItem(sp, "spanId"));
      const char *pid = cJSON_GetStringValue(cJSON_GetObjectItem(sp, "parentSpanId"));
      const char *t0 = cJSON_GetStringValue(cJSON_GetObjectItem(sp, "startTimeUnixNano"));
      const char *t1 = cJSON_GetStringValue(cJSON_GetObjectItem(sp, "endTimeUnixNano"));
      assert_true(is_hex(tid, 32));
      if (trace_id[0] == '\0')
        strcpy(trace_id, tid);
      assert_string_equal(tid, trace_id);        /* one trace per runtime */
      assert_true(is_hex(sid, 16));
      assert_true(is_hex(pid, 16));
      assert_true(is_decimal(t0));
      assert_true(is_decimal(t1));
      assert_true(strtoull(t0, NULL, 10) <= strtoull(t1, NULL, 10));
      char want[17], parent[17];
      span_id_of(parent, gid);
      if (strcmp(sid, parent) == 0) {             /* the group: its parent is the root */
        span_id_of(want, arbor_node_id(arbor_root(rt)));
        assert_string_equal(pid, want);
        seen_parent++;
      } else {
        int found = 0;
        for (int i = 0; i < 3; i++) {
          span_id_of(want, p[i].id);
          found += strcmp(sid, want) == 0;
        }
        assert_int_eq(found, 1);
        assert_string_equal(pid, parent);       /* parent span = parent node */
      }
      seen++;
    }
    cJSON_Delete(doc);
  }
  pthread_mutex_unlock(&rx.mu);
  assert_int_eq(seen, 4);
  assert_int_eq(seen_parent, 1);
  arbor_test_close(rt, &loop);
  rx_stop(&rx);
}

static void otlp_push_batch_leaves_at_max_batch(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_ACCEPT);
  arbor_test_open(&loop, &rt, NULL);
  arbor_otlp_t *o = start_at(rt, rx.port, (arbor_otlp_opts_t){.max_batch = 2, .flush_ms = 600000});
  spawn_many(arbor_root(rt), 5);
  run_until_ms(&loop, stats_of(o).spans_exported == 4 && stats_of(o).spans_queued == 5, 10000);
  assert_int_eq(rx_get(&rx, &rx.requests), 2);
  pthread_mutex_lock(&rx.mu);
  for (int b = 0; b < rx.nbodies; b++)
    assert_int_eq(count_spans(rx.bodies[b]), 2);
  pthread_mutex_unlock(&rx.mu);
  assert_uint_eq(stats_of(o).queue_len, 1);     /* waits for its flush_ms */
  arbor_test_close(rt, &loop);
  rx_stop(&rx);
}

static void otlp_push_final_flush_at_close_delivers_queued(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_ACCEPT);
  arbor_test_open(&loop, &rt, NULL);
  arbor_otlp_t *o = start_at(rt, rx.port, (arbor_otlp_opts_t){.max_batch = 2, .flush_ms = 600000});
  spawn_many(arbor_root(rt), 7);
  run_until_ms(&loop, stats_of(o).spans_queued == 7 && stats_of(o).spans_exported == 6, 10000);
  assert_uint_eq(stats_of(o).queue_len, 1);
  assert_int_eq(rx_get(&rx, &rx.spans), 6);
  arbor_test_close(rt, &loop);   /* the last span goes out before the loop empties */
  assert_int_eq(rx_get(&rx, &rx.spans), 8);      /* and the root's, at close */
  assert_int_eq(rx_get(&rx, &rx.requests), 4);
  rx_stop(&rx);
}

/* Every parentSpanId a collector received names a span it also received: the
 * root's span, which never FINISHES, is sent at close, so no trace is left with
 * a dangling parent. */
static void otlp_push_root_span_at_close_leaves_no_dangling_parent(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_ACCEPT);
  arbor_test_open(&loop, &rt, NULL);
  arbor_otlp_t *o = start_at(rt, rx.port, (arbor_otlp_opts_t){.flush_ms = 10});
  arbor_node_t *g = arbor_test_group(arbor_root(rt), "g");
  spawn_many(g, 3);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  run_until_ms(&loop, stats_of(o).spans_exported == 4, 10000);
  arbor_test_close(rt, &loop);
  assert_int_eq(rx_get(&rx, &rx.spans), 5);
  char ids[8][17], parents[8][17];
  int nids = 0, nparents = 0, roots = 0;
  pthread_mutex_lock(&rx.mu);
  for (int b = 0; b < rx.nbodies; b++) {
    cJSON *doc = cJSON_Parse(rx.bodies[b]);
    cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "resourceSpans"), 0);
    cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(rs, "scopeSpans"), 0);
    cJSON *sp;
    cJSON_ArrayForEach(sp, cJSON_GetObjectItem(ss, "spans")) {
      assert_true(nids < 8);
      snprintf(ids[nids++], 17, "%s", cJSON_GetObjectItem(sp, "spanId")->valuestring);
      cJSON *parent = cJSON_GetObjectItem(sp, "parentSpanId");
      if (parent == NULL)
        roots++;
      else
        snprintf(parents[nparents++], 17, "%s", parent->valuestring);
    }
    cJSON_Delete(doc);
  }
  pthread_mutex_unlock(&rx.mu);
  assert_int_eq(roots, 1);
  for (int i = 0; i < nparents; i++) {
    int found = 0;
    for (int k = 0; k < nids; k++)
      found |= strcmp(parents[i], ids[k]) == 0;
    if (!found)
      fail_msg("parent span %s was never sent", parents[i]);
  }
  rx_stop(&rx);
}

static void otlp_push_retryable_answers_retried_batch_arrives_once(void **state) {
  const int statuses[] = {429, 502, 503, 504};
  for (size_t k = 0; k < sizeof statuses / sizeof statuses[0]; k++) {
    struct rx rx;
    uv_loop_t loop;
    arbor_runtime_t *rt;
    rx_start(&rx, RX_FAIL);
    rx.fail_status = statuses[k];
    rx.fail_count = 2;
    arbor_test_open(&loop, &rt, NULL);
    arbor_otlp_t *o = start_at(rt, rx.port, (arbor_otlp_opts_t){.flush_ms = 10, .backoff_ms = 10});
    spawn_many(arbor_root(rt), 3);
    run_until_ms(&loop, stats_of(o).spans_exported == 3, 10000);
    arbor_otlp_stats_t s = stats_of(o);
    assert_uint_eq(s.requests, 3);
    assert_uint_eq(s.requests_failed, 2);
    assert_uint_eq(s.spans_dropped, 0);
    assert_uint_eq(s.queue_len, 0);
    assert_int_eq(rx_get(&rx, &rx.requests), 3);
    assert_int_eq(rx_get(&rx, &rx.nbodies), 1);   /* the batch arrived once */
    assert_int_eq(rx_get(&rx, &rx.spans), 3);
    arbor_test_close(rt, &loop);
    rx_stop(&rx);
  }
}

static void otlp_push_retry_after_honoured(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_FAIL);
  rx.fail_status = 503;
  rx.fail_count = 1;
  rx.retry_after = "1";
  arbor_test_open(&loop, &rt, NULL);
  arbor_otlp_t *o = start_at(rt, rx.port, (arbor_otlp_opts_t){.flush_ms = 10, .backoff_ms = 10});
  spawn_many(arbor_root(rt), 1);
  run_until_ms(&loop, stats_of(o).spans_exported == 1, 10000);
  pthread_mutex_lock(&rx.mu);
  assert_int_eq(rx.requests, 2);
  uint64_t gap_ms = (rx.at_ns[1] - rx.at_ns[0]) / 1000000;
  pthread_mutex_unlock(&rx.mu);
  assert_uint_le(900, gap_ms);   /* Retry-After: 1 (s), not backoff_ms (10 ms) */
  arbor_test_close(rt, &loop);
  rx_stop(&rx);
}

static void otlp_push_retry_after_capped_by_backoff_max(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_FAIL);
  rx.fail_status = 429;
  rx.fail_count = 1;
  rx.retry_after = "3600";
  arbor_test_open(&loop, &rt, NULL);
  arbor_otlp_t *o = start_at(rt, rx.port,
                             (arbor_otlp_opts_t){.flush_ms = 10, .backoff_ms = 10,
                                                 .backoff_max_ms = 50});
  spawn_many(arbor_root(rt), 1);
  run_until_ms(&loop, stats_of(o).spans_exported == 1, 10000);
  assert_uint_eq(stats_of(o).requests_failed, 1);
  arbor_test_close(rt, &loop);
  rx_stop(&rx);
}

static void otlp_push_rejected_batch_dropped_and_counted(void **state) {
  const int statuses[] = {400, 413, 500};
  for (size_t k = 0; k < sizeof statuses / sizeof statuses[0]; k++) {
    struct rx rx;
    uv_loop_t loop;
    arbor_runtime_t *rt;
    rx_start(&rx, RX_FAIL);
    rx.fail_status = statuses[k];
    rx.fail_count = 1000;
    arbor_test_open(&loop, &rt, NULL);
    arbor_otlp_t *o = start_at(rt, rx.port, (arbor_otlp_opts_t){.flush_ms = 10, .backoff_ms = 10});
    spawn_many(arbor_root(rt), 3);
    run_until_ms(&loop, stats_of(o).requests_failed == 1, 10000);
    run_for_ms(&loop, 100);      /* ten backoffs' time: a retry would have come */
    arbor_otlp_stats_t s = stats_of(o);
    assert_uint_eq(s.requests, 1);
    assert_uint_eq(s.spans_dropped, 3);
    assert_uint_eq(s.spans_exported, 0);
    assert_uint_eq(s.queue_len, 0);
    assert_int_eq(rx_get(&rx, &rx.requests), 1);
    arbor_test_close(rt, &loop);
    rx_stop(&rx);
  }
}

struct ticker {
  uv_timer_t t;
  uint64_t last_ns, max_gap_ns;
};

static void on_tick(uv_timer_t *t) {
  struct ticker *k = (struct ticker *)t;
  uint64_t now = uv_hrtime();
  if (k->last_ns != 0 && now - k->last_ns > k->max_gap_ns)
    k->max_gap_ns = now - k->last_ns;
  k->last_ns = now;
}

static void otlp_push_stalled_collector_never_blocks_loop(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_STALL);
  arbor_test_open(&loop, &rt, NULL);
  struct ticker k = {.last_ns = 0};
  uv_timer_init(&loop, &k.t);
  uv_timer_start(&k.t, on_tick, 10, 10);
  arbor_otlp_t *o = start_at(rt, rx.port,
                             (arbor_otlp_opts_t){.flush_ms = 10, .timeout_ms = 1000,
                                                 .backoff_ms = 10});
  spawn_many(arbor_root(rt), 3);
  run_until_ms(&loop, stats_of(o).requests_failed >= 1, 20000);   /* the timeout */
  arbor_otlp_stats_t s = stats_of(o);
  assert_uint_eq(s.spans_exported, 0);
  assert_uint_eq(s.spans_dropped, 0);
  assert_uint_eq(s.queue_len, 3);  /* kept for the retry */
  assert_true(rx_get(&rx, &rx.requests) >= 1);
  /* A blocking request would have stopped the ticks for its whole 1 s. */
  assert_uint_lt(k.max_gap_ns / 1000000, 400);
  uv_close((uv_handle_t *)&k.t, NULL);
  arbor_test_close(rt, &loop);   /* the final flush meets the stall: bounded by 1 s */
  rx_stop(&rx);
}

/* Thousands of spans against a collector that never answers: the queue holds
 * at most max_queue spans and max_queue_bytes bytes, and every finished node is
 * either queued or dropped. Both bounds, one at a time. */
static void otlp_push_queue_bounded_with_stalled_collector(void **state) {
  struct {
    size_t max_queue, max_bytes;
  } bounds[] = {{100, 64u << 20}, {100000, 16 * 1024}};
  for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++) {
    struct rx rx;
    uv_loop_t loop;
    arbor_runtime_t *rt;
    rx_start(&rx, RX_STALL);
    arbor_test_open(&loop, &rt, NULL);
    arbor_otlp_t *o = start_at(rt, rx.port,
                               (arbor_otlp_opts_t){.max_queue = bounds[k].max_queue,
                                                   .max_queue_bytes = bounds[k].max_bytes,
                                                   .max_batch = 10, .flush_ms = 10,
                                                   .timeout_ms = 2000});
    const int total = 3000;
    size_t peak = 0, peak_bytes = 0;
    for (int round = 0; round < total / 300; round++) {
      spawn_many(arbor_root(rt), 300);
      for (int i = 0; i < 200; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        arbor_otlp_stats_t s = stats_of(o);
        if (s.queue_len > peak)
          peak = s.queue_len;
        if (s.queue_bytes > peak_bytes)
          peak_bytes = s.queue_bytes;
      }
    }
    run_until_ms(&loop,
                 stats_of(o).spans_queued + stats_of(o).spans_dropped == (uint64_t)total, 10000);
    arbor_otlp_stats_t s = stats_of(o);
    assert_uint_le(peak, bounds[k].max_queue);
    assert_uint_le(peak_bytes, bounds[k].max_bytes);
    assert_uint_le(s.queue_len, bounds[k].max_queue);
    assert_uint_le(s.queue_bytes, bounds[k].max_bytes);
    assert_uint_eq(s.spans_dropped, (uint64_t)total - s.spans_queued);
    assert_uint_eq(s.spans_exported, 0);
    /* The bound is what stopped the queue, not a lack of spans. */
    if (k == 0)
      assert_uint_eq(peak, bounds[k].max_queue);
    else
      assert_uint_lt(bounds[k].max_bytes / 2, peak_bytes);
    assert_uint_eq(s.events_missed, 0);
    arbor_test_close(rt, &loop);
    rx_stop(&rx);
  }
}

static void otlp_push_dead_collector_retried_and_counted(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  int port = dead_port();
  arbor_test_open(&loop, &rt, NULL);
  arbor_otlp_t *o = start_at(rt, port,
                             (arbor_otlp_opts_t){.flush_ms = 10, .backoff_ms = 5,
                                                 .backoff_max_ms = 20});
  spawn_many(arbor_root(rt), 3);
  run_until_ms(&loop, stats_of(o).requests_failed >= 4, 10000);
  arbor_otlp_stats_t s = stats_of(o);
  assert_uint_le(s.requests_failed, s.requests);   /* one may be in flight */
  assert_uint_le(s.requests, s.requests_failed + 1);
  assert_uint_eq(s.spans_exported, 0);
  assert_uint_eq(s.spans_dropped, 0);
  assert_uint_eq(s.queue_len, 3);  /* the same batch, retried */
  arbor_test_close(rt, &loop);   /* the final flush fails: dropped, and it ends */
}

static void otlp_push_evicted_node_counts_as_dropped(void **state) {
  struct rx rx;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rx_start(&rx, RX_ACCEPT);
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.retain_finished = 1});
  arbor_otlp_t *o = start_at(rt, rx.port, (arbor_otlp_opts_t){.flush_ms = 10});
  spawn_many(arbor_root(rt), 10);  /* all finish in one pass; retention keeps one */
  run_until_ms(&loop, stats_of(o).spans_queued + stats_of(o).spans_dropped == 10, 10000);
  arbor_otlp_stats_t s = stats_of(o);
  assert_true(s.spans_dropped >= 1);
  run_until_ms(&loop, stats_of(o).spans_exported == s.spans_queued, 10000);
  assert_int_eq(rx_get(&rx, &rx.spans), (int)s.spans_queued);
  arbor_test_close(rt, &loop);
  rx_stop(&rx);
}

static void otlp_push_stop_drops_queued_spans(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_otlp_t *o = start_at(rt, dead_port(), (arbor_otlp_opts_t){.flush_ms = 600000});
  spawn_many(arbor_root(rt), 3);
  run_until_ms(&loop, stats_of(o).spans_queued == 3, 10000);
  assert_code(arbor_otlp_stop(o), 0);
  arbor_otlp_stats_t s = stats_of(o);   /* still readable: freed from the loop */
  assert_uint_eq(s.spans_dropped, 3);
  assert_uint_eq(s.queue_len, 0);
  assert_uint_eq(s.requests, 0);
  assert_null(arbor_otlp_of(rt));
  assert_code(arbor_otlp_stop(o), 0);   /* twice before the loop runs: harmless */
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(otlp_push_start_checks_arguments),
    cmocka_unit_test(otlp_push_spans_arrive_as_otlp_json),
    cmocka_unit_test(otlp_push_batch_leaves_at_max_batch),
    cmocka_unit_test(otlp_push_final_flush_at_close_delivers_queued),
    cmocka_unit_test(otlp_push_root_span_at_close_leaves_no_dangling_parent),
    cmocka_unit_test(otlp_push_retryable_answers_retried_batch_arrives_once),
    cmocka_unit_test(otlp_push_retry_after_honoured),
    cmocka_unit_test(otlp_push_retry_after_capped_by_backoff_max),
    cmocka_unit_test(otlp_push_rejected_batch_dropped_and_counted),
    cmocka_unit_test(otlp_push_stalled_collector_never_blocks_loop),
    cmocka_unit_test(otlp_push_queue_bounded_with_stalled_collector),
    cmocka_unit_test(otlp_push_dead_collector_retried_and_counted),
    cmocka_unit_test(otlp_push_evicted_node_counts_as_dropped),
    cmocka_unit_test(otlp_push_stop_drops_queued_spans),
};

ARBOR_TEST_MAIN(tests)
