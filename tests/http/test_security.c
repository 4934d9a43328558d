/* tests/http/test_security.c - the admin server against clients that are not
 * polite (http/server.c, routes.c; docs/SECURITY.md states the model).
 *
 *   - the token: every mutating route of http_routes (walked, so a route added
 *     later is covered without editing this file) answers 401 without a bearer
 *     token or with a malformed Authorization, 403 with a wrong one; the
 *     compare's results;
 *   - request smuggling basics, over raw sockets (httpc_raw_exchange: curl will
 *     not send these): each is refused with a 4xx and the connection closed,
 *     nothing behind it is answered, and the server answers the next client;
 *     a request head larger than connection_memory is refused and closed;
 *   - the headers every response carries (nosniff, the CSP, no-referrer), on
 *     every GET route and on the early answers (401, 403, 404, 405, 413, 414,
 *     503).
 * The load tests are test_load.c.
 */
#include "harness.h"

#include <errno.h>
#include <unistd.h>

#include "http/httpc.h"
#include "http/server_fixture.h"

#define TOKEN "tok-s3cret-9f2c"
#define RAW_BOUND_MS 20000      /* a server that never closes fails, not hangs */

/* ------------------------------------------------------------ fixtures */


static void assert_header(const struct resp *r, const char *what, const char *name,
                          const char *want) {
  char *v = httpc_header(r->hdrs, name);
  if (v == NULL || strcmp(v, want) != 0) {
    print_error("%s: header %s: got \"%s\", want \"%s\"\n", what, name, v != NULL ? v : "(none)",
                want);
    free(v);
    fail();
  }
  free(v);
}

/* The JSON error body's code. */
static void assert_error_code(const struct resp *r, const char *what, const char *code) {
  cJSON *j = cJSON_Parse(r->body);
  cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"),
                                              "code");
  int ok = cJSON_IsString(c) && strcmp(c->valuestring, code) == 0;
  if (!ok)
    print_error("%s: want error code %s, got %s\n", what, code, r->body);
  cJSON_Delete(j);
  assert_true(ok);
}

/* A route's pattern with each "{param}" replaced by value: a path it matches. */
static void route_path(const char *pattern, const char *value, char *out, size_t cap) {
  size_t o = 0;
  for (const char *p = pattern; *p != '\0' && o + 1 < cap;) {
    if (*p == '{') {
      o += (size_t)snprintf(out + o, cap - o, "%s", value);
      p = strchr(p, '}') + 1;
    } else {
      out[o++] = *p++;
    }
  }
  out[o < cap ? o : cap - 1] = '\0';
}

static int is_mutating(const struct http_route *rt) { return strcmp(rt->method, "GET") != 0; }

/* ---------------------------------------------------------------- auth */

/* No bearer token at all, or one we cannot read as one: 401 with the scheme
 * named (RFC 6750 section 3), on every mutating route. */
static void security_every_mutating_route_401_without_token(void **state) {
  struct fx f;
  fx_open(&f, &(arbor_admin_opts_t){.token = TOKEN});
  const char *none[] = {NULL};
  const char *basic[] = {"Authorization: Basic dG9rLXMzY3JldA==", NULL};
  const char *bare[] = {"Authorization: Bearer", NULL};
  const char *blank[] = {"Authorization: Bearer    ", NULL};
  const char *other[] = {"Authorization: Token " TOKEN, NULL};
  const char *glued[] = {"Authorization: Bearer" TOKEN, NULL};
  const char *const *cases[] = {none, basic, bare, blank, other, glued};
  size_t routes = 0;
  for (size_t i = 0; i < http_nroutes; i++) {
    if (!is_mutating(&http_routes[i]))
      continue;
    routes++;
    char path[256];
    route_path(http_routes[i].pattern, "1", path, sizeof path);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      char what[512];
      snprintf(what, sizeof what, "%s %s with %s", http_routes[i].method, path,
               cases[c][0] != NULL ? cases[c][0] : "no Authorization");
      struct resp r = req(&f, http_routes[i].method, path, "{}", cases[c]);
      assert_int_eq(r.rc, 0);
      if (r.status != 401)
        print_error("%s: got %ld\n", what, r.status);
      assert_int_eq(r.status, 401);
      assert_header(&r, what, "WWW-Authenticate", "Bearer realm=\"arbor\"");
      assert_error_code(&r, what, "unauthorized");
      resp_free(&r);
    }
  }
  assert_true(routes >= 5);      /* cancel, restart, add, update, remove: the walk saw them */
  fx_close(&f);
}

/* A well-formed bearer token that is not ours: 403 (the rule; RFC 6750
 * 3.1 would say 401 with invalid_token, whose error code we still send). The
 * right token gets past the check on the same routes. */
static void security_every_mutating_route_403_with_wrong_token(void **state) {
  struct fx f;
  fx_open(&f, &(arbor_admin_opts_t){.token = TOKEN});
  const char *last_differs[] = {"Authorization: Bearer tok-s3cret-9f2C", NULL};
  const char *prefix[] = {"Authorization: Bearer tok-s3cret", NULL};
  const char *longer[] = {"Authorization: Bearer " TOKEN "0", NULL};
  const char *one_char[] = {"Authorization: Bearer x", NULL};
  const char *lower_scheme[] = {"Authorization: bearer wrong", NULL};
  const char *const *cases[] = {last_differs, prefix, longer, one_char, lower_scheme};
  const char *good[] = {"Authorization: Bearer " TOKEN, NULL};
  for (size_t i = 0; i < http_nroutes; i++) {
    if (!is_mutating(&http_routes[i]))
      continue;
    char path[256];
    route_path(http_routes[i].pattern, "1", path, sizeof path);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      char what[512];
      snprintf(what, sizeof what, "%s %s with %s", http_routes[i].method, path, cases[c][0]);
      struct resp r = req(&f, http_routes[i].method, path, "{}", cases[c]);
      assert_int_eq(r.rc, 0);
      if (r.status != 403)
        print_error("%s: got %ld\n", what, r.status);
      assert_int_eq(r.status, 403);
      assert_header(&r, what, "WWW-Authenticate",
                    "Bearer realm=\"arbor\", error=\"invalid_token\"");
      assert_error_code(&r, what, "forbidden");
      resp_free(&r);
    }
    struct resp r = req(&f, http_routes[i].method, path, "{}", good);
    assert_int_eq(r.rc, 0);
    assert_true(r.status != 401 && r.status != 403 && r.status != 0);
    resp_free(&r);
  }
  /* reading needs no token */
  struct resp r = req(&f, "GET", "/api/v1/tree", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  fx_close(&f);
}

/* http__token_equal's results. It reads every byte of ours whatever it is
 * given (its comment says why that makes it constant time in our length). */
static void security_token_equal_results(void **state) {
  const char *want = "abcdef";
  assert_true(http__token_equal(want, 6, "abcdef", 6));
  assert_false(http__token_equal(want, 6, "abcdeX", 6));   /* last byte */
  assert_false(http__token_equal(want, 6, "Xbcdef", 6));   /* first byte */
  assert_false(http__token_equal(want, 6, "abc", 3));      /* a prefix */
  assert_false(http__token_equal(want, 6, "abcdefg", 7));  /* longer */
  assert_false(http__token_equal(want, 6, "", 0));         /* empty */
  /* "abc\0\0\0" would match the zero padding of a short one: the lengths differ */
  assert_false(http__token_equal(want, 6, "abcdef", 5));
  assert_false(http__token_equal("abc", 3, "abc\0\0\0", 6));
  assert_true(http__token_equal("", 0, "", 0));
}

/* ------------------------------------------------------------ smuggling */

/* Sends raw bytes, asserts a 4xx answer and the connection closed, exactly one
 * response (nothing smuggled behind the first got answered), and that the next
 * client is served. Returns the status. */
static int assert_refused(struct fx *f, const char *what, const void *request, size_t len) {
  char out[8192];
  long n = httpc_raw_exchange(&f->loop, f->port, request, len, out, sizeof out, RAW_BOUND_MS);
  if (n < 0)
    print_error("%s: %s\n", what,
                n == -ETIMEDOUT ? "the server kept the connection open" : strerror((int)-n));
  assert_true(n >= 0);
  int status = 0;
  if (sscanf(out, "HTTP/1.%*1d %d", &status) != 1 || status < 400 || status > 499)
    print_error("%s: want a 4xx, got \"%.80s\"\n", what, out);
  assert_true(status >= 400 && status <= 499);
  /* (MHD's own 400s may repeat their status line: one answer all the same) */
  const char *smuggled = strstr(out, "{\"status\":\"ok\"}");
  if (smuggled != NULL)
    print_error("%s: the request behind it was answered: \"%s\"\n", what, out);
  assert_null(smuggled);
  struct resp r = req(f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
  return status;
}

#define SMUGGLED "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

static void security_duplicate_content_length_refused(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  static const char differ[] = "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 5\r\nContent-Length: 41\r\n\r\nhello" SMUGGLED;
  /* Equal values too (RFC 9112 6.3 lets a server accept them as one): nothing
   * sends that, and refusing needs no judgement of which one counts. */
  static const char equal[] = "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" SMUGGLED;
  static const char list[] = "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                             "Content-Length: 5, 5\r\n\r\nhello" SMUGGLED;
  static const char on_get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello" SMUGGLED;
  assert_int_eq(assert_refused(&f, "different", differ, sizeof differ - 1), 400);
  assert_int_eq(assert_refused(&f, "equal", equal, sizeof equal - 1), 400);
  assert_int_eq(assert_refused(&f, "a list", list, sizeof list - 1), 400);
  assert_int_eq(assert_refused(&f, "on a GET", on_get, sizeof on_get - 1), 400);
  fx_close(&f);
}

static void security_content_length_with_chunked_refused(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  static const char both[] = "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                             "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "0\r\n\r\n" SMUGGLED;
  static const char both_rev[] = "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                                 "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                                 "0\r\n\r\n" SMUGGLED;
  assert_int_eq(assert_refused(&f, "CL then TE", both, sizeof both - 1), 400);
  assert_int_eq(assert_refused(&f, "TE then CL", both_rev, sizeof both_rev - 1), 400);
  fx_close(&f);
}

/* A transfer coding other than chunked alone: the body's end is unknown. */
static void security_unknown_transfer_encoding_refused(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  static const char *const codings[] = {"gzip", "chunked, gzip", "gzip, chunked", "xchunked",
                                        "chunked\r\nTransfer-Encoding: chunked"};
  for (size_t i = 0; i < sizeof codings / sizeof codings[0]; i++) {
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                     "Transfer-Encoding: %s\r\n\r\n0\r\n\r\n" SMUGGLED, codings[i]);
    assert_refused(&f, codings[i], buf, (size_t)n);
  }
  fx_close(&f);
}

static void security_bad_content_length_refused(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  static const char *const values[] = {"-1", "abc", "5x", "+5", " ", "0x10",
                                       "99999999999999999999999"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: %s\r\n\r\nhello" SMUGGLED, values[i]);
    assert_refused(&f, values[i], buf, (size_t)n);
  }
  fx_close(&f);
}

/* Sends raw bytes and asserts the server closes the connection, with this
 * status or with nothing (a reset may beat the answer), then serves the next
 * client. */
static void assert_closed(struct fx *f, const char *what, const void *request, size_t len,
                          const char *status_line) {
  char out[8192];
  long n = httpc_raw_exchange(&f->loop, f->port, request, len, out, sizeof out, RAW_BOUND_MS);
  if (n < 0)
    print_error("%s: %s\n", what,
                n == -ETIMEDOUT ? "the server kept the connection open" : strerror((int)-n));
  assert_true(n >= 0);
  size_t sl = strlen(status_line);
  if (n > 0 && strncmp(out, status_line, sl) != 0)
    print_error("%s: want nothing or \"%s\", got \"%.80s\"\n", what, status_line, out);
  assert_true(n == 0 || strncmp(out, status_line, sl) == 0);
  struct resp r = req(f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 200);
  resp_free(&r);
}

/* A request head larger than connection_memory: libmicrohttpd answers 431 (a
 * header) or 414 (the request line) and closes the connection with the rest of
 * the head unread, which resets it: the answer may be lost to the reset, the
 * close is what counts. */
static void security_huge_request_head_refused(void **state) {
  struct fx f;
  fx_open(&f, &(arbor_admin_opts_t){.connection_memory = 16 * 1024});
  size_t big = 64 * 1024;
  char *buf = malloc(big + 256);
  assert_non_null(buf);
  int n = snprintf(buf, 256, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(buf + n, 'a', big);
  memcpy(buf + n + big, "\r\n\r\n", 4);
  assert_closed(&f, "one 64 KiB header", buf, (size_t)n + big + 4, "HTTP/1.1 431");
  size_t o = (size_t)snprintf(buf, 256, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  while (o + 16 < big)
    o += (size_t)snprintf(buf + o, 16, "X-%05zu: v\r\n", o % 100000);
  memcpy(buf + o, "\r\n", 2);
  assert_closed(&f, "thousands of headers", buf, o + 2, "HTTP/1.1 431");
  o = (size_t)snprintf(buf, 256, "GET /");
  memset(buf + o, 'u', big);
  o += big;
  o += (size_t)snprintf(buf + o, 256, " HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_closed(&f, "a 64 KiB request line", buf, o, "HTTP/1.1 414");
  free(buf);
  fx_close(&f);
}

/* A head that never ends (slowloris: a byte now and then keeps MHD's idle
 * timeout away) is cut at the head timeout (on_sweep in server.c; 60 s,
 * shortened here); a request whose head came in time is not, nor a stream. */
static void security_slow_request_head_closed_at_head_timeout(void **state) {
  http__test_head_timeout(200);
  struct fx f;
  fx_open(&f, NULL);
  /* an SSE stream, open across the head timeout: its head came in time */
  char url[128];
  httpc_url(url, sizeof url, f.port, "/api/v1/events");
  struct httpc_call *c = httpc_begin(&f.loop, &(httpc_opts_t){.url = url, .max_events = 1});
  assert_non_null(c);
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);   /* the stream is in meanwhile */
  resp_free(&r);
  static const char partial[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a";
  assert_closed(&f, "a head that never ends", partial, sizeof partial - 1, "HTTP/1.1 4");
  /* the stream still delivers */
  arbor_node_t *g;
  assert_code(arbor_group_new(arbor_root(f.rt), &(arbor_group_opts_t){.name = "late"}, &g), 0);
  assert_true(httpc_wait(c, NULL, NULL));
  long status = 0;
  char *body = NULL;
  assert_int_eq(httpc_end(c, &status, &body, NULL), 0);
  assert_int_eq(status, 200);
  assert_non_null(strstr(body, "event: "));
  free(body);
  fx_close(&f);
  http__test_head_timeout(0);
}

/* A NUL in a header's value is not here: libmicrohttpd 0.9.75 cuts the value at
 * it before arbor sees it (SECURITY.md, "What is not covered"). */
static void security_malformed_header_lines_refused(void **state) {
  struct fx f;
  fx_open(&f, NULL);
  static const char no_colon[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n";
  static const char nul_name[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX\0A: ab\r\n\r\n";
  static const char space_name[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n";
  assert_refused(&f, "no colon", no_colon, sizeof no_colon - 1);
  assert_refused(&f, "NUL in a name", nul_name, sizeof nul_name - 1);
  assert_refused(&f, "space in a name", space_name, sizeof space_name - 1);
  static const char space_colon[] = "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Length : 41\r\n\r\n" SMUGGLED;
  static const char tab_colon[] = "POST /api/v1/nodes/999/cancel HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Length\t: 41\r\n\r\n" SMUGGLED;
  assert_int_eq(assert_refused(&f, "space before the colon", space_colon, sizeof space_colon - 1),
                400);
  assert_int_eq(assert_refused(&f, "tab before the colon", tab_colon, sizeof tab_colon - 1), 400);
  fx_close(&f);
}

/* -------------------------------------------------------------- headers */

/* The headers every response carries, whoever built it. */
static void assert_safe_headers(const struct resp *r, const char *what) {
  char *v = httpc_header(r->hdrs, "X-Content-Type-Options");
  char *csp = httpc_header(r->hdrs, "Content-Security-Policy");
  char *ref = httpc_header(r->hdrs, "Referrer-Policy");
  char *cache = httpc_header(r->hdrs, "Cache-Control");
  int ok = v != NULL && strcmp(v, "nosniff") == 0 && csp != NULL &&
           strstr(csp, "default-src 'none'") != NULL &&
           strstr(csp, "frame-ancestors 'none'") != NULL && ref != NULL &&
           strcmp(ref, "no-referrer") == 0 && cache != NULL;
  if (!ok)
    print_error("%s (%ld): nosniff \"%s\", CSP \"%s\", Referrer-Policy \"%s\", Cache-Control "
                "\"%s\"\n",
                what, r->status, v ? v : "(none)", csp ? csp : "(none)", ref ? ref : "(none)",
                cache ? cache : "(none)");
  free(v);
  free(csp);
  free(ref);
  free(cache);
  assert_true(ok);
}

static void security_headers_on_every_response(void **state) {
  struct fx f;
  fx_open(&f, &(arbor_admin_opts_t){.token = TOKEN, .max_body = 16, .max_url = 256,
                                    .max_connections = 4, .cors_origin = "https://ops.example"});
  /* every GET route, GET and HEAD; a parameter that exists (node 1, the root;
   * the dashboard's script) and one that does not */
  for (size_t i = 0; i < http_nroutes; i++) {
    if (is_mutating(&http_routes[i]))
      continue;
    const char *values[] = {strstr(http_routes[i].pattern, "/ui/") ? "app.js" : "1", "nope"};
    for (size_t v = 0; v < 2; v++) {
      char path[256], what[300];
      route_path(http_routes[i].pattern, values[v], path, sizeof path);
      if (v == 1 && strcmp(path, http_routes[i].pattern) == 0)
        continue;                /* no parameter */
      if (strcmp(http_routes[i].pattern, "/api/v1/events") == 0) {
        /* a stream: its headers, then one replayed event */
        char url[300];
        struct resp r = {0};
        httpc_url(url, sizeof url, f.port, "/api/v1/events?after=0");
        assert_int_eq(httpc_stream(&f.loop, url, NULL, 1, 0, &r.status, &r.body, &r.hdrs), 0);
        assert_safe_headers(&r, "GET /api/v1/events");
        resp_free(&r);
        continue;
      }
      const char *methods[] = {"GET", "HEAD"};
      for (size_t m = 0; m < 2; m++) {
        snprintf(what, sizeof what, "%s %s", methods[m], path);
        struct resp r = req(&f, methods[m], path, NULL, NULL);
        assert_int_eq(r.rc, 0);
        assert_safe_headers(&r, what);
        resp_free(&r);
      }
    }
  }
  /* the early answers */
  const char *wrong[] = {"Authorization: Bearer wrong", NULL};
  const char *good[] = {"Authorization: Bearer " TOKEN, NULL};
  const char *origin[] = {"Origin: https://ops.example",
                          "Access-Control-Request-Method: POST", NULL};
  char long_path[400];
  memset(long_path, 'a', sizeof long_path - 1);
  long_path[0] = '/';
  long_path[sizeof long_path - 1] = '\0';
  struct {
    const char *method, *path, *body;
    const char *const *headers;
    long status;
  } early[] = {
      {"POST", "/api/v1/nodes/1/cancel", NULL, NULL, 401},
      {"POST", "/api/v1/nodes/1/cancel", NULL, wrong, 403},
      {"GET", "/nope", NULL, NULL, 404},
      {"PUT", "/healthz", NULL, NULL, 405},
      {"POST", "/api/v1/services", "{\"a body over sixteen bytes\":1}", good, 413},
      {"GET", long_path, NULL, NULL, 414},
      {"OPTIONS", "/api/v1/tree", NULL, origin, 204},
  };
  for (size_t i = 0; i < sizeof early / sizeof early[0]; i++) {
    char what[64];
    snprintf(what, sizeof what, "%s (want %ld)", early[i].method, early[i].status);
    struct resp r = req(&f, early[i].method, early[i].path, early[i].body, early[i].headers);
    assert_int_eq(r.status, early[i].status);
    assert_safe_headers(&r, what);
    resp_free(&r);
  }
  /* 503: four connections hold every slot */
  int fd[4];
  for (int i = 0; i < 4; i++) {
    fd[i] = httpc_connect_raw(f.port);
    assert_true(fd[i] >= 0);
  }
  struct resp r = req(&f, "GET", "/healthz", NULL, NULL);
  assert_int_eq(r.status, 503);
  assert_safe_headers(&r, "503");
  resp_free(&r);
  for (int i = 0; i < 4; i++)
    close(fd[i]);
  fx_close(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(security_every_mutating_route_401_without_token),
    cmocka_unit_test(security_every_mutating_route_403_with_wrong_token),
    cmocka_unit_test(security_token_equal_results),
    cmocka_unit_test(security_duplicate_content_length_refused),
    cmocka_unit_test(security_content_length_with_chunked_refused),
    cmocka_unit_test(security_unknown_transfer_encoding_refused),
    cmocka_unit_test(security_bad_content_length_refused),
    cmocka_unit_test(security_huge_request_head_refused),
    cmocka_unit_test(security_slow_request_head_closed_at_head_timeout),
    cmocka_unit_test(security_malformed_header_lines_refused),
    cmocka_unit_test(security_headers_on_every_response),
};

ARBOR_TEST_MAIN(tests)
