/* http/resources.h - what the admin API's resources (json.c, tree.c, nodes.c,
 * logs.c, events.c) share besides http/http.h. Not installed; the server core
 * (server.c, routes.c) does not need it.
 *
 * JSON building here never fails halfway silently: every helper takes a
 * struct http_jcx whose `oom` is set when cJSON could not allocate, and the
 * builders return NULL then, so a handler answers 500 instead of a response
 * with fields missing. Everything a response can hold is bounded (error chains,
 * messages, pages, the tree's node count), so no request can make the loop
 * build an unbounded document.
 */
#ifndef ARBOR_HTTP_RESOURCES_H
#define ARBOR_HTTP_RESOURCES_H

#include "http.h"

/* Pages and limits, as docs/openapi.yaml states them. */
#define HTTP_TREE_DEPTH_DEFAULT 4
#define HTTP_TREE_DEPTH_MAX 64
#define HTTP_PAGE_DEFAULT 100        /* children per node (tree) or per page */
#define HTTP_PAGE_MAX 1000
/* Nodes in one /tree response at most, taken breadth first: a 100,000-node tree
 * served with default paging must not stall the loop (DESIGN.md, "Threading"). */
#define HTTP_TREE_NODES_MAX 1000
#define HTTP_LOG_DEFAULT 16384       /* bytes of process output per /log read */
#define HTTP_LOG_MAX 262144

/* Bounds on one error chain as JSON (node detail, history, events): errors
 * rendered in all (causes and group members), cause depth, bytes of a message. */
#define HTTP_ERRORS_MAX 64
#define HTTP_ERROR_DEPTH_MAX 16
#define HTTP_MESSAGE_MAX 4096

/* One JSON build: whether an allocation failed, and what is left of the error
 * budget (0 on entry means the defaults above). */
struct http_jcx {
  int oom;
  int errors_left;
  size_t message_max;
};
void http_jcx_init(struct http_jcx *cx, int errors_max, size_t message_max);

/* Adds to obj (no-ops once cx->oom). Integers past INT32_MAX are written as
 * exact decimal text (cJSON would print them as rounded doubles). Strings are made valid UTF-8 (an
 * invalid byte becomes U+FFFD); NULL becomes JSON null. */
void http_jadd_u64(struct http_jcx *cx, cJSON *obj, const char *name, uint64_t v);
void http_jadd_i64(struct http_jcx *cx, cJSON *obj, const char *name, int64_t v);
void http_jadd_str(struct http_jcx *cx, cJSON *obj, const char *name, const char *s);
void http_jadd_bool(struct http_jcx *cx, cJSON *obj, const char *name, int b);
void http_jadd_time(struct http_jcx *cx, cJSON *obj, arbor_runtime_t *rt, const char *name,
                    uint64_t t_ns);
/* Adds item (NULL: marks oom). Returns item, or NULL. */
cJSON *http_jadd(struct http_jcx *cx, cJSON *obj, const char *name, cJSON *item);
cJSON *http_jpush(struct http_jcx *cx, cJSON *arr, cJSON *item);

/* RFC 3339 UTC with nanoseconds, "2026-11-24T16:40:00.123456789Z", of a wall
 * clock time (Unix epoch, ns). buf holds at least HTTP_TIME_LEN bytes. */
#define HTTP_TIME_LEN 48
void http_format_time(int64_t wall_ns, char *buf);

/* The builders behind http_json_node / http_json_error, with a context. */
cJSON *http_jnode(struct http_jcx *cx, arbor_node_t *node);
/* The earlier sibling a supervised child waits for before it starts
 * (arbor_service_info's waiting_for), with its phase; NULL when it waits for
 * none (or is no supervised child). Node shapes carry it as "waiting_for". */
arbor_node_t *http_waiting_for(arbor_node_t *node, arbor_phase_t *phase);
cJSON *http_jerror(struct http_jcx *cx, const arbor_error_t *err);
/* service.exec of a process service that sets user, umask, rlimits or an env
 * file (exec.c); nothing otherwise. */
void http_jadd_exec(struct http_jcx *cx, cJSON *s, arbor_node_t *node);

/* Appends s[0..len) to out as the inside of a JSON string (no quotes): control
 * characters escaped, invalid UTF-8 bytes as \ufffd, NUL as \u0000. out must
 * have room for 6 * len bytes. Returns the bytes written. */
size_t http_json_escape(const char *s, size_t len, char *out);

/* The route's {id} (r->params[0]) as a node. Returns the node, or NULL after
 * queueing the answer in *ret: 400 bad_request for a malformed id, 404
 * not_found for an unknown one. */
arbor_node_t *http_node_param(struct http_req *r, enum MHD_Result *ret);
/* A query parameter as an unsigned decimal in [0, max] (dflt when absent).
 * Returns 0, or -1 after queueing 400 bad_request naming it in *ret. */
int http_query_u64(struct http_req *r, const char *key, uint64_t dflt, uint64_t max,
                   uint64_t *out, enum MHD_Result *ret);
/* 500 internal: "out of memory building the response". */
enum MHD_Result http_oom(struct http_req *r);
/* Sends o with status, or 500 (and frees o) when building it ran out of memory. */
enum MHD_Result http_jsend(struct http_req *r, const struct http_jcx *cx, unsigned status,
                           cJSON *o);

#endif /* ARBOR_HTTP_RESOURCES_H */
