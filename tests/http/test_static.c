/* tests/http/test_static.c - the embedded dashboard (http/static.c, the table
 * mk/embed.c generates from web/, http_cached in http/server.c) through real
 * HTTP on 127.0.0.1.
 *
 * The tests walk whatever web/ held at build time (http_assets), so they need
 * no change when a file is added; what they expect of each file (its content
 * type) they work out from the name themselves, not from the generator.
 */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../http/server.h"
#include "http/httpc.h"

#define CSP_HTML                                                                            \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "         \
  "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
#define CSP_OTHER "default-src 'none'; frame-ancestors 'none'"

/* ------------------------------------------------------------ fixtures */

struct fx {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  int port;
};

static void fx_open(struct fx *f) {
  arbor_test_open(&f->loop, &f->rt, NULL);
  assert_code(arbor_admin_start(f->rt, NULL, &f->admin), 0);
  f->port = arbor_admin_port(f->admin);
  assert_true(f->port > 0);
}

static void fx_close(struct fx *f) { arbor_test_close(f->rt, &f->loop); }

struct resp {
  long status;
  char *body, *hdrs;
};

static void resp_free(struct resp *r) {
  free(r->body);
  free(r->hdrs);
  r->body = r->hdrs = NULL;
}

/* One request with at most one extra header line. */
static struct resp req(struct fx *f, const char *method, const char *path, const char *header) {
  char url[4096 + 64];
  struct resp r = {0};
  const char *headers[] = {header, NULL};
  httpc_url(url, sizeof url, f->port, path);
  assert_int_eq(httpc_request(&f->loop, method, url, NULL, header != NULL ? headers : NULL,
                              &r.status, &r.body, &r.hdrs),
                0);
  if (r.body == NULL)
    r.body = calloc(1, 1);
  return r;
}

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

/* A 404 with the API's JSON error. */
static void assert_not_found_json(const struct resp *r) {
  assert_int_eq(r->status, 404);
  assert_header(r, "Content-Type", "application/json; charset=utf-8");
  cJSON *j = cJSON_Parse(r->body);
  if (j == NULL)
    fail_msg("not JSON: %s", r->body);
  cJSON *code = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(j, "error"), "code");
  assert_true(cJSON_IsString(code));
  assert_string_equal(code->valuestring, "not_found");
  cJSON_Delete(j);
}

/* The content type a file must be served with, from its extension. */
static const char *want_type(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot == NULL)
    return "(no extension)";
  if (strcmp(dot, ".html") == 0)
    return "text/html; charset=utf-8";
  if (strcmp(dot, ".css") == 0)
    return "text/css; charset=utf-8";
  if (strcmp(dot, ".js") == 0)
    return "text/javascript; charset=utf-8";
  if (strcmp(dot, ".svg") == 0)
    return "image/svg+xml";
  return "(an extension the dashboard does not serve)";
}

static int is_html(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot != NULL && strcmp(dot, ".html") == 0;
}

/* A 200 carrying exactly the embedded file a, with every header it needs. */
static void assert_serves(const struct resp *r, const struct http_asset *a) {
  assert_int_eq(r->status, 200);
  assert_header(r, "Content-Type", want_type(a->name));
  assert_header(r, "ETag", a->etag);
  assert_header(r, "Cache-Control", "no-cache");
  assert_header(r, "X-Content-Type-Options", "nosniff");
  assert_header(r, "Content-Security-Policy", is_html(a->name) ? CSP_HTML : CSP_OTHER);
  char len[32];
  snprintf(len, sizeof len, "%zu", a->size);
  assert_header(r, "Content-Length", len);
  assert_true(memcmp(r->body, a->data, a->size) == 0);
}

/* -------------------------------------------------------------- tests */

/* What the generator wrote: names that are one plain URL segment, a strong
 * quoted ETag, bytes ending in a NUL, and the files the contract names. */
static void static_table_names_etags_and_favicon(void **state) {
  assert_true(http_nassets > 0);
  for (size_t i = 0; i < http_nassets; i++) {
    const struct http_asset *a = &http_assets[i];
    assert_true(a->name[0] != '\0' && a->name[0] != '.');
    assert_int_eq(strspn(a->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._-"),
                  strlen(a->name));
    size_t n = strlen(a->etag);
    assert_true(n > 2 && a->etag[0] == '"' && a->etag[n - 1] == '"');
    assert_int_eq(a->data[a->size], 0);
    assert_ptr_equal(http_asset_find(a->name), a);
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(http_assets[j].etag, a->etag);   /* same bytes, same tag */
  }
  assert_non_null(http_asset_find("favicon.svg"));   /* index.html links it */
  assert_null(http_asset_find("nope.js"));
  assert_null(http_asset_find(""));
}

/* Every embedded file at /ui/<name>: its bytes, its type by extension, its
 * ETag, no-cache, and the CSP that fits it. */
static void static_every_file_served_with_its_type(void **state) {
  struct fx f;
  fx_open(&f);
  for (size_t i = 0; i < http_nassets; i++) {
    char path[256];
    snprintf(path, sizeof path, "/ui/%s", http_assets[i].name);
    struct resp r = req(&f, "GET", path, NULL);
    assert_serves(&r, &http_assets[i]);
    resp_free(&r);
  }
  fx_close(&f);
}

/* GET / is web/index.html, with the page's CSP. A build without one (web/
 * lost it) answers 404 saying so, never a directory or a default page. */
static void static_root_is_index_html(void **state) {
  struct fx f;
  fx_open(&f);
  const struct http_asset *index = http_asset_find("index.html");
  struct resp r = req(&f, "GET", "/", NULL);
  if (index != NULL) {
    assert_serves(&r, index);
    assert_non_null(strstr(r.body, "/ui/favicon.svg"));   /* so no /favicon.ico request */
  } else {
    assert_not_found_json(&r);
  }
  resp_free(&r);
  fx_close(&f);
}

/* A matching If-None-Match gets 304 with no body and no Content-Type, but the
 * ETag, no-cache and the same CSP (a cache merges a 304's headers into the
 * stored response); weak tags and lists match, "*" does; another tag gets the
 * file. */
static void static_etag_match_304(void **state) {
  struct fx f;
  fx_open(&f);
  const struct http_asset *a = http_asset_find("favicon.svg");
  assert_non_null(a);
  char h[512];
  const char *forms[] = {"%s", "W/%s", "\"other\", %s", "\"x\",W/%s , \"y\""};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    char tag[256];
    snprintf(tag, sizeof tag, forms[i], a->etag);
    snprintf(h, sizeof h, "If-None-Match: %s", tag);
    struct resp r = req(&f, "GET", "/ui/favicon.svg", h);
    assert_int_eq(r.status, 304);
    assert_string_equal(r.body, "");
    assert_header(&r, "ETag", a->etag);
    assert_header(&r, "Cache-Control", "no-cache");
    assert_header(&r, "Content-Security-Policy", CSP_OTHER);
    assert_no_header(&r, "Content-Type");
    resp_free(&r);
  }
  struct resp r = req(&f, "GET", "/ui/favicon.svg", "If-None-Match: *");
  assert_int_eq(r.status, 304);
  resp_free(&r);
  const char *misses[] = {"If-None-Match: \"0000000000000000-0\"", "If-None-Match: ",
                          "If-None-Match: garbage", "If-None-Match: \"unterminated"};
  for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
    r = req(&f, "GET", "/ui/favicon.svg", misses[i]);
    assert_serves(&r, a);
    resp_free(&r);
  }
  /* the page too: its 304 keeps the page's CSP */
  const struct http_asset *index = http_asset_find("index.html");
  if (index != NULL) {
    snprintf(h, sizeof h, "If-None-Match: %s", index->etag);
    r = req(&f, "GET", "/", h);
    assert_int_eq(r.status, 304);
    assert_header(&r, "Content-Security-Policy", CSP_HTML);
    resp_free(&r);
  }
  fx_close(&f);
}

/* A test route serving HTML through http_cached: the page's CSP, exact, on the
 * 200 and the 304, whatever web/ holds; the API keeps its stricter one. */
static const char test_page[] = "<!doctype html><title>t</title>";
static enum MHD_Result test_page_get(struct http_req *r) {
  const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
  unsigned status = inm != NULL ? 304 : 200;
  return http_cached(r, status, "text/html; charset=utf-8", test_page, sizeof test_page - 1,
                     "\"t1\"");
}
static const struct http_route test_routes[] = {{"GET", "/test/page", test_page_get}};

static void static_html_csp_exact(void **state) {
  struct fx f;
  fx_open(&f);
  http__test_routes(test_routes, 1);
  struct resp r = req(&f, "GET", "/test/page", NULL);
  assert_int_eq(r.status, 200);
  assert_header(&r, "Content-Type", "text/html; charset=utf-8");
  assert_header(&r, "Content-Security-Policy", CSP_HTML);
  assert_header(&r, "ETag", "\"t1\"");
  assert_string_equal(r.body, test_page);
  resp_free(&r);
  r = req(&f, "GET", "/test/page", "If-None-Match: \"t1\"");
  assert_int_eq(r.status, 304);
  assert_header(&r, "Content-Security-Policy", CSP_HTML);
  assert_no_header(&r, "Content-Type");
  resp_free(&r);
  http__test_routes(NULL, 0);
  r = req(&f, "GET", "/healthz", NULL);
  assert_header(&r, "Content-Security-Policy", CSP_OTHER);
  assert_header(&r, "Cache-Control", "no-store");
  assert_no_header(&r, "ETag");
  resp_free(&r);
  fx_close(&f);
}

/* HEAD: the headers of the GET (length, type, ETag), no body; and 304 too. */
static void static_head_headers_no_body(void **state) {
  struct fx f;
  fx_open(&f);
  const struct http_asset *a = http_asset_find("favicon.svg");
  struct resp r = req(&f, "HEAD", "/ui/favicon.svg", NULL);
  assert_int_eq(r.status, 200);
  assert_string_equal(r.body, "");
  char len[32];
  snprintf(len, sizeof len, "%zu", a->size);
  assert_header(&r, "Content-Length", len);
  assert_header(&r, "Content-Type", "image/svg+xml");
  assert_header(&r, "ETag", a->etag);
  resp_free(&r);
  char h[256];
  snprintf(h, sizeof h, "If-None-Match: %s", a->etag);
  r = req(&f, "HEAD", "/ui/favicon.svg", h);
  assert_int_eq(r.status, 304);
  resp_free(&r);
  fx_close(&f);
}

/* Unknown names are 404 JSON; other methods 405; /ui itself is nothing. */
static void static_unknown_file_404_json(void **state) {
  struct fx f;
  fx_open(&f);
  const char *paths[] = {"/ui/nope.js", "/ui/", "/ui", "/ui/index.html/", "/ui/FAVICON.SVG",
                         "/favicon.ico", "/index.html"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    struct resp r = req(&f, "GET", paths[i], NULL);
    if (r.status != 404)
      fail_msg("GET %s: %ld", paths[i], r.status);
    assert_not_found_json(&r);
    resp_free(&r);
  }
  struct resp r = req(&f, "POST", "/ui/favicon.svg", NULL);
  assert_int_eq(r.status, 405);
  assert_header(&r, "Allow", "GET, HEAD");
  resp_free(&r);
  fx_close(&f);
}

/* Sends a raw request (curl would remove the dot segments first) and returns
 * the status of the answer; the server closes the connection after it. */
struct raw {
  int fd;
  char buf[8192];
  size_t len;
  int done;
};

static int raw_read(void *arg) {
  struct raw *w = arg;
  while (!w->done && w->len < sizeof w->buf - 1) {
    ssize_t n = recv(w->fd, w->buf + w->len, sizeof w->buf - 1 - w->len, MSG_DONTWAIT);
    if (n > 0)
      w->len += (size_t)n;
    else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      w->done = 1;
    else
      break;
  }
  w->buf[w->len] = '\0';
  return w->done;
}

static long raw_status(struct fx *f, const char *target) {
  struct raw w = {.fd = httpc_connect_raw(f->port)};
  assert_true(w.fd >= 0);
  char request[1024];
  int n = snprintf(request, sizeof request,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target);
  assert_int_eq(send(w.fd, request, (size_t)n, 0), n);
  httpc_run_until(&f->loop, raw_read, &w);
  close(w.fd);
  long status = 0;
  if (sscanf(w.buf, "HTTP/1.1 %ld", &status) != 1)
    fail_msg("GET %s: no status line in \"%s\"", target, w.buf);
  if (status == 200 && strstr(w.buf, "Content-Type: application/json") == NULL &&
      strstr(w.buf, "\r\nETag: ") == NULL)
    fail_msg("GET %s: 200 without a file: %s", target, w.buf);
  return status;
}

/* ".." (plain or percent-encoded) and encoded slashes name nothing outside
 * the table: the path is decoded before routing, a decoded '/' makes it
 * another route, and a name is looked up whole, never joined to a directory. */
static void static_dot_dot_and_encoded_slash_cannot_escape(void **state) {
  struct fx f;
  fx_open(&f);
  const char *targets[] = {
      "/ui/..",
      "/ui/../Makefile",
      "/ui/../../../../etc/passwd",
      "/ui/%2e%2e",
      "/ui/%2e%2e%2fMakefile",
      "/ui/..%2F..%2Fetc%2Fpasswd",
      "/ui/%2Fetc%2Fpasswd",
      "/ui/.%2Ffavicon.svg",
      "/ui/web%2Ffavicon.svg",
      "/ui/%5c..%5cMakefile",
      "/ui/..\\Makefile",
      "/ui/./favicon.svg",
      "/ui//favicon.svg",
      "/ui/.favicon.svg",
      "/../ui/favicon.svg/..",
  };
  for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
    long st = raw_status(&f, targets[i]);
    if (st != 404 && st != 400)
      fail_msg("GET %s: %ld, want 404 (or MHD's 400)", targets[i], st);
  }
  /* the plain name still works on the same path */
  assert_int_eq(raw_status(&f, "/ui/favicon.svg"), 200);
  assert_int_eq(raw_status(&f, "/ui/favicon%2esvg"), 200);   /* %2e is only a dot */
  fx_close(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(static_table_names_etags_and_favicon),
    cmocka_unit_test(static_every_file_served_with_its_type),
    cmocka_unit_test(static_root_is_index_html),
    cmocka_unit_test(static_etag_match_304),
    cmocka_unit_test(static_html_csp_exact),
    cmocka_unit_test(static_head_headers_no_body),
    cmocka_unit_test(static_unknown_file_404_json),
    cmocka_unit_test(static_dot_dot_and_encoded_slash_cannot_escape),
};

ARBOR_TEST_MAIN(tests)
