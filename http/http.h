/* http/http.h - the admin server's internal interface. Not installed.
 *
 * server.c runs libmicrohttpd inside the runtime's loop (no MHD thread: its epoll
 * fd under a uv_poll_t, a uv_timer_t from MHD_get_timeout), enforces the limits
 * and the bearer token, routes each request to one handler and adds the common
 * headers. The resources answer requests, one file each: tree.c, nodes.c (detail,
 * children, cancel, restart), logs.c, events.c (SSE), health.c, static.c,
 * metrics.c (Prometheus text), services.c (live service changes, through the
 * callbacks of arbor_admin_services_t). json.c turns nodes, errors and times into cJSON.
 * Handlers read the tree only through the observation API of arbor.h
 * (DESIGN.md, "Threading"): every handler runs on the loop thread, so a
 * response is one consistent snapshot.
 *
 * Contract for a handler: it is called once per request, after the whole body
 * arrived (bodies over the limit never reach it: 413), and must queue exactly
 * one response through http_json / http_error / http_text / http_stream, and
 * return what that returned.
 */
#ifndef ARBOR_HTTP_H
#define ARBOR_HTTP_H

#include <cJSON.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "arbor.h"
#include "extension.h"

struct arbor_admin_s;            /* server.c */

#define HTTP_MAX_PARAMS 2

/* One request as a handler sees it. Valid during the handler call only. */
struct http_req {
  struct arbor_admin_s *admin;
  arbor_runtime_t *rt;
  struct MHD_Connection *conn;
  const char *method;            /* "GET", "POST", ... */
  const char *url;               /* the path, without the query string */
  const char *params[HTTP_MAX_PARAMS];   /* the route's {...} segments, in order */
  const char *body;              /* NUL-terminated; "" when there is none */
  size_t body_len;
};

/* ------------------------------------------------------------- requests */

/* A query parameter's value, or NULL when absent. */
const char *http_query(const struct http_req *r, const char *key);
/* A request header's value, or NULL when absent (case-insensitive name). */
const char *http_header(const struct http_req *r, const char *name);
/* Parses an unsigned decimal (no sign, no spaces, at most max). Returns 0 with
 * *out set (dflt when the text is NULL), or -1 when the text is not one; the
 * caller then answers 400 naming the parameter. */
int http_parse_u64(const char *text, uint64_t dflt, uint64_t max, uint64_t *out);

/* ------------------------------------------------------------ responses */

/* 200/202/... with body as JSON (application/json; charset=utf-8). Takes body
 * (also on failure). */
enum MHD_Result http_json(struct http_req *r, unsigned status, cJSON *body);
/* The same with a Location header (201 Created); location NULL: none. */
enum MHD_Result http_json_at(struct http_req *r, unsigned status, cJSON *body,
                             const char *location);
/* An error, {"error":{"code":CODE,"message":MESSAGE}}: code is a stable
 * snake_case word ("not_found", "bad_request", "finished", "not_a_service",
 * "unauthorized", "method_not_allowed", ...), message says what is wrong with
 * this request, naming the parameter or id. */
enum MHD_Result http_error(struct http_req *r, unsigned status, const char *code,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A body of bytes: text (or static_data, not copied, when is_static). */
/* http_text for a text of malloc's that MHD takes (and frees): no copy of the
 * body. text is freed in every case. */
enum MHD_Result http_text_take(struct http_req *r, unsigned status, const char *content_type,
                               char *text, size_t len);
enum MHD_Result http_text(struct http_req *r, unsigned status, const char *content_type,
                          const char *text, size_t len, int is_static);

/* A cacheable response (the dashboard's files): data is static, not copied.
 * Carries `ETag: etag` and `Cache-Control: no-cache` (the browser may keep it
 * but asks again each time) instead of the API's no-store. Status 304 sends no
 * body and no Content-Type, yet every other header of the 200, the CSP of
 * content_type included: a cache replaces the stored response's headers with a
 * 304's, so a 304 with the API's CSP would break the page it revalidates. */
enum MHD_Result http_cached(struct http_req *r, unsigned status, const char *content_type,
                            const void *data, size_t len, const char *etag);

/* ------------------------------------------------------------- streams
 *
 * A response that goes on (SSE, a followed log). fill() is asked for the next
 * bytes: it writes up to max bytes into buf and returns how many; 0 means
 * "nothing now": the server suspends the connection (no busy loop) until
 * http_streams_wake() or the stream's heartbeat; -1 ends the response, any
 * other negative value cuts it (the connection closes without the response's
 * end, so the client knows it is incomplete: out of memory halfway through a
 * document). heartbeat_ms > 0: after that long without data, fill() is asked
 * again with *heartbeat = 1 (write a comment line, or nothing). done() frees the
 * state when the connection ends (also when the client goes away). */
struct http_stream_ops {
  ssize_t (*fill)(void *state, char *buf, size_t max, int heartbeat);
  void (*done)(void *state);
};
/* Takes state: on failure (500 queued) done(state) has been called. fill() is
 * never called for HEAD; done() always is, exactly once. */
enum MHD_Result http_stream(struct http_req *r, const char *content_type,
                            const struct http_stream_ops *ops, void *state,
                            unsigned heartbeat_ms);
/* Resumes every suspended stream of the admin server, from the loop. Safe to
 * call from arbor__events_notify's callback (it only schedules). */
void http_streams_wake(struct arbor_admin_s *admin);

/* ------------------------------------------------------------- routing */

typedef enum MHD_Result (*http_handler)(struct http_req *r);

/* One route: a method and a path pattern whose "{name}" segments match one
 * non-empty path segment each (into r->params, in order). A path that matches
 * a pattern but not its method gets 405 with Allow; no pattern at all, 404.
 * Mutating routes (every method but GET) need the bearer token when one is
 * configured (401 with WWW-Authenticate: Bearer). */
struct http_route {
  const char *method;
  const char *pattern;
  http_handler handler;
};

/* The routes, in routes.c: one table, so the API's shape is in one place. */
extern const struct http_route http_routes[];
extern const size_t http_nroutes;

/* The handlers the table names. HEAD is answered by every GET route (MHD sends
 * the headers only). */
enum MHD_Result http_tree_get(struct http_req *r);        /* tree.c */
enum MHD_Result http_node_get(struct http_req *r);        /* nodes.c */
enum MHD_Result http_node_children(struct http_req *r);
enum MHD_Result http_node_cancel(struct http_req *r);
enum MHD_Result http_node_restart(struct http_req *r);
enum MHD_Result http_node_log(struct http_req *r);        /* logs.c */
enum MHD_Result http_events_get(struct http_req *r);      /* events.c */
enum MHD_Result http_trace_get(struct http_req *r);       /* trace.c */
enum MHD_Result http_healthz(struct http_req *r);         /* health.c */
enum MHD_Result http_readyz(struct http_req *r);
enum MHD_Result http_static_index(struct http_req *r);    /* static.c: GET / */
enum MHD_Result http_static_file(struct http_req *r);     /* GET /ui/{file} */
enum MHD_Result http_metrics_get(struct http_req *r);     /* metrics.c */
enum MHD_Result http_services_add(struct http_req *r);    /* services.c */
enum MHD_Result http_services_update(struct http_req *r);
enum MHD_Result http_services_remove(struct http_req *r);

/* ---------------------------------------------------------- dashboard */

/* One file of web/, embedded at build time: mk/embed.c writes the table into
 * $(BUILD)/gen/web_assets.c (the Makefile), http/static.c serves it. */
struct http_asset {
  const char *name;              /* "app.js": its name in web/, one URL segment */
  const char *content_type;      /* from the extension: "text/javascript; charset=utf-8" */
  const unsigned char *data;     /* size bytes, then a NUL */
  size_t size;
  const char *etag;              /* strong, quoted: "\"<hash>-<size>\"" */
};
extern const struct http_asset http_assets[];
extern const size_t http_nassets;
/* The embedded file of that name, or NULL. */
const struct http_asset *http_asset_find(const char *name);

/* --------------------------------------------------------------- JSON */

/* json.c: a node as JSON. Fields and their names are stable: docs/openapi.yaml. */
cJSON *http_json_node(arbor_node_t *node);                /* the node's own fields */
cJSON *http_json_error(const arbor_error_t *err);         /* a chain, or null */
/* Adds "<name>_ns" (monotonic) and "<name>" (RFC 3339 UTC wall clock, ns
 * precision) for a monotonic time; nothing when t is 0. */
void http_json_time(cJSON *obj, arbor_runtime_t *rt, const char *name, uint64_t t_ns);

/* Responses the server queued with this status (every one since it started,
 * those no handler saw included: 401, 404, 405, 413, 414, 503), for GET
 * /metrics. Statuses outside HTTP_STATUS_FIRST..LAST are never sent. */
#define HTTP_STATUS_FIRST 100
#define HTTP_STATUS_LAST 599
uint64_t http_responses_sent(const struct arbor_admin_s *admin, unsigned status);
/* The size of the last GET /api/v1/tree answer: the next one's buffer starts
 * that large (a dashboard or a monitor asks for the same tree again and again). */
size_t http_tree_size_hint(const struct arbor_admin_s *admin);
void http_tree_size_seen(struct arbor_admin_s *admin, size_t len);

/* The server's options, for handlers (heartbeat, page limits), with every
 * default filled in (sse_heartbeat_ms, max_body ... are never 0). */
const arbor_admin_opts_t *http_admin_opts(const struct arbor_admin_s *admin);

#endif /* ARBOR_HTTP_H */
