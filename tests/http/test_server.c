/* tests/http/test_server.c - the admin server core (http/server.c, stream.c,
 * routes.c, health.c, static.c) through real HTTP on 127.0.0.1, port 0.
 *
 * Every test starts its own runtime and server on its own loop and drives them
 * with httpc (tests/http/httpc.h: libcurl on a helper thread while this thread
 * runs the loop), and ends with the runtime's close and uv_loop_close == 0.
 */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/httpc.h"
#include "http/server_fixture.h"

/* ------------------------------------------------------------ fixtures */

/* Predicates for httpc_run_until. */
static int node_started(void *arg) { return arbor_node_state(arg) == ARBOR_STATE_STARTED; }
static int int_positive(void *arg) { return *(int *)arg > 0; }


/* Asserts the header's value. */
static void assert_header(const struct resp *r, const char *name, const char *want) {
  char *v = httpc_header(r->hdrs, name);
  if (v == NULL || strcmp(v, want) != 0) {
    print_error("header %s: got \"%s\", want \"%s\"\n", name, v != NULL ? v : "(none)", want);
    free(v);
    fail();
  }
  free(v);
}

static void assert_no_header(const struct resp *r, const char *name) {
  char *v = httpc_header(r->hdrs, name);
  if (v != NULL) {
    print_error("header %s: got \"%s\", want none\n", name, v);
    free(v);
    fail();
  }
}

/* Asserts a JSON error body with this code. */
static void assert_error_body(const struct resp *r, const char *code) {
  cJSON *j = cJSON_Parse(r->body);
  if (j == NULL) {
    print_error("not JSON: %s\n", r->body);
    fail();
  }
  cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
  cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
  int ok = cJSON_IsString(c) && strcmp(c->valuestring, code) == 0 && cJSON_IsString(m) &&
           m->valuestring[0] != '\0';
  if (!ok)
    print_error("want error code %s, got %s\n", code, r->body);
  cJSON_Delete(j);
  assert_true(ok);
}

/* ------------------------------------------------------------- routing */

static void server_unknown_path_404_json(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "GET", "/nope", NULL, NULL);
  assert_int_eq(r.rc, 0);
  assert_int_eq(r.status, 404);
  assert_header(&r, "Content-Type", "application/json; charset=utf-8");
  assert_header(&r, "X-Content-Type-Options", "nosniff");
  assert_header(&r, "Cache-Control", "no-store");
  assert_no_header(&r, "Access-Control-Allow-Origin");
  assert_error_body(&r, "not_found");
  resp_free(&r);
  /* a trailing slash or an empty {id} is another path */
  r = req(&f, "GET", "/healthz/", NULL, NULL);
  assert_int_eq(r.status, 404);
  resp_free(&r);
  r = req(&f, "POST", "/api/v1/nodes//cancel", NULL, NULL);
  assert_int_eq(r.status, 404);
  resp_free(&r);
  fx_close(&f);
}

static void server_wrong_method_405_with_allow(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "PUT", "/healthz", "x", NULL);
  assert_int_eq(r.status, 405);
  assert_header(&r, "Allow", "GET, HEAD");
  assert_error_body(&r, "method_not_allowed");
  resp_free(&r);
  r = req(&f, "POST", "/readyz", NULL, NULL);
  assert_int_eq(r.status, 405);
  assert_header(&r, "Allow", "GET, HEAD");
  resp_free(&r);
  r = req(&f, "GET", "/api/v1/nodes/1/cancel", NULL, NULL);
  assert_int_eq(r.status, 405);
  assert_header(&r, "Allow", "POST");
  resp_free(&r);
  r = req(&f, "DELETE", "/api/v1/nodes/1", NULL, NULL);
  assert_int_eq(r.status, 405);
  assert_header(&r, "Allow", "GET, HEAD");
  resp_free(&r);
  /* no CORS configured: no preflight either */
  r = req(&f, "OPTIONS", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 405);
  resp_free(&r);
  fx_close(&f);
}

static void server_long_url_414(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.max_url = 100};
  fx_open(&f, &o);
  char path[200];
  memset(path, 'a', sizeof path);
  memcpy(path, "/healthz?x=", 11);
  path[101] = '\0';              /* 101 bytes: one over */
  struct resp r = req(&f, "GET", path, NULL, NULL);
  assert_int_eq(r.status, 414);
  assert_error_body(&r, "uri_too_long");
  resp_free(&r);
  path[100] = '\0';              /* exactly the limit */
  r = req(&f, "GET", path, NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  /* before routing: an unknown path that is too long is 414, not 404 */
  path[0] = '/';
  memset(path + 1, 'b', 150);
  path[151] = '\0';
  r = req(&f, "GET", path, NULL, NULL);
  assert_int_eq(r.status, 414);
  resp_free(&r);
  fx_close(&f);
}

static void server_default_url_limit_414(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  char path[3000];
  memset(path, 'a', sizeof path);
  memcpy(path, "/healthz?x=", 11);
  path[2049] = '\0';             /* the default limit is 2048 */
  struct resp r = req(&f, "GET", path, NULL, NULL);
  assert_int_eq(r.status, 414);
  assert_error_body(&r, "uri_too_long");
  resp_free(&r);
  fx_close(&f);
}

static void server_body_over_limit_413(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.max_body = 16};
  fx_open(&f, &o);
  /* Content-Length over the limit: answered before the body is read */
  struct resp r = req(&f, "POST", "/api/v1/nodes/1/cancel", "0123456789abcdefX", NULL);
  assert_int_eq(r.status, 413);
  assert_error_body(&r, "payload_too_large");
  resp_free(&r);
  /* a big one too (curl waits for 100-continue, which never comes) */
  char big[20000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  r = req(&f, "POST", "/api/v1/nodes/1/cancel", big, NULL);
  assert_int_eq(r.rc, 0);
  assert_int_eq(r.status, 413);
  resp_free(&r);
  /* chunked: no length up front; the excess is dropped, 413 at the end */
  char url[128];
  httpc_opts_t ho = {.method = "POST",
                     .url = httpc_url(url, sizeof url, f.port, "/api/v1/nodes/1/cancel"),
                     .body = "0123456789abcdefghij",
                     .chunked = 1};
  struct httpc_call *c = httpc_begin(&f.loop, &ho);
  assert_non_null(c);
  httpc_wait(c, NULL, NULL);
  assert_int_eq(httpc_end(c, &r.status, &r.body, &r.hdrs), 0);
  assert_int_eq(r.status, 413);
  assert_error_body(&r, "payload_too_large");
  resp_free(&r);
  /* at the limit: through to the handler (not 413) */
  r = req(&f, "POST", "/api/v1/nodes/1/cancel", "0123456789abcdef", NULL);
  assert_true(r.status != 413);
  resp_free(&r);
  fx_close(&f);
}

/* ---------------------------------------------------------------- auth */

static void server_post_needs_bearer_token_401_wrong_token_403(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.token = "s3cret-token"};
  fx_open(&f, &o);
  const char *none[] = {NULL};
  const char *empty[] = {"Authorization: Bearer ", NULL};
  const char *basic[] = {"Authorization: Basic s3cret-token", NULL};
  const char *nospace[] = {"Authorization: Bearers3cret-token", NULL};
  const char *const *missing[] = {none, empty, basic, nospace};
  for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
    struct resp r = req(&f, "POST", "/api/v1/nodes/999999/cancel", NULL, missing[i]);
    if (r.status != 401)
      print_error("case %zu: %s\n", i, missing[i][0] != NULL ? missing[i][0] : "(no header)");
    assert_int_eq(r.status, 401);
    assert_header(&r, "WWW-Authenticate", "Bearer realm=\"arbor\"");
    assert_error_body(&r, "unauthorized");
    resp_free(&r);
  }
  const char *wrong_same_len[] = {"Authorization: Bearer s3cret-tokeN", NULL};
  const char *prefix[] = {"Authorization: Bearer s3cret", NULL};
  const char *longer[] = {"Authorization: Bearer s3cret-token2", NULL};
  const char *const *wrong[] = {wrong_same_len, prefix, longer};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    struct resp r = req(&f, "POST", "/api/v1/nodes/999999/cancel", NULL, wrong[i]);
    if (r.status != 403)
      print_error("case %zu: %s\n", i, wrong[i][0]);
    assert_int_eq(r.status, 403);
    assert_header(&r, "WWW-Authenticate", "Bearer realm=\"arbor\", error=\"invalid_token\"");
    assert_error_body(&r, "forbidden");
    resp_free(&r);
  }
  const char *good[] = {"Authorization: Bearer s3cret-token", NULL};
  const char *good_lower[] = {"Authorization: bearer   s3cret-token", NULL};
  const char *const *ok[] = {good, good_lower};
  for (size_t i = 0; i < 2; i++) {
    struct resp r = req(&f, "POST", "/api/v1/nodes/999999/cancel", NULL, ok[i]);
    assert_true(r.status != 401 && r.status != 0);
    assert_no_header(&r, "WWW-Authenticate");
    resp_free(&r);
  }
  /* reading needs no token */
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  fx_close(&f);
}

static void server_without_token_post_is_open(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "POST", "/api/v1/nodes/999999/cancel", NULL, NULL);
  assert_true(r.status != 401 && r.status != 0);
  resp_free(&r);
  fx_close(&f);
}

static char *write_temp(const char *content) {
  char *path = strdup("/tmp/arbor-token-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = strlen(content);
  assert_int_eq(write(fd, content, n), (ssize_t)n);
  close(fd);
  return path;
}

static void server_token_file_first_line(void **state) {
  char *path = write_temp("from-file\nsecond line\n");
  struct fx f;
  arbor_admin_opts_t o = {.token_file = path};
  fx_open(&f, &o);
  unlink(path);                  /* read once, at start */
  const char *good[] = {"Authorization: Bearer from-file", NULL};
  const char *whole[] = {"Authorization: Bearer from-file\\nsecond line", NULL};
  struct resp r = req(&f, "POST", "/api/v1/nodes/999999/cancel", NULL, good);
  assert_true(r.status != 401 && r.status != 0);
  resp_free(&r);
  r = req(&f, "POST", "/api/v1/nodes/999999/cancel", NULL, whole);
  assert_int_eq(r.status, 403);
  resp_free(&r);
  r = req(&f, "POST", "/api/v1/nodes/999999/cancel", NULL, NULL);
  assert_int_eq(r.status, 401);
  resp_free(&r);
  fx_close(&f);
  free(path);
}

static void server_token_file_bad_is_einval(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin = (arbor_admin_t *)&loop;
  arbor_test_open(&loop, &rt, NULL);
  char *empty = write_temp("");
  char *blank = write_temp("\n");
  char *spaced = write_temp("two words\n");
  const char *files[] = {empty, blank, spaced, "/nonexistent/arbor-token"};
  for (size_t i = 0; i < 4; i++) {
    arbor_admin_opts_t o = {.token_file = files[i]};
    assert_code(arbor_admin_start(rt, &o, &admin), ARBOR_EINVAL);
    assert_null(admin);
  }
  arbor_admin_opts_t both = {.token = "a", .token_file = empty};
  assert_code(arbor_admin_start(rt, &both, &admin), ARBOR_EINVAL);
  arbor_admin_opts_t empty_token = {.token = ""};
  assert_code(arbor_admin_start(rt, &empty_token, &admin), ARBOR_EINVAL);
  unlink(empty);
  unlink(blank);
  unlink(spaced);
  free(empty);
  free(blank);
  free(spaced);
  int flag;
  arbor_test_close_begin(rt, &flag);
  arbor_test_close_end(&loop, &flag);
}

/* A port nobody listens on now (bound and released). */
static int free_port(void) {
  uv_loop_t loop;
  uv_tcp_t tcp;
  struct sockaddr_in a;
  assert_int_eq(uv_loop_init(&loop), 0);
  assert_int_eq(uv_tcp_init(&loop, &tcp), 0);
  assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &a), 0);
  assert_int_eq(uv_tcp_bind(&tcp, (struct sockaddr *)&a, 0), 0);
  struct sockaddr_storage got;
  int len = sizeof got;
  assert_int_eq(uv_tcp_getsockname(&tcp, (struct sockaddr *)&got, &len), 0);
  uv_close((uv_handle_t *)&tcp, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_eq(uv_loop_close(&loop), 0);
  return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void server_nonloopback_without_token_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  arbor_test_open(&loop, &rt, NULL);
  int port = free_port();
  const char *binds[] = {"0.0.0.0", "::", "192.0.2.1"};
  for (size_t i = 0; i < 3; i++) {
    arbor_admin_opts_t o = {.bind = binds[i], .port = port};
    assert_code(arbor_admin_start(rt, &o, &admin), ARBOR_EACCES);
  }
  /* nothing listens there */
  int fd = httpc_connect_raw(port);
  assert_int_eq(fd, -ECONNREFUSED);
  /* not an address; a port out of range */
  arbor_admin_opts_t bad = {.bind = "localhost"};
  assert_code(arbor_admin_start(rt, &bad, &admin), ARBOR_EINVAL);
  arbor_admin_opts_t badport = {.port = 70000};
  assert_code(arbor_admin_start(rt, &badport, &admin), ARBOR_EINVAL);
  assert_code(arbor_admin_start(NULL, NULL, &admin), ARBOR_EINVAL);
  /* loopback forms are fine without a token; any address is with one */
  const char *loops[] = {"127.0.0.1", "127.1.2.3"};
  for (size_t i = 0; i < 2; i++) {
    arbor_admin_opts_t o = {.bind = loops[i]};
    assert_code(arbor_admin_start(rt, &o, &admin), 0);
    assert_code(arbor_admin_stop(admin), 0);
  }
  arbor_admin_opts_t with_token = {.bind = "0.0.0.0", .token = "t"};
  assert_code(arbor_admin_start(rt, &with_token, &admin), 0);
  assert_true(arbor_admin_port(admin) > 0);
  int flag;
  arbor_test_close_begin(rt, &flag);
  arbor_test_close_end(&loop, &flag);
}

static void server_ipv6_loopback(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  arbor_test_open(&loop, &rt, NULL);
  arbor_admin_opts_t o = {.bind = "::1"};
  int rc = arbor_admin_start(rt, &o, &admin);
  if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
    int flag;
    arbor_test_close_begin(rt, &flag);
    arbor_test_close_end(&loop, &flag);
    skip();                      /* no IPv6 on this machine */
  }
  assert_code(rc, 0);
  char url[128];
  snprintf(url, sizeof url, "http://[::1]:%d/healthz", arbor_admin_port(admin));
  long status;
  char *body;
  assert_int_eq(httpc_request(&loop, "GET", url, NULL, NULL, &status, &body, NULL), 0);
  assert_int_eq(status, 200);
  free(body);
  int flag;
  arbor_test_close_begin(rt, &flag);
  arbor_test_close_end(&loop, &flag);
}

/* -------------------------------------------------------------- health */

static void server_healthz_ok(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  assert_string_equal(r.body, "{\"status\":\"ok\"}");
  assert_header(&r, "Content-Type", "application/json; charset=utf-8");
  resp_free(&r);
  fx_close(&f);
}

static int ready_flag;

static int handshake_body(arbor_ctx_t *cx, void *arg) {
  int *flag = arg;
  int rc;
  while (!*flag)
    if ((rc = arbor_sleep(cx, 1)) != 0)
      return rc;
  if ((rc = arbor_fiber_started(cx, NULL)) != 0)
    return rc;
  return arbor_sleep(cx, 3600 * 1000);
}

static void server_readyz_503_until_services_started(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "GET", "/readyz", NULL, NULL);
  assert_int_eq(r.status, 200);      /* nothing to wait for */
  assert_string_equal(r.body, "{\"ready\":true}");
  resp_free(&r);

  arbor_node_t *sup, *svc;
  assert_code(arbor_supervisor_new(arbor_root(f.rt), NULL, &sup), 0);
  ready_flag = 0;
  arbor_service_spec_t spec = {.name = "slow", .fiber = handshake_body, .arg = &ready_flag,
                               .handshake = 1};
  assert_code(arbor_service_add(sup, &spec, &svc), 0);
  arbor_test_run_until(&f.loop, arbor_node_state(svc) == ARBOR_STATE_STARTING);
  r = req(&f, "GET", "/readyz", NULL, NULL);
  assert_int_eq(r.status, 503);
  cJSON *j = cJSON_Parse(r.body);
  assert_non_null(j);
  assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "ready")));
  cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "not_started");
  assert_int_eq(cJSON_GetArraySize(ids), 2);     /* the supervisor, then its service */
  assert_uint_eq(cJSON_GetArrayItem(ids, 0)->valuedouble, arbor_node_id(sup));
  assert_uint_eq(cJSON_GetArrayItem(ids, 1)->valuedouble, arbor_node_id(svc));
  cJSON_Delete(j);
  resp_free(&r);

  ready_flag = 1;
  httpc_run_until(&f.loop, node_started, sup);
  r = req(&f, "GET", "/readyz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  fx_close(&f);
}

/* A readiness probe decides /readyz too: a STARTED service it fails is listed
 * (503) until it passes again; the node's detail shows the probe. */
static void on_probe_conn(uv_stream_t *server, int status) {
  (void)status;
  uv_tcp_t *c = malloc(sizeof *c);
  assert_non_null(c);
  uv_tcp_init(server->loop, c);
  (void)uv_accept(server, (uv_stream_t *)c);
  uv_close((uv_handle_t *)c, (uv_close_cb)free);   /* accepted: the probe passed */
}

static int svc_not_ready(void *arg) {
  arbor_service_info_t si;
  return arbor_service_info(arg, &si) == 0 && si.phase == ARBOR_PHASE_RUNNING && !si.ready;
}

static void server_readyz_follows_readiness_probe(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  uv_tcp_t lis;
  struct sockaddr_in a;
  assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &a), 0);
  assert_int_eq(uv_tcp_init(&f.loop, &lis), 0);
  assert_int_eq(uv_tcp_bind(&lis, (const struct sockaddr *)&a, 0), 0);
  assert_int_eq(uv_listen((uv_stream_t *)&lis, 16, on_probe_conn), 0);
  int len = sizeof a;
  assert_int_eq(uv_tcp_getsockname(&lis, (struct sockaddr *)&a, &len), 0);

  arbor_node_t *sup, *svc;
  assert_code(arbor_supervisor_new(arbor_root(f.rt), NULL, &sup), 0);
  arbor_health_probe_t hp = {.kind = ARBOR_PROBE_TCP, .port = ntohs(a.sin_port),
                             .interval_ms = 5, .failure_threshold = 1};
  ready_flag = 1;
  arbor_service_spec_t spec = {.name = "db", .fiber = handshake_body, .arg = &ready_flag,
                               .handshake = 1, .readiness = &hp};
  assert_code(arbor_service_add(sup, &spec, &svc), 0);
  httpc_run_until(&f.loop, node_started, sup);
  struct resp r = req(&f, "GET", "/readyz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);

  uv_close((uv_handle_t *)&lis, NULL);   /* connects are refused from now on */
  httpc_run_until(&f.loop, svc_not_ready, svc);
  r = req(&f, "GET", "/readyz", NULL, NULL);
  assert_int_eq(r.status, 503);
  cJSON *j = cJSON_Parse(r.body);
  cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "not_started");
  assert_int_eq(cJSON_GetArraySize(ids), 1);     /* the service; its supervisor runs */
  assert_uint_eq(cJSON_GetArrayItem(ids, 0)->valuedouble, arbor_node_id(svc));
  cJSON_Delete(j);
  resp_free(&r);

  char path[64];
  snprintf(path, sizeof path, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(svc));
  r = req(&f, "GET", path, NULL, NULL);
  assert_int_eq(r.status, 200);
  j = cJSON_Parse(r.body);
  cJSON *sv = cJSON_GetObjectItemCaseSensitive(j, "service");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(sv, "ready")));
  cJSON *probes = cJSON_GetObjectItemCaseSensitive(sv, "probes");
  assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(probes, "liveness")));
  cJSON *rp = cJSON_GetObjectItemCaseSensitive(probes, "readiness");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(rp, "kind")->valuestring, "tcp");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rp, "passing")));
  cJSON *le = cJSON_GetObjectItemCaseSensitive(rp, "last_error");
  assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(le, "message")->valuestring,
                         "connection refused"));
  cJSON_Delete(j);
  resp_free(&r);
  fx_close(&f);
}

/* -------------------------------------------------------------- static */

/* The page's own headers and CSP are test_static.c's; here only that the
 * API's responses are never documents. */
static void server_api_csp_strict(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_header(&r, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  assert_header(&r, "X-Content-Type-Options", "nosniff");
  resp_free(&r);
  fx_close(&f);
}

static void server_head_has_headers_no_body(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "HEAD", "/ui/favicon.svg", NULL, NULL);
  assert_int_eq(r.rc, 0);
  assert_int_eq(r.status, 200);
  assert_string_equal(r.body, "");
  assert_header(&r, "Content-Type", "image/svg+xml");
  char *len = httpc_header(r.hdrs, "Content-Length");
  assert_non_null(len);
  assert_true(atoi(len) > 100);
  free(len);
  resp_free(&r);
  r = req(&f, "HEAD", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  assert_string_equal(r.body, "");
  resp_free(&r);
  fx_close(&f);
}

static void server_cors_only_when_configured(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.cors_origin = "https://ops.example"};
  fx_open(&f, &o);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_header(&r, "Access-Control-Allow-Origin", "https://ops.example");
  resp_free(&r);
  const char *hdrs[] = {"Origin: https://ops.example",
                        "Access-Control-Request-Method: POST", NULL};
  r = req(&f, "OPTIONS", "/api/v1/nodes/3/cancel", NULL, hdrs);
  assert_int_eq(r.status, 204);
  assert_header(&r, "Access-Control-Allow-Origin", "https://ops.example");
  assert_header(&r, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE");
  char *ah = httpc_header(r.hdrs, "Access-Control-Allow-Headers");
  assert_non_null(ah);
  assert_non_null(strstr(ah, "Authorization"));
  free(ah);
  resp_free(&r);
  r = req(&f, "PUT", "/healthz", NULL, NULL);
  assert_header(&r, "Allow", "GET, HEAD, OPTIONS");
  resp_free(&r);
  r = req(&f, "OPTIONS", "/nope", NULL, hdrs);
  assert_int_eq(r.status, 404);
  resp_free(&r);
  fx_close(&f);
}

/* --------------------------------------------------------------- limits */

static void server_connection_limit_503(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.max_connections = 1};
  fx_open(&f, &o);
  /* One connection that sends nothing holds the only slot. It is in the listen
   * backlog before curl's, so the server accepts it first. */
  int fd = httpc_connect_raw(f.port);
  assert_true(fd >= 0);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 503);
  assert_error_body(&r, "too_many_connections");
  resp_free(&r);
  close(fd);
  /* the slot comes back once the server has seen the close */
  for (;;) {
    r = req(&f, "GET", "/healthz", NULL, NULL);
    long st = r.status;
    resp_free(&r);
    if (st == 200)
      break;
    assert_int_eq(st, 503);
  }
  fx_close(&f);
}


/* A burst: connections within the limit are served even while the spare one
 * (over the limit) is open; only the spare is told 503. */
struct burst {
  int fd[3];
  char buf[3][2048];
  size_t len[3];
};

/* Whether every connection got a whole response (headers and a JSON body). */
static int burst_answered(void *arg) {
  struct burst *b = arg;
  int done = 0;
  for (int i = 0; i < 3; i++) {
    ssize_t n;
    while (b->len[i] + 1 < sizeof b->buf[i] &&
           (n = recv(b->fd[i], b->buf[i] + b->len[i], sizeof b->buf[i] - 1 - b->len[i],
                     MSG_DONTWAIT)) > 0)
      b->len[i] += (size_t)n;
    b->buf[i][b->len[i]] = '\0';
    const char *body = strstr(b->buf[i], "\r\n\r\n");
    done += body != NULL && strchr(body, '}') != NULL;
  }
  return done == 3;
}

static void server_burst_503_only_over_limit(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.max_connections = 2};
  fx_open(&f, &o);
  /* All three connect and send before the loop runs: the server accepts them
   * together, then handles their requests. */
  struct burst b = {0};
  static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 3; i++) {
    b.fd[i] = httpc_connect_raw(f.port);
    assert_true(b.fd[i] >= 0);
    assert_int_eq(send(b.fd[i], get, sizeof get - 1, 0), (ssize_t)(sizeof get - 1));
  }
  httpc_run_until(&f.loop, burst_answered, &b);
  int ok = 0, busy = 0;
  for (int i = 0; i < 3; i++) {
    ok += strncmp(b.buf[i], "HTTP/1.1 200", 12) == 0;
    busy += strncmp(b.buf[i], "HTTP/1.1 503", 12) == 0;
    close(b.fd[i]);
  }
  assert_int_eq(ok, 2);
  assert_int_eq(busy, 1);
  fx_close(&f);
}

/* MHD stops accepting at its limit (max_connections + 1) and resumes only at
 * its next run: when the last connections close, nothing else may run it, and
 * a new client would wait in the backlog for ever. */
static void server_accepts_again_after_limit_reached(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.max_connections = 1};
  fx_open(&f, &o);
  int fd[2];
  for (int i = 0; i < 2; i++) {
    fd[i] = httpc_connect_raw(f.port);
    assert_true(fd[i] >= 0);
  }
  f.want = 2;               /* the one allowed and the spare: MHD's limit */
  httpc_run_until(&f.loop, fx_connections_are, &f);
  close(fd[0]);
  close(fd[1]);
  f.want = 0;
  httpc_run_until(&f.loop, fx_connections_are, &f);
  static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  char out[2048];
  long n = httpc_raw_exchange(&f.loop, f.port, get, sizeof get - 1, out, sizeof out, 20000);
  if (n < 0)
    print_error("no answer after the limit: %ld\n", n);
  assert_true(n > 0);
  assert_int_eq(strncmp(out, "HTTP/1.1 200", 12), 0);
  fx_close(&f);
}

/* ------------------------------------------------------------ lifetime */

static void server_runtime_close_closes_server(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  /* an idle keep-alive connection stays open at close */
  int fd = httpc_connect_raw(f.port);
  assert_true(fd >= 0);
  arbor_test_spin(&f.loop, 3);
  int port = f.port;
  fx_close(&f);                  /* uv_loop_close == 0 inside */
  close(fd);
  assert_int_eq(httpc_connect_raw(port), -ECONNREFUSED);
}

static void server_stop_then_runtime_close(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  assert_code(arbor_admin_stop(f.admin), 0);
  assert_code(arbor_admin_stop(NULL), ARBOR_EINVAL);
  assert_int_eq(httpc_connect_raw(f.port), -ECONNREFUSED);
  arbor_test_spin(&f.loop, 2);   /* the handles' close callbacks free the server */
  /* the runtime runs on without it */
  arbor_node_t *g;
  assert_code(arbor_group_new(arbor_root(f.rt), NULL, &g), 0);
  fx_close(&f);
}

static void server_two_servers_one_runtime(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  arbor_admin_t *second;
  assert_code(arbor_admin_start(f.rt, NULL, &second), 0);
  assert_true(arbor_admin_port(second) != f.port);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  fx_close(&f);
}

/* -------------------------------------------------------------- streams */

/* A tiny stream: "data N" for each item the test makes pending, ": beat" on a
 * heartbeat, and "data event" once when the runtime recorded a new event. */
struct tstream {
  int sent, pending;
  uint64_t events_seen;
  int watch_events;
  arbor_runtime_t *rt;
};
static struct tstream ts;
static int ts_fills, ts_beats, ts_done;
static unsigned ts_heartbeat_ms;

static ssize_t ts_fill(void *state, char *buf, size_t max, int heartbeat) {
  struct tstream *s = state;
  ts_fills++;
  if (s->sent < s->pending) {
    s->sent++;
    return snprintf(buf, max, "data: %d\n\n", s->sent);
  }
  if (s->watch_events) {
    arbor_events_stats_t st;
    arbor_events_stats(s->rt, &st);
    if (st.recorded > s->events_seen) {
      s->events_seen = st.recorded;
      return snprintf(buf, max, "data: event\n\n");
    }
  }
  if (heartbeat) {
    ts_beats++;
    return snprintf(buf, max, ": beat\n\n");
  }
  return 0;
}

static void ts_done_cb(void *state) {
  (void)state;
  ts_done++;
}

static const struct http_stream_ops ts_ops = {ts_fill, ts_done_cb};

static enum MHD_Result ts_handler(struct http_req *r) {
  ts.rt = r->rt;
  return http_stream(r, "text/event-stream", &ts_ops, &ts, ts_heartbeat_ms);
}

static const struct http_route ts_routes[] = {{"GET", "/test/stream", ts_handler}};

static void ts_reset(unsigned heartbeat_ms) {
  memset(&ts, 0, sizeof ts);
  ts_fills = ts_beats = ts_done = 0;
  ts_heartbeat_ms = heartbeat_ms;
  http__test_routes(ts_routes, 1);
}

static int has_text(const char *body, size_t len, void *arg) {
  (void)len;
  return strstr(body, arg) != NULL;
}

static struct httpc_call *ts_begin(struct fx *f, size_t max_events) {
  static char url[128];
  httpc_opts_t o = {.url = httpc_url(url, sizeof url, f->port, "/test/stream"),
                    .max_events = max_events};
  struct httpc_call *c = httpc_begin(&f->loop, &o);
  assert_non_null(c);
  return c;
}

static void server_stream_wake_resumes_suspended(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  ts_reset(0);                   /* no heartbeat: only a wake can resume it */
  ts.pending = 1;
  struct httpc_call *c = ts_begin(&f, 3);
  assert_true(httpc_wait(c, has_text, "data: 1\n\n"));
  /* it is suspended now (fill said 0); more data and a wake */
  int fills = ts_fills;
  ts.pending = 2;
  http_streams_wake(f.admin);
  assert_int_eq(ts_fills, fills);          /* wake only schedules */
  assert_true(httpc_wait(c, has_text, "data: 2\n\n"));
  ts.pending = 3;
  http_streams_wake(f.admin);
  http_streams_wake(f.admin);              /* twice: one resume */
  httpc_wait(c, NULL, NULL);               /* the third event ends it (max_events) */
  long status;
  char *body, *hdrs;
  assert_int_eq(httpc_end(c, &status, &body, &hdrs), 0);
  assert_int_eq(status, 200);
  assert_string_equal(body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
  char *ct = httpc_header(hdrs, "Content-Type");
  assert_string_equal(ct, "text/event-stream");
  free(ct);
  free(body);
  free(hdrs);
  assert_int_eq(ts_beats, 0);
  /* the client left while the stream was suspended: the stop ends it */
  assert_code(arbor_admin_stop(f.admin), 0);
  assert_int_eq(ts_done, 1);
  http__test_routes(NULL, 0);
  fx_close(&f);
}

static void server_stream_heartbeat_when_idle(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  ts_reset(5);
  struct httpc_call *c = ts_begin(&f, 2);
  long status;
  char *body;
  httpc_wait(c, NULL, NULL);
  assert_int_eq(httpc_end(c, &status, &body, NULL), 0);
  assert_string_equal(body, ": beat\n\n: beat\n\n");
  free(body);
  assert_true(ts_beats >= 2);
  /* a later heartbeat finds the client gone: done() without a stop */
  httpc_run_until(&f.loop, int_positive, &ts_done);
  assert_int_eq(ts_done, 1);
  http__test_routes(NULL, 0);
  fx_close(&f);
}


/* A client that leaves while its stream is suspended (no heartbeat at all)
 * frees its slot: the server notices the closed socket by itself. */
static void server_stream_suspended_client_gone_frees_slot(void **state) {
  struct fx f;
  arbor_admin_opts_t o = {.max_connections = 1};
  fx_open(&f, &o);
  ts_reset(0);
  /* One event first, so that the status line reached the client before it
   * leaves (a stream suspended at its first fill may not have sent it yet). */
  ts.pending = 1;
  struct httpc_call *c = ts_begin(&f, 2);
  assert_true(httpc_wait(c, has_text, "data: 1\n\n"));
  httpc_run_until(&f.loop, int_positive, &ts_fills);   /* suspended once */
  long status;
  assert_int_eq(httpc_end(c, &status, NULL, NULL), 0);
  assert_int_eq(status, 200);
  httpc_run_until(&f.loop, int_positive, &ts_done);
  assert_int_eq(ts_done, 1);
  /* and the only slot serves again */
  for (;;) {
    struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
    long st = r.status;
    resp_free(&r);
    if (st == 200)
      break;
    assert_int_eq(st, 503);
  }
  http__test_routes(NULL, 0);
  fx_close(&f);
}

/* A stream with a long backlog yields after its share of an iteration and
 * goes on in the next: everything arrives, in order. */
static void server_stream_backlog_yields_and_completes(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  ts_reset(0);
  ts.pending = 20000;            /* about 230 KB: several turns */
  struct httpc_call *c = ts_begin(&f, 20000);
  httpc_wait(c, NULL, NULL);
  long status;
  char *body;
  assert_int_eq(httpc_end(c, &status, &body, NULL), 0);
  assert_int_eq(status, 200);
  const char *p = body;
  for (int i = 1; i <= 20000; i++) {
    char want[32];
    int n = snprintf(want, sizeof want, "data: %d\n\n", i);
    assert_int_eq(strncmp(p, want, (size_t)n), 0);
    p += n;
  }
  assert_string_equal(p, "");
  free(body);
  http__test_routes(NULL, 0);
  fx_close(&f);
}

/* A stream that yields lets the loop poll before it goes on: each 64 KiB turn
 * in a loop iteration of its own. Counted with a prepare handle (it runs once
 * per iteration, just before the poll). A zero timer restarted from a timer
 * callback runs again in the same iteration on libuv < 1.48 (libuv#4245), so
 * a yield by timer sent a whole backlog in one or two iterations. */
static unsigned yield_iterations, yield_last_seen, yield_turns_seen;
static void yield_count(uv_prepare_t *p) {
  (void)p;
  yield_iterations++;
}

static ssize_t yield_fill(void *state, char *buf, size_t max, int heartbeat) {
  if (yield_last_seen != yield_iterations) {
    yield_last_seen = yield_iterations;
    yield_turns_seen++;          /* the first fill in a new iteration */
  }
  return ts_fill(state, buf, max, heartbeat);
}

static const struct http_stream_ops yield_ops = {yield_fill, ts_done_cb};

static enum MHD_Result yield_handler(struct http_req *r) {
  return http_stream(r, "text/event-stream", &yield_ops, &ts, 0);
}

static const struct http_route yield_routes[] = {{"GET", "/test/stream", yield_handler}};

static void server_stream_yield_lets_the_loop_poll(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  ts_reset(0);
  http__test_routes(yield_routes, 1);
  yield_iterations = yield_last_seen = yield_turns_seen = 0;
  uv_prepare_t prep;
  uv_prepare_init(&f.loop, &prep);
  uv_prepare_start(&prep, yield_count);
  enum { N = 200000 };           /* about 2.5 MB: 37 turns of 64 KiB */
  ts.pending = N;
  struct httpc_call *c = ts_begin(&f, N);
  httpc_wait(c, NULL, NULL);
  long status;
  char *body;
  assert_int_eq(httpc_end(c, &status, &body, NULL), 0);
  assert_int_eq(status, 200);
  size_t len = strlen(body);
  free(body);
  /* every turn began in an iteration of its own (a slow client only adds
   * iterations: the stream then waits for the socket) */
  assert_true(yield_turns_seen >= len / (64 * 1024));
  uv_close((uv_handle_t *)&prep, NULL);
  http__test_routes(NULL, 0);
  fx_close(&f);
}

static void server_stream_woken_by_new_event(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  ts_reset(0);
  ts.watch_events = 1;
  arbor_events_stats_t st;
  arbor_events_stats(f.rt, &st);
  ts.events_seen = st.recorded;
  struct httpc_call *c = ts_begin(&f, 1);
  /* wait until the server suspended it once (fill asked, said nothing) */
  httpc_run_until(&f.loop, int_positive, &ts_fills);
  /* any recorded event wakes the stream through arbor__events_notify */
  arbor_node_t *g;
  assert_code(arbor_group_new(arbor_root(f.rt), NULL, &g), 0);
  long status;
  char *body;
  httpc_wait(c, NULL, NULL);
  assert_int_eq(httpc_end(c, &status, &body, NULL), 0);
  assert_string_equal(body, "data: event\n\n");
  free(body);
  http__test_routes(NULL, 0);
  fx_close(&f);                  /* the close stops the server with the stream suspended */
  assert_int_eq(ts_done, 1);
}

static void server_head_of_stream_calls_done(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  ts_reset(0);
  struct resp r = req(&f, "HEAD", "/test/stream", NULL, NULL);
  assert_int_eq(r.status, 200);
  assert_string_equal(r.body, "");
  resp_free(&r);
  httpc_run_until(&f.loop, int_positive, &ts_done);
  assert_int_eq(ts_done, 1);
  assert_int_eq(ts_fills, 0);
  http__test_routes(NULL, 0);
  fx_close(&f);
}

static enum MHD_Result silent_handler(struct http_req *r) {
  (void)r;
  return MHD_YES;                /* a bug: queues nothing */
}

static const struct http_route silent_routes[] = {{"GET", "/test/silent", silent_handler}};

static void server_handler_without_response_is_500(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  http__test_routes(silent_routes, 1);
  struct resp r = req(&f, "GET", "/test/silent", NULL, NULL);
  assert_int_eq(r.status, 500);
  assert_error_body(&r, "internal");
  resp_free(&r);
  http__test_routes(NULL, 0);
  fx_close(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(server_unknown_path_404_json),
    cmocka_unit_test(server_wrong_method_405_with_allow),
    cmocka_unit_test(server_long_url_414),
    cmocka_unit_test(server_default_url_limit_414),
    cmocka_unit_test(server_body_over_limit_413),
    cmocka_unit_test(server_post_needs_bearer_token_401_wrong_token_403),
    cmocka_unit_test(server_without_token_post_is_open),
    cmocka_unit_test(server_token_file_first_line),
    cmocka_unit_test(server_token_file_bad_is_einval),
    cmocka_unit_test(server_nonloopback_without_token_refused),
    cmocka_unit_test(server_ipv6_loopback),
    cmocka_unit_test(server_healthz_ok),
    cmocka_unit_test(server_readyz_503_until_services_started),
    cmocka_unit_test(server_readyz_follows_readiness_probe),
    cmocka_unit_test(server_api_csp_strict),
    cmocka_unit_test(server_head_has_headers_no_body),
    cmocka_unit_test(server_cors_only_when_configured),
    cmocka_unit_test(server_connection_limit_503),
    cmocka_unit_test(server_burst_503_only_over_limit),
    cmocka_unit_test(server_accepts_again_after_limit_reached),
    cmocka_unit_test(server_runtime_close_closes_server),
    cmocka_unit_test(server_stop_then_runtime_close),
    cmocka_unit_test(server_two_servers_one_runtime),
    cmocka_unit_test(server_stream_wake_resumes_suspended),
    cmocka_unit_test(server_stream_heartbeat_when_idle),
    cmocka_unit_test(server_stream_suspended_client_gone_frees_slot),
    cmocka_unit_test(server_stream_backlog_yields_and_completes),
    cmocka_unit_test(server_stream_yield_lets_the_loop_poll),
    cmocka_unit_test(server_stream_woken_by_new_event),
    cmocka_unit_test(server_head_of_stream_calls_done),
    cmocka_unit_test(server_handler_without_response_is_500),
};

ARBOR_TEST_MAIN(tests)
