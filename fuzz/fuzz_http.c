/* fuzz/fuzz_http.c - the admin server (http/) as a client sees it: one request
 * per input, through a real libmicrohttpd connection on a fresh runtime holding
 * a small tree (a running group and task with attributes, a failed group with
 * an error chain), with a token and live-service callbacks that parse the body
 * by the config's rules (cmd/config.c) and change nothing.
 *
 * The input is a request in parts, so that most inputs reach arbor's router and
 * handlers rather than MHD's request-line parser:
 *   byte 0            method (GET HEAD POST PUT DELETE OPTIONS PATCH: % 8), or
 *                     raw mode (7)
 *   up to '\n'        the target: path and query (spaces become '+')
 *   lines up to ""    header lines "Name: value" (Last-Event-ID, Authorization,
 *                     Content-Length, Accept, If-None-Match, Origin...)
 *   the rest          the body (Content-Length added unless a header gave one,
 *                     or Transfer-Encoding)
 * Raw mode sends the bytes after byte 0 as they are and half-closes.
 *
 * Also, on the first line of every input as a NUL-terminated string:
 * http_parse_u64 (ids, ?limit=, Last-Event-ID, Content-Length) against a
 * reference (decimal digits only, no sign, no overflow, at most max).
 *
 * Checked: every structured request that the driver framed gets an answer
 * with a status line; a POST, PUT, DELETE or PATCH without the token (raw
 * mode too) is never a 2xx; a 2xx JSON response that ended is strict JSON
 * (fz_check_json); an error body is the API's {"error":{"code","message"}}.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../cmd/config.h"
#include "http.h"
#include "support.h"

#define TOKEN "fuzz-token"

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};

/* ------------------------------------------------ live-service callbacks */

static int parse_spec(const char *spec, size_t len, char *msg, size_t msglen) {
  static char config_file[256];
  if (config_file[0] == '\0')
    snprintf(config_file, sizeof config_file, "%s/arbor.json", fz_tmpdir());
  struct config_node n;
  if (config_service_parse(spec, len, config_file, &n, msg, msglen) != 0)
    return ARBOR_EINVAL;
  config_node_free(&n);
  return 0;
}

static int svc_add(void *arg, const char *spec, size_t len, uint64_t *id, char *msg,
                   size_t msglen) {
  (void)arg;
  (void)id;
  int rc = parse_spec(spec, len, msg, msglen);
  if (rc == 0)
    snprintf(msg, msglen, "a service of that name exists");
  return rc != 0 ? rc : ARBOR_EEXIST;
}

static int svc_update(void *arg, const char *name, const char *spec, size_t len, uint64_t *id,
                      int *restarted, char *msg, size_t msglen) {
  (void)arg;
  (void)id;
  (void)restarted;
  int rc = parse_spec(spec, len, msg, msglen);
  if (rc == 0)
    snprintf(msg, msglen, "no service named \"%s\"", name);
  return rc != 0 ? rc : ARBOR_ENOENT;
}

static int svc_remove(void *arg, const char *name, uint64_t *id, char *msg, size_t msglen) {
  (void)arg;
  (void)id;
  snprintf(msg, msglen, "no service named \"%s\"", name);
  return ARBOR_ENOENT;
}

static const arbor_admin_services_t services = {svc_add, svc_update, svc_remove, NULL};

/* ------------------------------------------------------------- the tree */

static int start_running(arbor_node_t *t, void *arg) {
  (void)t;
  (void)arg;
  return 0;                      /* runs until cancelled (the default hook) */
}

static int start_failing(arbor_node_t *t, void *arg) {
  (void)arg;
  arbor_error_t *e = arbor_error_new(ARBOR_ENOENT, "no \"config\" at\t\x01 here \xff");
  e = arbor_error_wrap(e, -EIO, "load failed");
  arbor_task_fail_error(t, e);
  return 0;
}

/* Ids 1 (root), 2 (group "g"), 3 ("worker"), 4 ("bad"), 5 ("boom"), as the
 * seeds name them. */
static void build_tree(struct fz_loop *l) {
  arbor_node_t *g, *bad;
  arbor_group_opts_t go = {.name = "g"};
  arbor_group_opts_t bo = {.name = "bad"};
  arbor_task_spec_t w = {.name = "worker", .start = start_running};
  arbor_task_spec_t f = {.name = "boom", .start = start_failing};
  if (arbor_group_new(arbor_root(l->rt), &go, &g) != 0 || arbor_task_spawn(g, &w, NULL) != 0 ||
      arbor_group_new(arbor_root(l->rt), &bo, &bad) != 0 || arbor_task_spawn(bad, &f, NULL) != 0)
    fz_die("building the tree");
  arbor_node_attr_set(g, "owner", "ops");
  fz_loop_settle(l);
}

/* ---------------------------------------------------------- the request */

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const void *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    if (b->p == NULL)
      fz_die("out of memory");
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}
static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* The request of a structured input. */
static int build_request(const char *d, size_t n, struct buf *req) {
  const char *method = methods[(unsigned char)d[0] % 8];
  d++, n--;
  const char *nl = memchr(d, '\n', n);
  size_t tlen = nl != NULL ? (size_t)(nl - d) : n;
  puts_(req, method);
  puts_(req, " ");
  if (tlen == 0 || d[0] != '/')
    puts_(req, "/");
  for (size_t i = 0; i < tlen; i++) {
    char c = d[i] == ' ' || d[i] == '\r' || d[i] == '\0' ? '+' : d[i];
    put(req, &c, 1);
  }
  puts_(req, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  d += tlen, n -= tlen;
  if (n > 0)
    d++, n--;                    /* the '\n' */
  int framed = 0;
  while (n > 0) {
    nl = memchr(d, '\n', n);
    size_t llen = nl != NULL ? (size_t)(nl - d) : n;
    if (llen == 0 || (llen == 1 && d[0] == '\r')) {
      d += llen + (nl != NULL), n -= llen + (nl != NULL);
      break;
    }
    const char *colon = memchr(d, ':', llen);
    if (colon != NULL && colon > d && memchr(d, '\0', llen) == NULL) {
      size_t nlen = (size_t)(colon - d);
      if ((nlen == 14 && strncasecmp(d, "Content-Length", 14) == 0) ||
          (nlen == 17 && strncasecmp(d, "Transfer-Encoding", 17) == 0))
        framed = 1;
      put(req, d, llen && d[llen - 1] == '\r' ? llen - 1 : llen);
      puts_(req, "\r\n");
    }
    d += llen + (nl != NULL), n -= llen + (nl != NULL);
  }
  if (!framed && n > 0) {
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", n);
    puts_(req, cl);
  }
  puts_(req, "Connection: close\r\n\r\n");
  put(req, d, n);
  return framed;
}

/* req: the request as sent; m: its method's index. */
static void check_response(const char *d, unsigned m, const char *req, size_t reqlen,
                           const struct fz_resp *r) {
  if (r->status == 0 && r->len > 0)
    fz_die("a response without a status line: %.60s", r->data);
  /* Nobody controls arbor without the token: a POST, PUT, DELETE or PATCH
   * that does not carry it is never a success. */
  if ((m == 2 || m == 3 || m == 4 || m == 6) && r->status >= 200 && r->status < 300 &&
      memmem(req, reqlen, TOKEN, strlen(TOKEN)) == NULL)
    fz_die("%s without the token answered %u:\n%.*s", methods[m], r->status,
           (int)(reqlen < 600 ? reqlen : 600), req);
  if (r->body == NULL || !r->ended || (unsigned char)d[0] % 8 == 1 /* HEAD */)
    return;
  char *ct = strcasestr(r->data, "\r\nContent-Type: application/json");
  if (ct == NULL || ct > r->body || strcasestr(r->data, "Transfer-Encoding: chunked") != NULL)
    return;
  fz_check_json("response body", r->body, r->body_len);
  if (r->status >= 400) {
    cJSON *doc = cJSON_ParseWithLength(r->body, r->body_len);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "code")) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")))
      fz_die("a %u without {\"error\":{\"code\",\"message\"}}: %s", r->status, r->body);
    cJSON_Delete(doc);
  }
}

/* http_parse_u64 against the obvious definition, for max = UINT64_MAX and a
 * bound as Last-Event-ID's. */
static void check_parse_u64(const char *d, size_t n) {
  const char *nl = memchr(d, '\n', n);
  size_t len = nl != NULL ? (size_t)(nl - d) : n;
  if (len > 64 || memchr(d, '\0', len) != NULL)
    return;
  char text[65];
  memcpy(text, d, len);
  text[len] = '\0';
  unsigned __int128 v = 0;
  int ok = len > 0;
  for (size_t i = 0; ok && i < len; i++) {
    ok = text[i] >= '0' && text[i] <= '9';
    v = v * 10 + (unsigned)(text[i] - '0');
    if (v > UINT64_MAX)
      ok = 0;
  }
  static const uint64_t maxes[] = {UINT64_MAX, UINT64_MAX - 1, 4096, 0};
  for (size_t k = 0; k < 4; k++) {
    uint64_t got = 7;
    int rc = http_parse_u64(text, 0, maxes[k], &got);
    int want_ok = ok && v <= maxes[k];
    if ((rc == 0) != want_ok || (want_ok && got != (uint64_t)v))
      fz_die("http_parse_u64(\"%s\", max %llu): %d", text, (unsigned long long)maxes[k], rc);
  }
}

/* The runtime and server persist across inputs that cannot change them (GET,
 * HEAD, OPTIONS: three times the executions a second of a fresh runtime per
 * input); one is made afresh after any input that could and was not refused
 * (a POST with the token cancels a node), after a stream (it keeps its
 * connection), and every RENEW_EVERY inputs anyway, so each input meets the
 * same tree and a crash replays alone. */
#define RENEW_EVERY 4096

static struct fz_loop loop;
static arbor_admin_t *admin;
static int dirty = 1;
static unsigned uses;

static void renew(void) {
  if (admin != NULL)
    fz_loop_close(&loop);
  fz_loop_open(&loop);
  build_tree(&loop);
  arbor_admin_opts_t o = {.token = TOKEN, .services = &services, .cors_origin = "http://x.test",
                          .max_connections = 4};
  admin = fz_http_start(&loop, &o);
  uses = 0;
}

static void at_exit(void) {
  if (admin != NULL)
    fz_loop_close(&loop);
  admin = NULL;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size < 1 || size > 65536)
    return 0;
  const char *d = (const char *)data;
  unsigned m = (unsigned char)d[0] % 8;
  check_parse_u64(d + 1, size - 1);
  if (admin == NULL)
    atexit(at_exit);
  if (dirty || ++uses >= RENEW_EVERY)
    renew();
  /* POST PUT DELETE PATCH and raw requests may change the tree. */
  dirty = m == 2 || m == 3 || m == 4 || m == 6 || m == 7;
  struct fz_resp r;
  if (m == 7) {
    fz_http_roundtrip(&loop, admin, d + 1, size - 1, 1, &r);
    for (unsigned k = 2; k <= 6; k++)
      if (k != 5 && size - 1 > strlen(methods[k]) &&
          memcmp(d + 1, methods[k], strlen(methods[k])) == 0 && d[1 + strlen(methods[k])] == ' ')
        check_response(d, k, d + 1, size - 1, &r);
  } else {
    struct buf req = {0};
    int framed = build_request(d, size, &req);
    fz_http_roundtrip(&loop, admin, req.p, req.len, 0, &r);
    if (r.len == 0 && !framed)
      fz_die("no answer to a well-framed request:\n%.*s", (int)(req.len < 600 ? req.len : 600),
             req.p);
    check_response(d, m, req.p, req.len, &r);
    free(req.p);
  }
  /* A refusal (4xx, 5xx) of a structured request changed nothing: its one
   * request was that one (raw mode may pipeline several). */
  if (dirty && m != 7 && r.status >= 400)
    dirty = 0;
  if (!r.ended)
    dirty = 1;                   /* a stream still holds its connection */
  fz_resp_free(&r);
  return 0;
}
