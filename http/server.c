/* http/server.c - the admin server core: libmicrohttpd inside the runtime's loop.
 *
 * How MHD runs here (libmicrohttpd 0.9.75). MHD is started with MHD_USE_EPOLL and
 * no thread of its own ("external polling"), so every callback below runs on the
 * loop thread, inside MHD_run, which only http__run calls:
 *   - its epoll fd (MHD_DAEMON_INFO_EPOLL_FD) is watched by a uv_poll_t: readable
 *     when a socket of MHD (listen, connections, its inter-thread channel) is;
 *   - a uv_timer_t re-armed after every MHD_run from MHD_get_timeout (0.9.75 has
 *     no MHD_get_timeout64): connection timeouts, and 0 while MHD still holds
 *     data it read (its epoll is edge-triggered, so "not readable" is not "done").
 * We bind the listen socket ourselves (MHD_OPTION_LISTEN_SOCKET): port 0 works
 * and getsockname tells the port, for IPv4 and IPv6 alike.
 *
 * A request, in MHD's callback order:
 *   uri_log    the raw request target (path + query): its length, for 414. The
 *              per-request context (struct http_ctx) is allocated here, freed in
 *              on_completed; MHD passes it to every later callback.
 *   on_request first call (headers read, body not): every check that needs no
 *              body, in this order: 503 over max_connections, 414, OPTIONS
 *              preflight (CORS only), 404 / 405 + Allow from the route table,
 *              401 for a POST, PUT or DELETE without a bearer token (none, or a
 *              malformed Authorization), 403 with a wrong one, 413 from
 *              Content-Length. When a body was announced, an answer queued
 *              now makes MHD skip it and close the connection afterwards (0.9.75 accepts a response only
 *              on the first call or once the whole request is in:
 *              MHD_queue_response's state check).
 *              Next calls: body bytes, kept up to max_body (a chunked body has
 *              no Content-Length: what is over is dropped, and past
 *              max_body + 64 KiB the connection is closed).
 *              Last call (no more body): 413, or the route's handler.
 *   on_completed frees the context.
 * Every response goes through queue() (http__queue, http_cached), which adds
 * the common headers (nosniff, no-store or the dashboard's no-cache, the CSP
 * for HTML or the strict one for the rest, CORS when configured, Allow on 405,
 * WWW-Authenticate on 401 and 403).
 *
 * Connections. MHD's own limit (MHD_OPTION_CONNECTION_LIMIT) is max_connections
 * + 1: the spare slot lets one connection over the limit in to be told 503
 * (with Connection: close) instead of hanging unanswered in the listen backlog
 * (MHD stops accepting at its limit). Which connection is the spare is decided
 * when it is accepted (on_connection keeps it in its state, struct http_conn,
 * the connection's socket context), not when
 * its request is handled: MHD accepts a burst before it handles any of its
 * requests, and a count taken then would refuse every request of the burst
 * while the spare is open. MHD_OPTION_CONNECTION_MEMORY_LIMIT bounds
 * each connection's buffers; an idle connection is closed after 60 s, and one
 * whose request head has not come in within 60 s is shut down (on_sweep).
 *
 * Lifetime. The five uv handles are counted with arbor__runtime_hold/release,
 * and a struct arbor__closer makes the runtime's close stop the server, so
 * uv_loop_close succeeds after arbor_runtime_close or arbor_run. A stop
 * (arbor_admin_stop or the closer) resumes every suspended stream (MHD must have
 * none when stopped), closes the handles, then MHD_stop_daemon closes every
 * connection and the listen socket; the admin is freed by the last handle's
 * close callback. A stop asked for from inside MHD_run waits until it returns.
 *
 * Streams (SSE, followed logs) are in stream.c.
 *
 * Limits of this design: arbor_admin_stop may be called again while the handles close (it returns 0),
 * never after the loop ran their close callbacks (the admin is freed then).
 * An IPv6 bind is IPv6 only (IPV6_V6ONLY): "::" does not take IPv4 clients.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_MAX_URL 2048
#define DEFAULT_MAX_BODY 4096
#define DEFAULT_CONNECTION_MEMORY (64 * 1024)
#define MIN_CONNECTION_MEMORY 4096  /* below this MHD cannot hold a request's headers */
#define DEFAULT_HEARTBEAT_MS 15000
#define CONNECTION_TIMEOUT_S 60
#define HEAD_TIMEOUT_MS (CONNECTION_TIMEOUT_S * 1000ull)   /* on_sweep */
#define BODY_DISCARD_SLACK (64 * 1024)
#define TOKEN_MAX 4096

/* Methods as bits, for the route table's Allow. */
#define M_GET 1u
#define M_POST 2u
#define M_PUT 4u
#define M_DELETE 8u

/* One request's state, from uri_log to on_completed. req is what handlers see. */
struct http_ctx {
  struct http_req req;
  size_t uri_len;                /* the raw target, query included */
  int seen;                      /* the first call happened */
  int answered;                  /* a response was queued */
  const struct http_route *route;
  char *path;                    /* a copy of the path; params point into it */
  char *body;
  size_t body_len, body_cap, dropped;
  int too_big;
  int close;                     /* the answer closes the connection (a framing error) */
  unsigned allow;                /* M_* of the path's routes (405) */
};

static struct http_ctx *ctx_of(struct http_req *r) {
  return (struct http_ctx *)((char *)r - offsetof(struct http_ctx, req));
}

/* ------------------------------------------------------------- requests */

const char *http_query(const struct http_req *r, const char *key) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int http_parse_u64(const char *text, uint64_t dflt, uint64_t max, uint64_t *out) {
  if (text == NULL) {
    *out = dflt;
    return 0;
  }
  if (*text == '\0')
    return -1;
  uint64_t v = 0;
  for (const char *p = text; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  if (v > max)
    return -1;
  *out = v;
  return 0;
}

const arbor_admin_opts_t *http_admin_opts(const struct arbor_admin_s *admin) {
  return &admin->opts;
}

size_t http_tree_size_hint(const struct arbor_admin_s *admin) { return admin->tree_bytes_last; }
void http_tree_size_seen(struct arbor_admin_s *admin, size_t len) { admin->tree_bytes_last = len; }

uint64_t http_responses_sent(const struct arbor_admin_s *admin, unsigned status) {
  if (status < HTTP_STATUS_FIRST || status > HTTP_STATUS_LAST)
    return 0;
  return admin->responses[status - HTTP_STATUS_FIRST];
}

/* ------------------------------------------------------------ responses */

/* The Allow header's value for the methods in allow (M_*), into buf. */
static const char *allow_text(unsigned allow, int cors, char *buf, size_t size) {
  static const struct {
    unsigned bit;
    const char *text;
  } names[] = {{M_GET, "GET, HEAD"}, {M_POST, "POST"}, {M_PUT, "PUT"}, {M_DELETE, "DELETE"}};
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (allow & names[i].bit)
      used += (size_t)snprintf(buf + used, size - used, "%s%s", used > 0 ? ", " : "",
                               names[i].text);
  if (cors)
    snprintf(buf + used, size - used, "%sOPTIONS", used > 0 ? ", " : "");
  return buf;
}

/* The dashboard's pages may load their own scripts, styles, images (and data:
 * ones) and talk to their own origin, nothing else: no inline script or style,
 * no framing, no <base>, no form posts. Anything else (JSON, the page's own
 * scripts) is never a document to render. */
#define CSP_HTML                                                                            \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "         \
  "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
#define CSP_OTHER "default-src 'none'; frame-ancestors 'none'"

/* Adds the headers every response carries, queues it and drops our reference
 * (MHD keeps its own while it sends). content_type: the Content-Type header
 * (NULL: none); csp_type: the type whose CSP applies (a 304 has no Content-Type
 * but the CSP of the page it stands for); cache: the Cache-Control value. */
static enum MHD_Result queue(struct http_req *r, unsigned status, struct MHD_Response *resp,
                             const char *content_type, const char *csp_type,
                             const char *cache) {
  struct http_ctx *ctx = ctx_of(r);
  struct arbor_admin_s *admin = r->admin;
  int ok = 1;
  if (content_type != NULL)
    ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES;
  ok &= MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES;
  ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache) == MHD_YES;
  ok &= MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES;
  int html = csp_type != NULL && strncmp(csp_type, "text/html", 9) == 0;
  ok &= MHD_add_response_header(resp, "Content-Security-Policy", html ? CSP_HTML : CSP_OTHER) ==
        MHD_YES;
  if (admin->cors_origin != NULL) {
    ok &= MHD_add_response_header(resp, "Access-Control-Allow-Origin", admin->cors_origin) ==
          MHD_YES;
    ok &= MHD_add_response_header(resp, "Vary", "Origin") == MHD_YES;
  }
  char allow[64];
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                  allow_text(ctx->allow, admin->cors_origin != NULL, allow,
                                             sizeof allow)) == MHD_YES;
  /* RFC 6750 section 3: the scheme on 401; on 403 (a wrong token: the issue's
   * rule, where RFC 6750 3.1 would say 401) the error code too, so a client
   * knows to ask for another token rather than for one. */
  if (status == MHD_HTTP_UNAUTHORIZED)
    ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                  "Bearer realm=\"arbor\"") == MHD_YES;
  if (status == MHD_HTTP_FORBIDDEN)
    ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                  "Bearer realm=\"arbor\", error=\"invalid_token\"") == MHD_YES;
  if (status == MHD_HTTP_SERVICE_UNAVAILABLE || ctx->close)
    ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
  enum MHD_Result ret = MHD_NO;
  if (ok && !ctx->answered) {
    ret = MHD_queue_response(r->conn, status, resp);
    if (ret == MHD_YES) {
      ctx->answered = 1;
      if (status >= HTTP_STATUS_FIRST && status <= HTTP_STATUS_LAST)
        admin->responses[status - HTTP_STATUS_FIRST]++;
    }
  }
  MHD_destroy_response(resp);
  return ret;
}

enum MHD_Result http__queue(struct http_req *r, unsigned status, struct MHD_Response *resp,
                            const char *content_type) {
  return queue(r, status, resp, content_type, content_type, "no-store");
}

enum MHD_Result http_cached(struct http_req *r, unsigned status, const char *content_type,
                            const void *data, size_t len, const char *etag) {
  int not_modified = status == MHD_HTTP_NOT_MODIFIED;
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      not_modified ? 0 : len, not_modified ? (void *)"" : (void *)data, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  /* libmicrohttpd 0.9.75 adds "Content-Length: 0" to the 304 itself (RFC 9110
   * 8.6 wants the 200's length or none; a second header of ours would not
   * replace it). Caches do not take Content-Length from a 304, so it is left. */
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag) != MHD_YES) {
    MHD_destroy_response(resp);
    return MHD_NO;
  }
  return queue(r, status, resp, not_modified ? NULL : content_type, content_type, "no-cache");
}

enum MHD_Result http_text(struct http_req *r, unsigned status, const char *content_type,
                          const char *text, size_t len, int is_static) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      len, (void *)text, is_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
  if (resp == NULL)
    return MHD_NO;               /* out of memory: MHD closes the connection */
  return http__queue(r, status, resp, content_type);
}

enum MHD_Result http_text_take(struct http_req *r, unsigned status, const char *content_type,
                               char *text, size_t len) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(text);
    return MHD_NO;
  }
  return http__queue(r, status, resp, content_type);
}

enum MHD_Result http_json(struct http_req *r, unsigned status, cJSON *body) {
  return http_json_at(r, status, body, NULL);
}

enum MHD_Result http_json_at(struct http_req *r, unsigned status, cJSON *body,
                             const char *location) {
  char *text = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
  cJSON_Delete(body);
  if (text == NULL)
    return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                      "out of memory building the response");
  /* cJSON allocates with malloc (its default hooks), so MHD may free() it. */
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(text);
    return MHD_NO;
  }
  if (location != NULL &&
      MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location) != MHD_YES) {
    MHD_destroy_response(resp);
    return MHD_NO;
  }
  return http__queue(r, status, resp, "application/json; charset=utf-8");
}

/* Writes s as the inside of a JSON string into out[0..cap), always terminated.
 * Bytes outside printable ASCII become '?' (a message may quote a decoded URL,
 * which need not be UTF-8). */
static void json_escape(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s != '\0' && o + 3 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      out[o++] = '?';
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = '\0';
}

enum MHD_Result http_error(struct http_req *r, unsigned status, const char *code,
                           const char *fmt, ...) {
  char msg[512], esc[1100], body[1280];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_escape(msg, esc, sizeof esc);
  int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                   esc);
  if (n < 0 || (size_t)n >= sizeof body)
    n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"\"}}", code);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL)
    return MHD_NO;
  return http__queue(r, status, resp, "application/json; charset=utf-8");
}

/* ------------------------------------------------------------- routing */

/* Whether path matches pattern segment by segment ("{x}" takes one non-empty
 * segment). On a match the parameters' starts and lengths are stored. */
static int match(const char *pat, const char *path, const char **pstart, size_t *plen) {
  int n = 0;
  while (*pat != '\0' && *path != '\0') {
    if (*pat != '/' || *path != '/')
      return 0;
    pat++;
    path++;
    const char *pe = strchrnul(pat, '/');
    const char *ue = strchrnul(path, '/');
    if (*pat == '{') {
      if (ue == path || n >= HTTP_MAX_PARAMS)
        return 0;
      pstart[n] = path;
      plen[n] = (size_t)(ue - path);
      n++;
    } else if (pe - pat != ue - path || memcmp(pat, path, (size_t)(pe - pat)) != 0) {
      return 0;
    }
    pat = pe;
    path = ue;
  }
  return *pat == '\0' && *path == '\0';
}

static unsigned method_bit(const char *method) {
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
    return M_GET;
  if (strcmp(method, "POST") == 0)
    return M_POST;
  if (strcmp(method, "PUT") == 0)
    return M_PUT;
  if (strcmp(method, "DELETE") == 0)
    return M_DELETE;
  return 0;
}

/* Routes a test adds (tests/http: a stream to drive); none in production. */
static const struct http_route *test_routes;
static size_t test_nroutes;

void http__test_routes(const struct http_route *routes, size_t n) {
  test_routes = routes;
  test_nroutes = n;
}

/* Finds the route for the request: sets ctx->route (and r->params) when the
 * path and the method match one, and ctx->allow to the methods of every route
 * whose pattern matches the path. Returns -1 when out of memory. */
static int route(struct http_ctx *ctx) {
  const char *url = ctx->req.url;
  unsigned want = method_bit(ctx->req.method);
  const char *pstart[HTTP_MAX_PARAMS], *found_start[HTTP_MAX_PARAMS];
  size_t plen[HTTP_MAX_PARAMS], found_len[HTTP_MAX_PARAMS];
  int nparams = 0;
  for (size_t i = 0; i < http_nroutes + test_nroutes; i++) {
    const struct http_route *rt =
        i < http_nroutes ? &http_routes[i] : &test_routes[i - http_nroutes];
    int n = 0;
    for (const char *p = rt->pattern; (p = strchr(p, '{')) != NULL; p++)
      n++;
    if (!match(rt->pattern, url, pstart, plen))
      continue;
    unsigned bit = method_bit(rt->method);
    ctx->allow |= bit;
    if (ctx->route != NULL || bit != want)
      continue;
    ctx->route = rt;
    nparams = n;
    memcpy(found_start, pstart, sizeof pstart);
    memcpy(found_len, plen, sizeof plen);
  }
  if (nparams == 0)
    return 0;
  /* The params point into a copy, each cut at its segment's end. */
  ctx->path = strdup(url);
  if (ctx->path == NULL)
    return -1;
  for (int k = 0; k < nparams; k++) {
    char *start = ctx->path + (found_start[k] - url);
    start[found_len[k]] = '\0';
    ctx->req.params[k] = start;
  }
  return 0;
}

/* ---------------------------------------------------------------- auth */

/* Compares the presented token with ours in time that depends only on our
 * token's length: every byte of ours is looked at, whatever the presented one
 * holds, with no early exit at the first difference (diff only accumulates),
 * and a presented token shorter than ours is read as if padded with zeros, so
 * neither where the two differ nor the presented length changes the work done.
 * Our length is not a secret worth this care (tokens are long and random);
 * what must not leak is how much of a guess was right. diff is volatile so the
 * compiler keeps the loop whole instead of returning at the first mismatch. */
int http__token_equal(const char *want, size_t want_len, const char *got, size_t got_len) {
  volatile unsigned char diff = (unsigned char)(want_len != got_len);
  for (size_t i = 0; i < want_len; i++) {
    unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
    diff |= (unsigned char)(want[i] ^ g);
  }
  return diff == 0;
}

/* What a mutating request's Authorization says (RFC 6750 section 2.1: the
 * "Bearer" scheme, case-insensitive as RFC 9110 11.1 has it, then the token):
 * AUTH_OK when the server has no token or it is ours; AUTH_MISSING when there
 * is no header, another scheme or no token after "Bearer" (401: say who you
 * are); AUTH_WRONG for a well-formed bearer token that is not ours (403: we
 * know what you presented and refuse it). */
enum auth { AUTH_OK, AUTH_MISSING, AUTH_WRONG };

static enum auth authorized(struct http_req *r) {
  struct arbor_admin_s *admin = r->admin;
  if (admin->token == NULL)
    return AUTH_OK;
  const char *h = http_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
  if (h == NULL)
    return AUTH_MISSING;
  while (*h == ' ' || *h == '\t')
    h++;
  if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
    return AUTH_MISSING;
  h += 6;
  while (*h == ' ' || *h == '\t')
    h++;
  size_t len = strlen(h);
  while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
    len--;
  if (len == 0)
    return AUTH_MISSING;
  return http__token_equal(admin->token, admin->token_len, h, len) ? AUTH_OK : AUTH_WRONG;
}

/* --------------------------------------------------------- MHD callbacks */

/* ---------------------------------------------------- connection states */

/* Each connection's state, its MHD socket context, from accept to close. */
struct http_conn {
  struct MHD_Connection *conn;
  uint64_t head_since_ms;        /* loop time since when a request's head is awaited; 0: none */
  int over_limit;                /* accepted over max_connections: its requests get 503 */
  struct http_conn *next, *prev;
};

/* How long a request's head may take, from the accept or the end of the
 * previous request to arbor's first call (tests shorten it). */
static uint64_t head_timeout_ms = HEAD_TIMEOUT_MS;

void http__test_head_timeout(unsigned ms) { head_timeout_ms = ms > 0 ? ms : HEAD_TIMEOUT_MS; }

static struct http_conn *conn_state(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci != NULL ? ci->socket_context : NULL;
}

/* Request heads that never end (slowloris). libmicrohttpd's only clock is its
 * idle timeout (60 s without a byte), so a client that sends its head a byte
 * at a time, one at least every 59 s, kept its connection for as long as the
 * head fit in connection_memory, and max_connections such clients locked the
 * admin API out. So a connection whose request's head has not reached
 * first_call within head_timeout_ms of its accept (or of the end of its
 * previous request: an idle keep-alive connection is closed then, as MHD's
 * idle timeout would close it) is shut down; MHD sees the hang-up on its next
 * run and closes it. Streams and bodies are not timed here: their head is in. */
static void on_sweep(uv_timer_t *t) {
  struct arbor_admin_s *admin = t->data;
  uint64_t now = uv_now(admin->loop);
  int cut = 0;
  for (struct http_conn *c = admin->conns; c != NULL; c = c->next) {
    if (c->head_since_ms == 0 || now - c->head_since_ms < head_timeout_ms)
      continue;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL)
      shutdown(ci->connect_fd, SHUT_RDWR);
    c->head_since_ms = 0;        /* once */
    cut = 1;
  }
  if (cut)
    http__run(admin);
  if (admin->conns != NULL && !admin->stopped)
    uv_timer_start(&admin->sweep, on_sweep, head_timeout_ms / 4 + 1, 0);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)conn;
  struct http_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL)
    return NULL;                 /* on_request then answers 503 (out_of_memory) */
  ctx->req.admin = cls;
  ctx->uri_len = strlen(uri);
  return ctx;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)toe;
  struct arbor_admin_s *admin = cls;
  struct http_conn *c = conn_state(conn);
  if (c != NULL)
    c->head_since_ms = uv_now(admin->loop);   /* the next request's head is awaited */
  struct http_ctx *ctx = *con_cls;
  if (ctx == NULL)
    return;
  free(ctx->path);
  free(ctx->body);
  free(ctx);
  *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  struct arbor_admin_s *admin = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    /* Over the limit or not is decided at accept time: a burst is accepted
     * before any of its requests is handled, so a count taken then would
     * refuse every one of them while the spare connection is open, not only
     * the spare. Out of memory: the connection goes untracked (not swept, never
     * told 503), which is how it was before states were kept. */
    struct http_conn *c = calloc(1, sizeof *c);
    if (c != NULL) {
      c->conn = conn;
      c->over_limit = admin->connections >= admin->opts.max_connections;
      c->head_since_ms = uv_now(admin->loop);
      c->next = admin->conns;
      if (c->next != NULL)
        c->next->prev = c;
      admin->conns = c;
      if (!uv_is_active((uv_handle_t *)&admin->sweep) && !admin->stopped)
        uv_timer_start(&admin->sweep, on_sweep, head_timeout_ms / 4 + 1, 0);
    }
    *socket_context = c;
    admin->connections++;
    return;
  }
  struct http_conn *c = *socket_context;
  if (c != NULL) {
    if (c->prev != NULL)
      c->prev->next = c->next;
    else
      admin->conns = c->next;
    if (c->next != NULL)
      c->next->prev = c->prev;
    free(c);
    *socket_context = NULL;
  }
  if (admin->connections > 0) {
    /* MHD was at its limit (max_connections + 1): it took its listen socket
     * out of its epoll set and puts it back only at the start of its next run,
     * which nothing may cause (no connection left to wake it): the next
     * client would wait in the backlog forever. http__run runs it again. */
    if (admin->connections == admin->opts.max_connections + 1)
      admin->relisten = 1;
    admin->connections--;
  }
}

/* Whether this connection was accepted over the limit. */
static int over_limit(struct MHD_Connection *conn) {
  struct http_conn *c = conn_state(conn);
  return c != NULL && c->over_limit;
}

/* The CORS preflight: which methods and headers a page of cors_origin may use. */
static enum MHD_Result preflight(struct http_req *r) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  if (MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                              "GET, HEAD, POST, PUT, DELETE") != MHD_YES ||
      MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                              "Authorization, Content-Type, Last-Event-ID") != MHD_YES ||
      MHD_add_response_header(resp, "Access-Control-Max-Age", "600") != MHD_YES) {
    MHD_destroy_response(resp);
    return MHD_NO;
  }
  return http__queue(r, MHD_HTTP_NO_CONTENT, resp, NULL);
}

/* Request framing: how a request says where its body ends. A front proxy and
 * we must agree on it, or bytes one of us takes as body the other takes as the
 * next request (request smuggling). libmicrohttpd 0.9.75 refuses a garbage
 * Content-Length and a header line without a colon itself, but it takes the
 * first of two Content-Lengths (and answers what follows the shorter body as
 * the next request), lets Transfer-Encoding: chunked win over a
 * Content-Length, and waits for ever for the end of a body in a coding it does
 * not know. Those are refused here (400, connection closed), as RFC 9112 6.1
 * and 6.3 allow or require: one Content-Length or one "Transfer-Encoding:
 * chunked" (all a client of this API needs), never both. Equal duplicate
 * Content-Lengths are refused too: nothing sends them, and taking them as one
 * is a judgement a proxy may make differently. White space in a header's
 * name is refused (RFC 9112 5.1: "Content-Length : 5" is kept by MHD under
 * the name "Content-Length ", which it does not read as the body's length,
 * and the body then reads as the next request), and so is a NUL in a name; inside a value MHD has already cut the value there (its
 * size is that of the C string), which cannot be seen from here. */
struct framing {
  unsigned content_length, transfer_encoding;
  int other_coding, nul, space;
};

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size) {
  (void)kind;
  struct framing *fr = cls;
  if (strlen(key) != key_size || (value != NULL && strlen(value) != value_size))
    fr->nul = 1;
  if (strpbrk(key, " \t") != NULL)
    fr->space = 1;
  if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
    fr->content_length++;
  if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
    fr->transfer_encoding++;
    if (value == NULL || strcasecmp(value, "chunked") != 0)
      fr->other_coding = 1;
  }
  return MHD_YES;
}

/* NULL when the request's framing is sound, else what is wrong with it. */
static const char *framing_error(struct MHD_Connection *conn) {
  struct framing fr = {0};
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, framing_header, &fr);
  if (fr.nul)
    return "a header holds a NUL byte";
  if (fr.space)
    return "a header name holds white space";
  if (fr.content_length > 1)
    return "more than one Content-Length header";
  if (fr.transfer_encoding > 1 || fr.other_coding)
    return "a Transfer-Encoding other than one \"chunked\"";
  if (fr.content_length > 0 && fr.transfer_encoding > 0)
    return "both Content-Length and Transfer-Encoding";
  return NULL;
}

/* The first call: everything that can be decided from the request line and the
 * headers. Returns MHD_YES with nothing queued to go on reading the body. */
static enum MHD_Result first_call(struct http_ctx *ctx) {
  struct http_req *r = &ctx->req;
  struct arbor_admin_s *admin = r->admin;
  const arbor_admin_opts_t *o = &admin->opts;
  struct http_conn *c = conn_state(r->conn);
  if (c != NULL)
    c->head_since_ms = 0;        /* the head is in (on_sweep) */
  if (over_limit(r->conn))
    return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "too_many_connections",
                      "more than %u connections are open", o->max_connections);
  const char *framing = framing_error(r->conn);
  if (framing != NULL) {
    ctx->close = 1;              /* where this request ends is unknown: so is the next */
    return http_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", framing);
  }
  if (ctx->uri_len > o->max_url)
    return http_error(r, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
                      "the request target is longer than %zu bytes", o->max_url);
  if (route(ctx) < 0)
    return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
  if (admin->cors_origin != NULL && strcmp(r->method, "OPTIONS") == 0 && ctx->allow != 0)
    return preflight(r);
  if (ctx->allow == 0)
    return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no resource at %s", r->url);
  if (ctx->route == NULL)
    return http_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                      "%s is not allowed on %s", r->method, r->url);
  /* Every method but GET (and HEAD) changes something. */
  if (strcmp(ctx->route->method, "GET") != 0) {
    enum auth a = authorized(r);
    if (a == AUTH_MISSING)
      return http_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                        "this call needs \"Authorization: Bearer TOKEN\" with the server's token");
    if (a == AUTH_WRONG)
      return http_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
                        "the bearer token is not the server's token");
  }
  const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
  uint64_t len;
  if (cl != NULL && http_parse_u64(cl, 0, UINT64_MAX, &len) != 0) {
    ctx->close = 1;              /* MHD refuses most such values itself */
    return http_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                      "Content-Length is not a decimal number");
  }
  if (cl != NULL && len > o->max_body)
    return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                      "the body is larger than %zu bytes", o->max_body);
  return MHD_YES;
}

/* Keeps up to max_body bytes of the body; drops the rest (413 at the end). */
static enum MHD_Result take_body(struct http_ctx *ctx, const char *data, size_t *size) {
  size_t n = *size;
  *size = 0;
  size_t max = ctx->req.admin->opts.max_body;
  if (ctx->too_big || ctx->body_len + n > max) {
    ctx->too_big = 1;
    ctx->dropped += n;
    /* A body with no end in sight is not read forever. */
    return ctx->dropped > max + BODY_DISCARD_SLACK ? MHD_NO : MHD_YES;
  }
  if (ctx->body_len + n + 1 > ctx->body_cap) {
    size_t cap = ctx->body_cap ? ctx->body_cap : 256;
    while (cap < ctx->body_len + n + 1)
      cap *= 2;
    if (cap > max + 1)
      cap = max + 1;
    char *b = realloc(ctx->body, cap);
    if (b == NULL)
      return MHD_NO;
    ctx->body = b;
    ctx->body_cap = cap;
  }
  memcpy(ctx->body + ctx->body_len, data, n);
  ctx->body_len += n;
  ctx->body[ctx->body_len] = '\0';
  return MHD_YES;
}

/* on_uri could not allocate the request's context: a 503 whose body is a static
 * buffer, so answering needs no memory of arbor's (only MHD's: when that fails
 * too, MHD closes the connection). Without a context a later call for the same
 * request cannot know it was answered: MHD refuses the second queue and closes. */
static enum MHD_Result out_of_memory(struct MHD_Connection *conn) {
  static const char body[] =
      "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  enum MHD_Result ret =
      MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                              "application/json; charset=utf-8") == MHD_YES
          ? MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, resp)
          : MHD_NO;
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  struct arbor_admin_s *admin = cls;
  struct http_ctx *ctx = *con_cls;
  if (admin->stopped)
    return MHD_NO;
  if (ctx == NULL)
    return out_of_memory(conn);
  struct http_req *r = &ctx->req;
  if (!ctx->seen) {
    ctx->seen = 1;
    r->rt = admin->rt;
    r->conn = conn;
    r->method = method;
    r->url = url;
    r->body = "";
    return first_call(ctx);
  }
  if (ctx->answered)
    return MHD_YES;              /* MHD discards the rest of the request */
  if (*upload_data_size > 0)
    return take_body(ctx, upload_data, upload_data_size);
  if (ctx->too_big)
    return http_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                      "the body is larger than %zu bytes", admin->opts.max_body);
  if (ctx->body != NULL) {
    r->body = ctx->body;
    r->body_len = ctx->body_len;
  }
  enum MHD_Result ret = ctx->route->handler(r);
  /* A handler that queued nothing would leave the client waiting for ever. */
  if (ret == MHD_YES && !ctx->answered)
    return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "no response for %s",
                      r->url);
  return ret;
}

/* ------------------------------------------------------------ the loop */

static void on_timer(uv_timer_t *t) { http__run(t->data); }

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status;                  /* an error on the epoll fd: MHD_run finds out */
  (void)events;
  http__run(p->data);
}

void http__run(struct arbor_admin_s *admin) {
  if (admin->stopped || admin->in_run)
    return;
  admin->in_run = 1;
  MHD_run(admin->mhd);
  admin->in_run = 0;
  if (admin->stop_pending) {
    arbor_admin_stop(admin);
    return;
  }
  http__emfile_check(admin);     /* out of fds: shed what MHD could not accept */
  /* MHD's epoll is edge-triggered: data it already read but has not processed
   * does not make the fd readable again; MHD_get_timeout says 0 then. */
  MHD_UNSIGNED_LONG_LONG ms;
  if (admin->relisten) {         /* see on_connection */
    admin->relisten = 0;
    uv_timer_start(&admin->timer, on_timer, 0, 0);
  } else if (MHD_get_timeout(admin->mhd, &ms) == MHD_YES)
    uv_timer_start(&admin->timer, on_timer, (uint64_t)ms, 0);
  else
    uv_timer_stop(&admin->timer);
}

/* ------------------------------------------------------------- options */

/* The token from opts: the string, or the first line of the file (its line end
 * cut). A bearer token is visible ASCII (RFC 6750's b64token and then some):
 * anything else is refused, as is an empty one. *out NULL: no token. */
static int load_token(const arbor_admin_opts_t *o, char **out) {
  *out = NULL;
  if (o->token != NULL && o->token_file != NULL)
    return ARBOR_EINVAL;         /* two sources: which one was meant? */
  char buf[TOKEN_MAX + 2];
  const char *tok = o->token;
  size_t len;
  if (o->token_file != NULL) {
    FILE *f = fopen(o->token_file, "r");
    if (f == NULL)
      return ARBOR_EINVAL;
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (line == NULL)
      return ARBOR_EINVAL;
    len = strcspn(buf, "\r\n");
    buf[len] = '\0';
    tok = buf;
  }
  if (tok == NULL)
    return 0;
  len = strlen(tok);
  if (len == 0 || len > TOKEN_MAX)
    return ARBOR_EINVAL;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f)
      return ARBOR_EINVAL;
  *out = strdup(tok);
  return *out != NULL ? 0 : ARBOR_ENOMEM;
}

/* Copies opts with every default filled in, or ARBOR_EINVAL. */
static int fill_opts(const arbor_admin_opts_t *in, arbor_admin_opts_t *o) {
  static const arbor_admin_opts_t zero;
  *o = in != NULL ? *in : zero;
  if (o->port < 0 || o->port > 65535)
    return ARBOR_EINVAL;
  if (o->bind == NULL)
    o->bind = "127.0.0.1";
  if (o->max_connections == 0)
    o->max_connections = DEFAULT_MAX_CONNECTIONS;
  if (o->max_url == 0)
    o->max_url = DEFAULT_MAX_URL;
  if (o->max_body == 0)
    o->max_body = DEFAULT_MAX_BODY;
  if (o->connection_memory == 0)
    o->connection_memory = DEFAULT_CONNECTION_MEMORY;
  if (o->connection_memory < MIN_CONNECTION_MEMORY)
    return ARBOR_EINVAL;
  if (o->max_connections > 65536 || o->max_body > ((size_t)1 << 30))
    return ARBOR_EINVAL;
  if (o->sse_heartbeat_ms == 0)
    o->sse_heartbeat_ms = DEFAULT_HEARTBEAT_MS;
  if (o->cors_origin != NULL && (o->cors_origin[0] == '\0' || strpbrk(o->cors_origin, "\r\n")))
    return ARBOR_EINVAL;
  return 0;
}

/* The address to bind: IPv4 or IPv6 text. Returns its length, 0 when it is
 * neither; *loopback says whether only this host can reach it. */
static socklen_t parse_addr(const char *text, int port, struct sockaddr_storage *ss,
                            int *loopback) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    return sizeof *a4;
  }
  if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    const uint8_t *b = a6->sin6_addr.s6_addr;
    *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr) ||
                (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && b[12] == 127);
    return sizeof *a6;
  }
  return 0;
}

/* A listening, non-blocking, close-on-exec TCP socket on the address; its port
 * in *port. Returns the fd or a negative errno. */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len, int *port) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  int rc = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    rc = -errno;
  /* An IPv6 address means that address only, not IPv4 too. */
  if (rc == 0 && ss->ss_family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    rc = -errno;
  if (rc == 0 && bind(fd, (const struct sockaddr *)ss, len) != 0)
    rc = -errno;
  if (rc == 0 && listen(fd, 128) != 0)
    rc = -errno;
  struct sockaddr_storage got;
  socklen_t glen = sizeof got;
  if (rc == 0 && getsockname(fd, (struct sockaddr *)&got, &glen) != 0)
    rc = -errno;
  if (rc != 0) {
    close(fd);
    return rc;
  }
  *port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                          : ((struct sockaddr_in *)&got)->sin_port);
  return fd;
}

/* Whether fd is still our listening socket (MHD_start_daemon closes it on some
 * failure paths and not on others). */
static int still_ours(int fd, int port) {
  struct sockaddr_storage got;
  socklen_t glen = sizeof got;
  if (fcntl(fd, F_GETFD) < 0 || getsockname(fd, (struct sockaddr *)&got, &glen) != 0)
    return 0;
  int p = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                          : ((struct sockaddr_in *)&got)->sin_port);
  return p == port;
}

/* ------------------------------------------------------- start and stop */

static void free_admin(struct arbor_admin_s *admin) {
  http__emfile_free(admin);
  free(admin->token);
  free(admin->bind);
  free(admin->cors_origin);
  free(admin);
}

/* Each handle's close: the admin goes with the last one, then the runtime may
 * free itself (our hold on it is released last, after we are done with it). */
static void on_closed(uv_handle_t *h) {
  struct arbor_admin_s *admin = h->data;
  arbor_runtime_t *rt = admin->rt;
  if (--admin->handles == 0)
    free_admin(admin);
  arbor__runtime_release(rt);
}

static void on_runtime_close(struct arbor__closer *c) {
  struct arbor_admin_s *admin =
      (struct arbor_admin_s *)((char *)c - offsetof(struct arbor_admin_s, closer));
  arbor_admin_stop(admin);
}

static struct MHD_Daemon *start_mhd(struct arbor_admin_s *admin, int fd) {
  const arbor_admin_opts_t *o = &admin->opts;
  return MHD_start_daemon(
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, admin,
      MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(o->max_connections + 1),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->connection_memory,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, admin,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, admin,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, admin,
      MHD_OPTION_END);
}

int arbor_admin_start(arbor_runtime_t *rt, const arbor_admin_opts_t *opts,
                      arbor_admin_t **out) {
  if (rt == NULL || out == NULL)
    return ARBOR_EINVAL;
  *out = NULL;
  if (arbor__runtime_closing(rt))
    return ARBOR_ECLOSING;
  struct arbor_admin_s *admin = calloc(1, sizeof *admin);
  if (admin == NULL)
    return ARBOR_ENOMEM;
  admin->listen_fd = admin->spare_fd = -1;
  int rc = fill_opts(opts, &admin->opts);
  if (rc < 0)
    goto fail;
  struct sockaddr_storage ss;
  int loopback = 0;
  socklen_t alen = parse_addr(admin->opts.bind, admin->opts.port, &ss, &loopback);
  if (alen == 0) {
    rc = ARBOR_EINVAL;
    goto fail;
  }
  rc = load_token(&admin->opts, &admin->token);
  if (rc < 0)
    goto fail;
  if (!loopback && admin->token == NULL) {
    rc = ARBOR_EACCES;           /* reachable from elsewhere, and nobody to keep them out */
    goto fail;
  }
  admin->token_len = admin->token != NULL ? strlen(admin->token) : 0;
  admin->bind = strdup(admin->opts.bind);
  admin->cors_origin = admin->opts.cors_origin != NULL ? strdup(admin->opts.cors_origin) : NULL;
  if (admin->bind == NULL || (admin->opts.cors_origin != NULL && admin->cors_origin == NULL)) {
    rc = ARBOR_ENOMEM;
    goto fail;
  }
  admin->opts.bind = admin->bind;
  admin->opts.cors_origin = admin->cors_origin;
  if (admin->opts.services != NULL) {   /* the caller's may go away too */
    admin->services = *admin->opts.services;
    admin->opts.services = &admin->services;
  }
  admin->opts.token = NULL;      /* ours is admin->token; the caller's may go away */
  admin->opts.token_file = NULL;
  admin->rt = rt;
  admin->loop = arbor_runtime_loop(rt);

  int fd = listen_on(&ss, alen, &admin->port);
  if (fd < 0) {
    rc = fd;
    goto fail;
  }
  admin->mhd = start_mhd(admin, fd);
  if (admin->mhd != NULL)
    http__emfile_init(admin, fd);
  if (admin->mhd == NULL) {
    if (still_ours(fd, admin->port))
      close(fd);
    rc = ARBOR_ENOMEM;
    goto fail;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(admin->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  if (info == NULL || uv_poll_init(admin->loop, &admin->poll, info->epoll_fd) != 0) {
    MHD_stop_daemon(admin->mhd);
    rc = ARBOR_ENOMEM;
    goto fail;
  }
  /* Nothing below can fail: timers init without error (libuv returns 0). */
  uv_timer_init(admin->loop, &admin->timer);
  uv_idle_init(admin->loop, &admin->wake);
  uv_timer_init(admin->loop, &admin->beat);
  uv_timer_init(admin->loop, &admin->sweep);
  admin->poll.data = admin->timer.data = admin->wake.data = admin->beat.data = admin;
  admin->sweep.data = admin;
  admin->handles = 5;
  for (int i = 0; i < 5; i++)
    arbor__runtime_hold(rt);
  admin->closer.close = on_runtime_close;
  arbor__runtime_add_closer(rt, &admin->closer);
  admin->events.fn = http__streams_on_event;
  admin->events.arg = admin;
  arbor__events_subscribe(rt, &admin->events);
  uv_poll_start(&admin->poll, UV_READABLE, on_poll);
  uv_timer_start(&admin->timer, on_timer, 0, 0);   /* a first run: MHD's timeouts */
  *out = admin;
  return 0;

fail:
  free_admin(admin);
  return rc;
}

int arbor_admin_port(const arbor_admin_t *admin) {
  return admin != NULL ? admin->port : ARBOR_EINVAL;
}

int arbor_admin_stop(arbor_admin_t *admin) {
  if (admin == NULL)
    return ARBOR_EINVAL;
  if (admin->stopped)
    return 0;
  if (admin->in_run) {           /* MHD may not be stopped from its own callbacks */
    admin->stop_pending = 1;
    return 0;
  }
  admin->stopped = 1;
  arbor_runtime_t *rt = admin->rt;
  arbor__runtime_remove_closer(rt, &admin->closer);
  arbor__events_unsubscribe(rt, &admin->events);
  /* The poll handle goes first: MHD_stop_daemon closes the fd it watches. */
  uv_close((uv_handle_t *)&admin->poll, on_closed);
  uv_close((uv_handle_t *)&admin->timer, on_closed);
  uv_close((uv_handle_t *)&admin->wake, on_closed);
  uv_close((uv_handle_t *)&admin->beat, on_closed);
  uv_close((uv_handle_t *)&admin->sweep, on_closed);
  http__streams_resume_all(admin, 1);
  MHD_stop_daemon(admin->mhd);   /* closes every connection: streams' done() run now */
  admin->listen_fd = -1;         /* MHD closed it */
  admin->mhd = NULL;
  return 0;
}
