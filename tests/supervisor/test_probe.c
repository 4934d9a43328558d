/* tests/supervisor/test_probe.c - health probes (supervisor/probe.c and its hooks
 * in service.c and supervisor.c): each kind (HTTP, TCP, exec) passing and
 * failing, thresholds, timeouts, the initial delay, a liveness verdict restarting
 * the service with the cause in its chain, a readiness probe holding STARTED and
 * dependents back, events, no timer without probes, bad specs.
 *
 * The probes' peer is in the test's own loop: a TCP listener that answers each
 * HTTP request with the status the test sets (or never answers). Probes run every
 * few ms; tests wait on what the probe's counters say (arbor_service_probe_info),
 * never on time.
 */
#include "harness.h"
#include <cJSON.h>

#include <errno.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOUR (3600u * 1000u)

/* ------------------------------------------------------------ the responder */

#define CLIENTS_MAX 64

typedef struct responder responder_t;

typedef struct {
  uv_tcp_t h;
  responder_t *r;
  int slot;
  size_t len;
  char buf[1024];
  uv_write_t w;
  char resp[128];
} client_t;

struct responder {
  uv_tcp_t server;
  int open;                      /* the server handle is open */
  int port;
  int status;                    /* the answer; 0: accept, read, never answer */
  int requests;                  /* complete requests read */
  int accepted;
  char last[1024];               /* the last request's head */
  client_t *clients[CLIENTS_MAX];
};

static void client_closed(uv_handle_t *h) {
  client_t *c = h->data;
  c->r->clients[c->slot] = NULL;
  free(c);
}

static void client_close(client_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->h))
    uv_close((uv_handle_t *)&c->h, client_closed);
}

static void client_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)s;
  client_t *c = h->data;
  *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - 1 - c->len));
}

static void client_written(uv_write_t *w, int status) {
  (void)status;
  client_close(w->data);
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  client_t *c = s->data;
  if (n < 0) {
    client_close(c);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  if (strstr(c->buf, "\r\n\r\n") == NULL)
    return;
  responder_t *r = c->r;
  r->requests++;
  snprintf(r->last, sizeof r->last, "%s", c->buf);
  uv_read_stop(s);
  if (r->status == 0)
    return;                      /* silent: the probe times out */
  int len = snprintf(c->resp, sizeof c->resp,
                     "HTTP/1.1 %d Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                     r->status);
  uv_buf_t out = uv_buf_init(c->resp, (unsigned)len);
  c->w.data = c;
  if (uv_write(&c->w, s, &out, 1, client_written) < 0)
    client_close(c);
}

static void on_connection(uv_stream_t *server, int status) {
  responder_t *r = server->data;
  assert_int_eq(status, 0);
  int slot = 0;
  while (slot < CLIENTS_MAX && r->clients[slot] != NULL)
    slot++;
  assert_true(slot < CLIENTS_MAX);
  client_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->r = r;
  c->slot = slot;
  r->clients[slot] = c;
  assert_int_eq(uv_tcp_init(server->loop, &c->h), 0);
  c->h.data = c;
  assert_int_eq(uv_accept(server, (uv_stream_t *)&c->h), 0);
  r->accepted++;
  assert_int_eq(uv_read_start((uv_stream_t *)&c->h, client_alloc, client_read), 0);
}

static void responder_open(uv_loop_t *loop, responder_t *r, int status) {
  memset(r, 0, sizeof *r);
  r->status = status;
  struct sockaddr_in a;
  assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &a), 0);
  assert_int_eq(uv_tcp_init(loop, &r->server), 0);
  r->server.data = r;
  r->open = 1;
  assert_int_eq(uv_tcp_bind(&r->server, (const struct sockaddr *)&a, 0), 0);
  assert_int_eq(uv_listen((uv_stream_t *)&r->server, 64, on_connection), 0);
  struct sockaddr_in got;
  int len = sizeof got;
  assert_int_eq(uv_tcp_getsockname(&r->server, (struct sockaddr *)&got, &len), 0);
  r->port = ntohs(got.sin_port);
}

/* Stops listening (connects are refused from now on); clients stay. */
static void responder_stop_listening(responder_t *r) {
  if (r->open)
    uv_close((uv_handle_t *)&r->server, NULL);
  r->open = 0;
}

static void responder_close(uv_loop_t *loop, responder_t *r) {
  responder_stop_listening(r);
  for (int i = 0; i < CLIENTS_MAX; i++)
    if (r->clients[i] != NULL)
      client_close(r->clients[i]);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* ---------------------------------------------------------------- helpers */

static int sleeper(arbor_ctx_t *cx, void *arg) {
  int *runs = arg;
  if (runs != NULL)
    ++*runs;
  int rc;
  while ((rc = arbor_sleep(cx, HOUR)) == 0)
    ;
  return rc;
}

static arbor_probe_info_t pinfo(arbor_node_t *svc, arbor_probe_role_t role) {
  arbor_probe_info_t i;
  assert_code(arbor_service_probe_info(svc, role, &i), 0);
  return i;
}

static arbor_service_info_t sinfo(arbor_node_t *svc) {
  arbor_service_info_t i;
  assert_code(arbor_service_info(svc, &i), 0);
  return i;
}

#define LIVE(svc) pinfo((svc), ARBOR_PROBE_LIVENESS)
#define READY(svc) pinfo((svc), ARBOR_PROBE_READINESS)

static size_t count_type(arbor_runtime_t *rt, uint64_t id, arbor_event_type_t type) {
  return arbor_test_count_events(rt, id, type);
}

/* The kept failure i's chain, as text. */
static const char *failure_text(arbor_node_t *svc, size_t i, char *buf, size_t size) {
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(svc, i, &f), 0);
  assert_non_null(f.error);
  arbor_error_format(f.error, buf, size);
  return buf;
}

static int tick_until_failures(uv_loop_t *loop, arbor_node_t *svc, arbor_probe_role_t role,
                               uint64_t n) {
  arbor_test_run_ticking_until(loop, pinfo(svc, role).failures >= n);
  return 0;
}

/* --------------------------------------------------------------- the tests */

/* HTTP readiness: the service is STARTING while the probe gets 503, STARTED once
 * it gets 200; the request is a plain GET with Host and Connection: close. */
static void probe_http_readiness_holds_started_until_pass(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 503);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_HTTP, .port = r.port, .path = "/healthz",
                             .interval_ms = 5};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "web", .fiber = sleeper,
                                                        .readiness = &hp},
                                &svc),
              0);
  tick_until_failures(&loop, svc, ARBOR_PROBE_READINESS, 2);
  assert_state(svc, STARTING);
  assert_int_eq(sinfo(svc).ready, 0);
  assert_int_eq(READY(svc).passing, 0);
  assert_non_null(strstr(r.last, "GET /healthz HTTP/1.1\r\n"));
  char host[64];
  snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", r.port);
  assert_non_null(strstr(r.last, host));
  assert_non_null(strstr(r.last, "Connection: close\r\n"));
  const arbor_error_t *e = READY(svc).last_error;
  assert_non_null(e);
  char want[128];
  snprintf(want, sizeof want, "HTTP GET http://127.0.0.1:%d/healthz: status 503", r.port);
  assert_string_equal(arbor_error_message(e), want);
  assert_code(arbor_error_code(e), ARBOR_EPROBE);

  r.status = 302;                /* 200..399 pass */
  arbor_test_run_ticking_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  assert_int_eq(sinfo(svc).ready, 1);
  arbor_probe_info_t pi = READY(svc);
  assert_int_eq(pi.passing, 1);
  assert_int_eq(pi.last_ok, 1);
  assert_true(pi.successes >= 1);
  snprintf(want, sizeof want, "http://127.0.0.1:%d/healthz", r.port);
  assert_string_equal(pi.target, want);
  /* Failed attempts are events; passes are not. */
  assert_true(count_type(rt, arbor_node_id(svc), ARBOR_EVENT_PROBE_FAILED) >= 2);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* Liveness: failures below the threshold restart nothing; failure_threshold in a
 * row fail the run, restarted, the chain "liveness probe failed 3 times in a row"
 * caused by the last attempt's error. */
static void probe_liveness_threshold_restarts_with_cause(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 500);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_HTTP, .port = r.port, .path = "/live",
                             .interval_ms = 5, .failure_threshold = 3};
  arbor_node_t *sup, *svc;
  int runs = 0;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.intensity = 100, .no_backoff = 1},
                                   &sup),
              0);
  assert_code(arbor_service_add(sup,
                                &(arbor_service_spec_t){.name = "api", .fiber = sleeper,
                                                        .arg = &runs, .liveness = &hp},
                                &svc),
              0);
  tick_until_failures(&loop, svc, ARBOR_PROBE_LIVENESS, 2);
  r.status = 200;                /* two in a row, then passes: no verdict */
  arbor_test_run_ticking_until(&loop, LIVE(svc).successes >= 3);
  assert_int_eq(LIVE(svc).failures, 2);
  assert_int_eq(LIVE(svc).failures_in_row, 0);
  assert_int_eq(sinfo(svc).restarts, 0);
  assert_int_eq(runs, 1);

  r.status = 503;
  arbor_test_run_ticking_until(&loop, sinfo(svc).restarts >= 1);
  assert_int_eq(LIVE(svc).failures, 5);
  char buf[1024], want[512];
  failure_text(svc, 0, buf, sizeof buf);
  assert_non_null(strstr(buf, "liveness probe failed 3 times in a row"));
  snprintf(want, sizeof want, "HTTP GET http://127.0.0.1:%d/live: status 503", r.port);
  assert_non_null(strstr(buf, want));
  arbor_service_failure_t f;
  assert_code(arbor_service_failure(svc, 0, &f), 0);
  assert_code(arbor_error_code(f.error), ARBOR_EPROBE);
  assert_non_null(arbor_error_cause(f.error));
  assert_string_equal(arbor_error_message(arbor_error_cause(f.error)), want);
  /* The new run starts over: its first attempts pass again. */
  r.status = 200;
  arbor_test_run_ticking_until(&loop, runs == 2 && LIVE(svc).successes_in_row >= 1);
  assert_int_eq(LIVE(svc).passing, 1);
  assert_int_eq(sinfo(svc).restarts, 1);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* TCP: an accepted connect passes; a refused one fails, and with threshold 1 the
 * run fails at once with "TCP connect 127.0.0.1:P: connection refused". */
static void probe_tcp_passes_then_refused_fails(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 200);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_TCP, .port = r.port, .interval_ms = 5,
                             .failure_threshold = 1};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "db", .fiber = sleeper,
                                                        .liveness = &hp},
                                &svc),
              0);
  arbor_test_run_ticking_until(&loop, LIVE(svc).successes >= 2);
  assert_true(r.accepted >= 2);
  assert_int_eq(r.requests, 0);  /* a TCP probe sends nothing */
  responder_stop_listening(&r);
  /* Unsupervised: the failed run ends the service, FAILED with the chain. */
  arbor_test_run_ticking_until(&loop, arbor_node_state(svc) == ARBOR_STATE_FINISHED);
  assert_outcome(svc, FAILED);
  char buf[1024], want[128];
  arbor_error_format(arbor_node_error(svc), buf, sizeof buf);
  assert_non_null(strstr(buf, "liveness probe failed 1 times in a row"));
  snprintf(want, sizeof want, "TCP connect 127.0.0.1:%d: connection refused", r.port);
  assert_non_null(strstr(buf, want));
  assert_int_eq(LIVE(svc).active, 0);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* Exec: exit 0 passes, anything else fails with the status and the output. */
static void probe_exec_passes_and_fails_with_output(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_t t;
  arbor_test_tmp_open(&t, "probe-exec");
  char script[512];
  snprintf(script, sizeof script,
           "if [ -e %s/bad ]; then echo 'db: down'; echo oops >&2; exit 3; fi; exit 0", t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_EXEC, .argv = argv, .interval_ms = 5,
                             .failure_threshold = 2};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "worker", .fiber = sleeper,
                                                        .liveness = &hp, .readiness = &hp},
                                &svc),
              0);
  arbor_test_run_ticking_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED &&
                                          LIVE(svc).successes >= 2);
  assert_int_eq(LIVE(svc).failures, 0);
  arbor_test_tmp_touch(&t, "bad");
  arbor_test_run_ticking_until(&loop, arbor_node_state(svc) == ARBOR_STATE_FINISHED);
  char buf[2048];
  arbor_error_format(arbor_node_error(svc), buf, sizeof buf);
  assert_non_null(strstr(buf, "liveness probe failed 2 times in a row"));
  assert_non_null(strstr(buf, "exec /bin/sh: exited with status 3: \"db: down\\noops\""));
  assert_int_eq(arbor_error_code(arbor_error_cause(arbor_node_error(svc))), ARBOR_EEXIT);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
  /* Every probe child was reaped (by libuv): none left as a zombie of ours. */
  assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
}

/* An attempt past timeout_ms fails "timed out after N ms": an HTTP server that
 * accepts and never answers, a command that never exits (killed, reaped). */
static void probe_timeout_fails_attempt(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 0);
  arbor_health_probe_t http = {.kind = ARBOR_PROBE_HTTP, .port = r.port, .interval_ms = 5,
                               .timeout_ms = 20, .failure_threshold = 1000};
  char *argv[] = {"/bin/sh", "-c", "sleep 30", NULL};
  arbor_health_probe_t ex = {.kind = ARBOR_PROBE_EXEC, .argv = argv, .interval_ms = 5,
                             .timeout_ms = 20, .failure_threshold = 1000};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "slow", .fiber = sleeper,
                                                        .liveness = &http, .readiness = &ex},
                                &svc),
              0);
  arbor_test_run_ticking_until(&loop, LIVE(svc).timeouts >= 2 && READY(svc).timeouts >= 2);
  char want[128];
  snprintf(want, sizeof want, "HTTP GET http://127.0.0.1:%d/: timed out after 20 ms", r.port);
  assert_string_equal(arbor_error_message(LIVE(svc).last_error), want);
  assert_code(arbor_error_code(LIVE(svc).last_error), ARBOR_ETIMEDOUT);
  assert_string_equal(arbor_error_message(READY(svc).last_error),
                      "exec /bin/sh: timed out after 20 ms");
  assert_true(LIVE(svc).last_duration_ns > 0);
  assert_state(svc, STARTING);   /* never ready */
  assert_code(arbor_node_cancel(svc), 0);
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_FINISHED);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);   /* every killed command was reaped: the loop closes */
  assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
}

/* success_threshold passes in a row make it ready; not fewer. */
static void probe_success_threshold_honoured(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 200);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_TCP, .port = r.port, .interval_ms = 5,
                             .success_threshold = 3};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "s", .fiber = sleeper,
                                                        .readiness = &hp},
                                &svc),
              0);
  arbor_test_run_ticking_until(&loop, READY(svc).successes >= 1);
  if (READY(svc).successes < 3)
    assert_state(svc, STARTING);
  arbor_test_run_ticking_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  assert_true(READY(svc).successes >= 3);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* No attempt before initial_delay_ms. */
static void probe_initial_delay_honoured(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_TCP, .port = 1, .interval_ms = 1,
                             .initial_delay_ms = HOUR};
  arbor_node_t *svc, *other;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "late", .fiber = sleeper,
                                                        .liveness = &hp},
                                &svc),
              0);
  /* Something else that takes a few loop passes: by then a probe without the
   * delay would have been tried. */
  hp.initial_delay_ms = 0;
  hp.failure_threshold = 1000;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "now", .fiber = sleeper,
                                                        .liveness = &hp},
                                &other),
              0);
  arbor_test_run_ticking_until(&loop, LIVE(other).failures >= 3);
  arbor_probe_info_t pi = LIVE(svc);
  assert_int_eq(pi.active, 1);
  assert_int_eq(pi.successes + pi.failures, 0);
  assert_uint_eq(pi.spec.initial_delay_ms, HOUR);
  arbor_test_close(rt, &loop);
}

/* After ready, failure_threshold failures make it not ready (still STARTED; a
 * NOT_READY event with the verdict); passes make it ready again (READY). */
static void probe_readiness_not_ready_then_ready_again(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 200);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_HTTP, .port = r.port, .interval_ms = 5,
                             .failure_threshold = 2};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "cache", .fiber = sleeper,
                                                        .readiness = &hp},
                                &svc),
              0);
  arbor_test_run_ticking_until(&loop, sinfo(svc).ready == 1);
  r.status = 503;
  arbor_test_run_ticking_until(&loop, sinfo(svc).ready == 0);
  assert_state(svc, STARTED);
  assert_int_eq(sinfo(svc).phase, ARBOR_PHASE_RUNNING);
  assert_int_eq(READY(svc).failures_in_row, 2);
  assert_int_eq(count_type(rt, arbor_node_id(svc), ARBOR_EVENT_NOT_READY), 1);
  size_t n;
  arbor_event_t *ev = arbor_test_events(rt, &n);
  const arbor_event_t *nr = NULL;
  for (size_t i = 0; i < n; i++)
    if (ev[i].type == ARBOR_EVENT_NOT_READY)
      nr = &ev[i];
  assert_non_null(nr);
  assert_non_null(nr->error);
  assert_string_equal(arbor_error_message(nr->error), "readiness probe failed 2 times in a row");
  free(ev);
  r.status = 204;
  arbor_test_run_ticking_until(&loop, sinfo(svc).ready == 1);
  assert_int_eq(count_type(rt, arbor_node_id(svc), ARBOR_EVENT_READY), 1);
  assert_int_eq(sinfo(svc).restarts, 0);   /* readiness never restarts */
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* Chrome instant events ("ph":"i") of node id named name. */
static int chrome_instants(cJSON *doc, uint64_t id, const char *name) {
  int n = 0;
  const cJSON *ev;
  cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(doc, "traceEvents")) {
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(ev, "ph");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(ev, "name");
    const cJSON *node =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "args"), "node");
    n += cJSON_IsString(ph) && strcmp(ph->valuestring, "i") == 0 && cJSON_IsString(nm) &&
         strcmp(nm->valuestring, name) == 0 && cJSON_IsNumber(node) &&
         (uint64_t)node->valuedouble == id;
  }
  return n;
}

/* OTLP span events named name, in the span of node id (attribute arbor.node.id). */
static int otlp_events(cJSON *doc, uint64_t id, const char *name) {
  int n = 0;
  const cJSON *rs, *ss, *sp, *a, *e;
  cJSON_ArrayForEach(rs, cJSON_GetObjectItemCaseSensitive(doc, "resourceSpans"))
  cJSON_ArrayForEach(ss, cJSON_GetObjectItemCaseSensitive(rs, "scopeSpans"))
  cJSON_ArrayForEach(sp, cJSON_GetObjectItemCaseSensitive(ss, "spans")) {
    int mine = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(sp, "attributes")) {
      const cJSON *k = cJSON_GetObjectItemCaseSensitive(a, "key");
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(
          cJSON_GetObjectItemCaseSensitive(a, "value"), "intValue");
      char want[24];
      snprintf(want, sizeof want, "%llu", (unsigned long long)id);
      mine |= cJSON_IsString(k) && strcmp(k->valuestring, "arbor.node.id") == 0 &&
              cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
    }
    if (!mine)
      continue;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(sp, "events")) {
      const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
      n += cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0;
    }
  }
  return n;
}

static cJSON *trace_of(arbor_runtime_t *rt, arbor_trace_format_t format) {
  size_t len;
  char *text = arbor_test_trace_text(rt, format, &len);
  cJSON *doc = cJSON_ParseWithLength(text, len);
  free(text);
  assert_non_null(doc);
  return doc;
}

/* A probe's failures and the readiness verdicts are in both trace exports, as
 * instant events (Chrome) and span events (OTLP) of the service, as often as in
 * the event ring. */
static void probe_events_in_trace_exports(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 200);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_HTTP, .port = r.port, .interval_ms = 5,
                             .failure_threshold = 2};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "cache", .fiber = sleeper,
                                                        .readiness = &hp},
                                &svc),
              0);
  arbor_test_run_ticking_until(&loop, sinfo(svc).ready == 1);
  r.status = 503;
  arbor_test_run_ticking_until(&loop, sinfo(svc).ready == 0);
  r.status = 200;
  arbor_test_run_ticking_until(&loop, sinfo(svc).ready == 1);
  /* No loop turn from here to the exports: the ring cannot move in between. */
  uint64_t id = arbor_node_id(svc);
  int failed = (int)count_type(rt, id, ARBOR_EVENT_PROBE_FAILED);
  assert_true(failed >= 2);
  cJSON *chrome = trace_of(rt, ARBOR_TRACE_CHROME);
  cJSON *otlp = trace_of(rt, ARBOR_TRACE_OTLP);
  assert_int_eq(chrome_instants(chrome, id, "probe_failed"), failed);
  assert_int_eq(chrome_instants(chrome, id, "not_ready"), 1);
  assert_int_eq(chrome_instants(chrome, id, "ready"), 1);
  assert_int_eq(otlp_events(otlp, id, "probe_failed"), failed);
  assert_int_eq(otlp_events(otlp, id, "not_ready"), 1);
  assert_int_eq(otlp_events(otlp, id, "ready"), 1);
  cJSON_Delete(chrome);
  cJSON_Delete(otlp);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* A dependent (arbor_service_start_after) waits for the readiness probe: not
 * started while it fails, started once it passes; once running it is left alone
 * when its dependency turns not ready, but its supervisor's restart of it waits
 * again. */
static void probe_readiness_holds_dependent(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 503);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_HTTP, .port = r.port, .interval_ms = 5,
                             .failure_threshold = 1};
  arbor_node_t *sup, *db, *app;
  int app_runs = 0;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.intensity = 100, .no_backoff = 1},
                                   &sup),
              0);
  assert_code(arbor_service_add(sup,
                                &(arbor_service_spec_t){.name = "db", .fiber = sleeper,
                                                        .readiness = &hp},
                                &db),
              0);
  assert_code(arbor_service_add(sup,
                                &(arbor_service_spec_t){.name = "app", .fiber = sleeper,
                                                        .arg = &app_runs},
                                &app),
              0);
  assert_code(arbor_service_start_after(app, db), 0);
  tick_until_failures(&loop, db, ARBOR_PROBE_READINESS, 3);
  assert_int_eq(app_runs, 0);
  assert_state(db, STARTING);
  assert_state(app, CREATED);
  r.status = 200;
  arbor_test_run_ticking_until(&loop, app_runs == 1);
  assert_state(db, STARTED);

  r.status = 503;
  arbor_test_run_ticking_until(&loop, sinfo(db).ready == 0);
  assert_int_eq(sinfo(app).phase, ARBOR_PHASE_RUNNING);   /* left alone */
  /* Its supervisor restarts it after a failure: that start waits. */
  assert_code(arbor_service_fail(app, arbor_error_new(-EIO, "crashed")), 0);
  arbor_test_run_ticking_until(&loop, sinfo(app).waiting_for == arbor_node_id(db));
  assert_int_eq(app_runs, 1);
  r.status = 200;
  arbor_test_run_ticking_until(&loop, app_runs == 2);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* A host name is resolved off the loop (uv_getaddrinfo) at each attempt. */
static void probe_host_name_resolved(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 200);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_HTTP, .host = "localhost", .port = r.port,
                             .interval_ms = 5, .failure_threshold = 1000};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "named", .fiber = sleeper,
                                                        .liveness = &hp},
                                &svc),
              0);
  /* localhost may resolve to ::1 first, where nothing listens: an attempt ends
   * either way, and at least one must have resolved. */
  arbor_test_run_ticking_until(&loop, LIVE(svc).successes + LIVE(svc).failures >= 2);
  if (LIVE(svc).successes == 0) {
    const char *m = arbor_error_message(LIVE(svc).last_error);
    assert_null(strstr(m, "resolve"));
  }
  char want[64];
  snprintf(want, sizeof want, "http://localhost:%d/", r.port);
  assert_string_equal(LIVE(svc).target, want);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

/* Probes run for process services too, and stop with the run: a program whose
 * probe fails is stopped (its stop signal) and started again. */
static void probe_process_service_restarted_by_liveness(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_test_tmp_t t;
  arbor_test_tmp_open(&t, "probe-proc");
  char prog[256], check[256];
  /* Lives while its test directory does, at most 60 s. */
  snprintf(prog, sizeof prog, "i=0; while [ -d %s ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done",
           t.dir);
  snprintf(check, sizeof check, "test ! -e %s/sick", t.dir);
  char *argv[] = {"/bin/sh", "-c", prog, NULL};
  char *cargv[] = {"/bin/sh", "-c", check, NULL};
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_EXEC, .argv = cargv, .interval_ms = 5,
                             .failure_threshold = 1};
  arbor_node_t *sup, *svc;
  assert_code(arbor_supervisor_new(arbor_root(rt),
                                   &(arbor_sup_opts_t){.intensity = 100, .no_backoff = 1},
                                   &sup),
              0);
  assert_code(arbor_service_add(sup,
                                &(arbor_service_spec_t){.name = "prog", .argv = argv,
                                                        .liveness = &hp},
                                &svc),
              0);
  arbor_test_run_ticking_until(&loop, sinfo(svc).pid > 0 && LIVE(svc).successes >= 1);
  int pid = sinfo(svc).pid;
  arbor_test_tmp_touch(&t, "sick");
  arbor_test_run_ticking_until(&loop, sinfo(svc).restarts >= 1);
  assert_int_eq(sinfo(svc).history, 1);
  char buf[1024];
  failure_text(svc, 0, buf, sizeof buf);
  assert_non_null(strstr(buf, "liveness probe failed 1 times in a row"));
  assert_non_null(strstr(buf, "exec /bin/sh: exited with status 1"));
  unlink(arbor_test_tmp_file(&t, "sick"));
  arbor_test_run_ticking_until(&loop, sinfo(svc).pid > 0 && sinfo(svc).pid != pid);
  arbor_test_tmp_close(&t);      /* the program ends by itself */
  arbor_test_close(rt, &loop);
}

/* A service without probes has no probe timer: nothing wakes the loop for it. */
static void count_active_timer(uv_handle_t *h, void *arg) {
  if (h->type == UV_TIMER && uv_is_active(h))
    ++*(int *)arg;
}

static int active_timers(uv_loop_t *loop) {
  int n = 0;
  uv_walk(loop, count_active_timer, &n);
  return n;
}

static void probe_none_means_no_timer(void **state) {
  (void)state;
  int counts[2];
  for (int with = 0; with < 2; with++) {
    uv_loop_t loop;
    arbor_runtime_t *rt;
    arbor_test_open(&loop, &rt, NULL);
    arbor_health_probe_t hp = {.kind = ARBOR_PROBE_TCP, .port = 1, .initial_delay_ms = HOUR};
    arbor_node_t *svc;
    assert_code(arbor_service_add(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "s", .fiber = sleeper,
                                                          .liveness = with ? &hp : NULL},
                                  &svc),
                0);
    arbor_test_run_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
    counts[with] = active_timers(&loop);
    if (!with)
      assert_int_eq(arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS,
                                             &(arbor_probe_info_t){0}),
                    ARBOR_ENOENT);
    arbor_test_close(rt, &loop);
  }
  assert_int_eq(counts[1], counts[0] + 1);
}

/* Bad probes are refused with ARBOR_EINVAL and change nothing, at add and update. */
static void probe_bad_specs_refused(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  char *argv[] = {"/bin/true", NULL};
  char *empty[] = {NULL};
  arbor_health_probe_t bad[] = {
      {.kind = 0, .port = 80},
      {.kind = 9, .port = 80},
      {.kind = ARBOR_PROBE_HTTP, .port = 0},
      {.kind = ARBOR_PROBE_TCP, .port = 65536},
      {.kind = ARBOR_PROBE_HTTP, .port = 80, .path = "healthz"},
      {.kind = ARBOR_PROBE_HTTP, .port = 80, .path = "/a b"},
      {.kind = ARBOR_PROBE_HTTP, .port = 80, .path = "/a\r\nX: y"},
      {.kind = ARBOR_PROBE_HTTP, .port = 80, .host = ""},
      {.kind = ARBOR_PROBE_HTTP, .port = 80, .host = "a/b"},
      {.kind = ARBOR_PROBE_TCP, .port = 80, .host = "x y"},
      {.kind = ARBOR_PROBE_EXEC},
      {.kind = ARBOR_PROBE_EXEC, .argv = empty},
      {.kind = ARBOR_PROBE_TCP, .port = 80, .interval_ms = 86400001},
      {.kind = ARBOR_PROBE_TCP, .port = 80, .timeout_ms = 86400001},
      {.kind = ARBOR_PROBE_TCP, .port = 80, .failure_threshold = 1000001},
      {.kind = ARBOR_PROBE_TCP, .port = 80, .success_threshold = 2},   /* liveness */
  };
  arbor_node_info_t ni;
  arbor_node_info(arbor_root(rt), &ni);
  uint64_t before = ni.children_total;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_code(arbor_service_add(arbor_root(rt),
                                  &(arbor_service_spec_t){.name = "bad", .fiber = sleeper,
                                                          .liveness = &bad[i]},
                                  NULL),
                ARBOR_EINVAL);
  }
  arbor_node_info(arbor_root(rt), &ni);
  assert_uint_eq(ni.children_total, before);
  /* success_threshold above 1 is fine for readiness. */
  arbor_health_probe_t ok = {.kind = ARBOR_PROBE_EXEC, .argv = argv, .success_threshold = 2,
                             .initial_delay_ms = HOUR};
  arbor_node_t *svc;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "ok", .fiber = sleeper,
                                                        .readiness = &ok},
                                &svc),
              0);
  assert_code(arbor_service_update(svc, &(arbor_service_spec_t){.name = "ok", .fiber = sleeper,
                                                                 .readiness = &bad[2]}),
              ARBOR_EINVAL);
  arbor_probe_info_t pi = READY(svc);
  assert_int_eq(pi.kind, ARBOR_PROBE_EXEC);
  assert_string_equal(pi.target, "/bin/true");
  assert_uint_eq(pi.spec.success_threshold, 2);
  assert_uint_eq(pi.spec.failure_threshold, 3);      /* defaults filled in */
  assert_uint_eq(pi.spec.interval_ms, 10000);
  assert_uint_eq(pi.spec.timeout_ms, 1000);
  assert_code(arbor_service_probe_info(svc, 7, &pi), ARBOR_EINVAL);
  assert_code(arbor_service_probe_info(arbor_root(rt), ARBOR_PROBE_READINESS, &pi), ARBOR_EKIND);
  assert_string_equal(arbor_probe_kind_name(ARBOR_PROBE_HTTP), "http");
  assert_string_equal(arbor_probe_role_name(ARBOR_PROBE_READINESS), "readiness");
  arbor_test_close(rt, &loop);
}

/* An update's new probes apply to the next run. */
static void probe_update_replaces_probes(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  responder_t r;
  responder_open(&loop, &r, 200);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_TCP, .port = r.port, .interval_ms = 5};
  arbor_node_t *sup, *svc;
  assert_code(arbor_supervisor_new(arbor_root(rt), NULL, &sup), 0);
  assert_code(arbor_service_add(sup, &(arbor_service_spec_t){.name = "u", .fiber = sleeper},
                                &svc),
              0);
  arbor_test_run_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  assert_code(arbor_service_update(svc, &(arbor_service_spec_t){.name = "u", .fiber = sleeper,
                                                                 .readiness = &hp}),
              0);
  arbor_test_run_ticking_until(&loop, sinfo(svc).restarts == 1 && sinfo(svc).ready == 1);
  assert_true(READY(svc).successes >= 1);
  responder_close(&loop, &r);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(probe_http_readiness_holds_started_until_pass),
    cmocka_unit_test(probe_liveness_threshold_restarts_with_cause),
    cmocka_unit_test(probe_tcp_passes_then_refused_fails),
    cmocka_unit_test(probe_exec_passes_and_fails_with_output),
    cmocka_unit_test(probe_timeout_fails_attempt),
    cmocka_unit_test(probe_success_threshold_honoured),
    cmocka_unit_test(probe_initial_delay_honoured),
    cmocka_unit_test(probe_readiness_not_ready_then_ready_again),
    cmocka_unit_test(probe_events_in_trace_exports),
    cmocka_unit_test(probe_readiness_holds_dependent),
    cmocka_unit_test(probe_host_name_resolved),
    cmocka_unit_test(probe_process_service_restarted_by_liveness),
    cmocka_unit_test(probe_none_means_no_timer),
    cmocka_unit_test(probe_bad_specs_refused),
    cmocka_unit_test(probe_update_replaces_probes),
};

ARBOR_TEST_MAIN(tests)
