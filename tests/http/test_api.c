/* tests/http/test_api.c - the admin API's resources (http/json.c, tree.c,
 * nodes.c, logs.c, events.c).
 *
 * First the JSON builders on a real runtime's nodes, called directly; then
 * every endpoint and error status through real HTTP (the server on 127.0.0.1,
 * a free port, and tests/http/httpc.h as the client).
 *
 * With ARBOR_API_DUMP=DIR in the environment, api_dump_responses writes every
 * response it got into DIR (one JSON file each), for tests/http/schema/run.sh,
 * which checks them against docs/openapi.yaml with ajv. The C suite itself
 * needs no Node.
 */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <regex.h>

#include "../../tracing/jsonw.h"
#include "../../http/resources.h"

/* ------------------------------------------------------------ helpers */

/* The JSON text of the last roundtrip: 64-bit values are checked in it, since
 * cJSON_Parse reads numbers as doubles. */
static char last_text[65536];

/* The JSON text of item and back, as a client would see it. */
static cJSON *roundtrip(cJSON *item) {
  assert_non_null(item);
  char *text = cJSON_PrintUnformatted(item);
  assert_non_null(text);
  snprintf(last_text, sizeof last_text, "%s", text);
  cJSON *back = cJSON_Parse(text);
  if (back == NULL)
    fail_msg("not JSON: %s", text);
  free(text);
  cJSON_Delete(item);
  return back;
}

/* "name":value appears in the text of the last roundtrip. */
static void assert_text_u64(const char *name, uint64_t v) {
  char want[128];
  snprintf(want, sizeof want, "\"%s\":%llu", name, (unsigned long long)v);
  if (strstr(last_text, want) == NULL)
    fail_msg("%s not in %s", want, last_text);
}

static cJSON *field(const cJSON *obj, const char *name) {
  cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (f == NULL) {
    char *text = cJSON_PrintUnformatted(obj);
    fail_msg("no field \"%s\" in %s", name, text ? text : "?");
  }
  return f;
}

static const char *str_field(const cJSON *obj, const char *name) {
  cJSON *f = field(obj, name);
  assert_true(cJSON_IsString(f));
  return f->valuestring;
}

static double num_field(const cJSON *obj, const char *name) {
  cJSON *f = field(obj, name);
  assert_true(cJSON_IsNumber(f));
  return f->valuedouble;
}

static int bool_field(const cJSON *obj, const char *name) {
  cJSON *f = field(obj, name);
  assert_true(cJSON_IsBool(f));
  return cJSON_IsTrue(f);
}

static void assert_rfc3339(const char *s) {
  regex_t re;
  assert_int_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z$",
                        REG_EXTENDED | REG_NOSUB),
                0);
  int rc = regexec(&re, s, 0, NULL, 0);
  regfree(&re);
  if (rc != 0)
    fail_msg("not RFC 3339 with ns: %s", s);
}

/* A callback task that fails at start with a wrapped chain:
 * EIO "write failed" caused by ENOENT "no config". */
static int fail_chain_start(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_error_t *cause = arbor_error_new(ARBOR_ENOENT, "no config");
  arbor_task_fail_error(task, arbor_error_wrap(cause, -EIO, "write failed"));
  return 0;
}

static arbor_node_t *spawn_fn(arbor_node_t *parent, const char *name,
                              arbor_task_start_cb start, arbor_task_cancel_cb cancel) {
  arbor_task_spec_t spec = {.name = name, .start = start, .cancel = cancel};
  arbor_node_t *t = NULL;
  assert_code(arbor_task_spawn(parent, &spec, &t), 0);
  return t;
}

/* ----------------------------------------------------------- JSON units */

/* A failed group: every field of the node shape, the error group with its
 * members' chains, times as ns and RFC 3339, attributes. */
static void json_node_failed_group_shape(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *g = arbor_test_group(arbor_root(rt), "workers");
  assert_code(arbor_node_attr_set(g, "team", "infra"), 0);
  assert_code(arbor_node_attr_set(g, "zone", "b"), 0);
  arbor_node_t *t = spawn_fn(g, "writer", fail_chain_start, NULL);
  arbor_node_ref(g);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));

  cJSON *o = roundtrip(http_json_node(g));
  assert_uint_eq(num_field(o, "id"), arbor_node_id(g));
  assert_uint_eq(num_field(o, "parent_id"), arbor_node_id(arbor_root(rt)));
  assert_string_equal(str_field(o, "name"), "workers");
  assert_string_equal(str_field(o, "kind"), "group");
  assert_string_equal(str_field(o, "state"), "FINISHED");
  assert_string_equal(str_field(o, "outcome"), "FAILED");
  assert_false(bool_field(o, "cancel_requested"));
  assert_false(bool_field(o, "stuck"));
  arbor_node_info_t in;
  arbor_node_info(g, &in);
  assert_text_u64("created_ns", in.created_ns);
  assert_text_u64("finished_ns", in.finished_ns);
  assert_rfc3339(str_field(o, "created"));
  assert_rfc3339(str_field(o, "started"));
  assert_rfc3339(str_field(o, "stop_requested"));
  assert_rfc3339(str_field(o, "finished"));
  assert_int_eq(num_field(o, "children"), 1);
  assert_int_eq(num_field(o, "live_children"), 0);
  assert_int_eq(num_field(o, "children_total"), 1);
  assert_int_eq(num_field(o, "restarts"), 0);
  cJSON *attrs = field(o, "attributes");
  assert_string_equal(str_field(attrs, "team"), "infra");
  assert_string_equal(str_field(attrs, "zone"), "b");

  cJSON *err = field(o, "error");
  assert_string_equal(str_field(err, "name"), "EGROUP");
  assert_int_eq(num_field(err, "code"), ARBOR_EGROUP);
  cJSON *members = field(err, "errors");
  assert_int_eq(cJSON_GetArraySize(members), 1);
  cJSON *e0 = cJSON_GetArrayItem(members, 0);
  assert_string_equal(str_field(e0, "name"), "EIO");
  assert_string_equal(str_field(e0, "message"), "write failed");
  assert_string_equal(str_field(e0, "function"), "fail_chain_start");
  assert_non_null(strstr(str_field(e0, "file"), "test_api.c"));
  assert_true(num_field(e0, "line") > 0);
  assert_uint_eq(num_field(e0, "node_id"), arbor_node_id(t));
  assert_true(num_field(e0, "time_ns") > 0);
  cJSON *cause = field(e0, "cause");
  assert_string_equal(str_field(cause, "name"), "ENOENT");
  assert_string_equal(str_field(cause, "message"), "no config");
  assert_true(cJSON_IsNull(field(cause, "cause")));
  assert_null(cJSON_GetObjectItem(cause, "errors"));   /* only error groups have it */
  cJSON_Delete(o);

  /* A node that has not finished: no finished pair, error null. */
  o = roundtrip(http_json_node(arbor_root(rt)));
  assert_string_equal(str_field(o, "kind"), "root");
  assert_int_eq(num_field(o, "parent_id"), 0);
  assert_null(cJSON_GetObjectItem(o, "finished_ns"));
  assert_null(cJSON_GetObjectItem(o, "finished"));
  assert_true(cJSON_IsNull(field(o, "error")));
  cJSON_Delete(o);

  arbor_node_unref(g);
  arbor_test_close(rt, &loop);
}

/* The wall clock text of a known instant, and 64-bit values written exactly. */
static void json_times_and_big_integers_exact(void **state) {
  char buf[HTTP_TIME_LEN];
  http_format_time(1795538400123456789LL, buf);   /* 2026-11-24T16:40:00.123456789Z */
  assert_string_equal(buf, "2026-11-24T16:40:00.123456789Z");
  http_format_time(-1, buf);                      /* floor, not truncation */
  assert_string_equal(buf, "1969-12-31T23:59:59.999999999Z");

  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = cJSON_CreateObject();
  http_jadd_u64(&cx, o, "small", 9007199254740992ULL);
  http_jadd_u64(&cx, o, "big", 18446744073709551615ULL);
  http_jadd_i64(&cx, o, "neg", INT64_MIN);
  assert_false(cx.oom);
  char *text = cJSON_PrintUnformatted(o);
  assert_string_equal(text, "{\"small\":9007199254740992,\"big\":18446744073709551615,"
                            "\"neg\":-9223372036854775808}");
  free(text);
  cJSON_Delete(o);
}

/* Bytes that are not UTF-8 (a name, a message) never make the document
 * invalid: they become U+FFFD; valid multi-byte text passes untouched. */
static void json_invalid_utf8_replaced(void **state) {
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = cJSON_CreateObject();
  http_jadd_str(&cx, o, "bad", "a\xff" "b\xc3(\xed\xa0\x80" "c");
  http_jadd_str(&cx, o, "good", "gr\xc3\xbc\xc3\x9f \xe2\x9c\x93 \xf0\x9f\x8c\xb3");
  http_jadd_str(&cx, o, "none", NULL);
  cJSON *back = roundtrip(o);
  assert_string_equal(str_field(back, "bad"),
                      "a\xef\xbf\xbd" "b\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "c");
  assert_string_equal(str_field(back, "good"), "gr\xc3\xbc\xc3\x9f \xe2\x9c\x93 \xf0\x9f\x8c\xb3");
  assert_true(cJSON_IsNull(field(back, "none")));
  cJSON_Delete(back);

  /* The log's escaper: NUL and control bytes escaped, a bad byte \ufffd. */
  char out[64];
  size_t n = http_json_escape("a\0\"\n\x01\xff", 6, out);
  out[n] = '\0';
  assert_string_equal(out, "a\\u0000\\\"\\n\\u0001\\ufffd");
  /* A character cut at the end of a read is left for the next one. */
  assert_int_eq(jw_utf8_complete("ab\xe2\x9c", 4), 2);
  assert_int_eq(jw_utf8_complete("ab\xe2\x9c\x93", 5), 5);
  assert_int_eq(jw_utf8_complete("ab\xff", 3), 3);
}

/* An attribute's key that is not UTF-8 is cleaned like its value: the node's
 * document (GET /api/v1/nodes/{id}) stays valid UTF-8, the same bytes as
 * /tree's jw writer gives (found by fuzz/fuzz_views.c). */
static void json_attribute_key_invalid_utf8_replaced(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *g = arbor_test_group(arbor_root(rt), "g");
  assert_code(arbor_node_attr_set(g, "k\xc0\xaf\xff", "v\xfe"), 0);
  cJSON *back = roundtrip(http_json_node(g));
  const cJSON *attrs = field(back, "attributes");
  assert_string_equal(str_field(attrs, "k\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
                      "v\xef\xbf\xbd");
  assert_null(strstr(last_text, "\xc0"));
  cJSON_Delete(back);
  arbor_node_cancel(g);
  arbor_test_close(rt, &loop);
}

/* A chain longer than the budget ends in "truncated"; a message is cut at a
 * character boundary. */
static void json_error_chain_bounded(void **state) {
  arbor_error_t *e = arbor_error_new(-EIO, "root cause");
  for (int i = 0; i < 40; i++)
    e = arbor_error_wrap(e, -EIO, "level %d", i);
  cJSON *o = roundtrip(http_json_error(e));
  int depth = 0;
  const cJSON *at = o;
  while (cJSON_IsObject(field(at, "cause"))) {
    at = field(at, "cause");
    depth++;
  }
  assert_int_eq(depth, HTTP_ERROR_DEPTH_MAX);
  assert_true(bool_field(at, "truncated"));
  cJSON_Delete(o);
  arbor_error_unref(e);

  char msg[HTTP_MESSAGE_MAX + 8];
  memset(msg, 'x', sizeof msg);
  memcpy(msg + HTTP_MESSAGE_MAX - 1, "\xe2\x9c\x93", 3);   /* a character across the cut */
  msg[sizeof msg - 1] = '\0';
  e = arbor_error_new(-EIO, "%s", msg);
  o = roundtrip(http_json_error(e));
  assert_int_eq(strlen(str_field(o, "message")), HTTP_MESSAGE_MAX - 1);
  cJSON_Delete(o);
  arbor_error_unref(e);

  o = roundtrip(http_json_error(NULL));
  assert_true(cJSON_IsNull(o));
  cJSON_Delete(o);
}


/* ================================================================ HTTP
 *
 * The server runs on the test's loop; httpc (tests/http/httpc.h) runs each
 * request on a helper thread and drives the loop until it is done: no
 * sleeping, no upper bound on time but the runner's.
 */
#include <stdatomic.h>

#include "httpc.h"

/* One request through httpc: started, then waited for while the loop runs. */
struct call {
  const char *method;
  const char *path;
  char url[1024];
  char header[256];              /* one extra request header, or "" */
  const char *headers[2];
  struct httpc_call *hc;
  /* out */
  long status;
  char ctype[128];
  char allow[128];
  char *body;
};

static void tick_cb(uv_timer_t *t) { (void)t; }

/* Drives the loop with a 1 ms tick until cond holds (at most 60000 passes). */
#define run_ticking_until(loop, cond)                                                  \
  do {                                                                                 \
    uv_timer_t tick_;                                                                  \
    int k_, held_ = 0;                                                                 \
    assert_int_eq(uv_timer_init((loop), &tick_), 0);                                   \
    assert_int_eq(uv_timer_start(&tick_, tick_cb, 1, 1), 0);                           \
    for (k_ = 0; k_ < 60000 && !(held_ = (cond)); k_++)                                \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    uv_close((uv_handle_t *)&tick_, NULL);                                             \
    uv_run((loop), UV_RUN_NOWAIT);                                                     \
    if (!held_) {                                                                      \
      print_error("condition never held: %s\n", #cond);                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* One test's world: a runtime, its admin server, and the loop. */
struct world {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  int port;
};

static void world_open(struct world *w, const arbor_runtime_opts_t *ropts,
                       const arbor_admin_opts_t *aopts) {
  arbor_test_open(&w->loop, &w->rt, ropts);
  assert_code(arbor_admin_start(w->rt, aopts, &w->admin), 0);
  w->port = arbor_admin_port(w->admin);
  assert_true(w->port > 0);
}

static void world_close(struct world *w) {
  arbor_test_close(w->rt, &w->loop);
}

static int dump_seq;

/* With ARBOR_API_DUMP set, keeps the response for tests/http/schema/run.sh. */
static void dump_json(const char *schema, const char *what, const struct call *c,
                      const char *body_text) {
  const char *dir = getenv("ARBOR_API_DUMP");
  if (dir == NULL || dir[0] == '\0')
    return;
  cJSON *body = cJSON_Parse(body_text);
  if (body == NULL)
    fail_msg("response is not JSON: %s", body_text);
  cJSON *d = cJSON_CreateObject();
  if (schema != NULL) {
    cJSON_AddStringToObject(d, "schema", schema);
    cJSON_AddStringToObject(d, "what", what);
  } else {
    cJSON_AddStringToObject(d, "method", c->method);
    cJSON_AddStringToObject(d, "path", c->path);
    cJSON_AddNumberToObject(d, "status", (double)c->status);
    cJSON_AddStringToObject(d, "content_type", c->ctype);
  }
  cJSON_AddItemToObject(d, "body", body);
  char *text = cJSON_Print(d);
  char name[4096];
  snprintf(name, sizeof name, "%s/%04d.json", dir, ++dump_seq);
  FILE *f = fopen(name, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(text);
  cJSON_Delete(d);
}

/* Starts a request (max_events > 0: a stream, ended after that many blocks,
 * heartbeats included); the caller then calls call_finish. */
/* The body of the next requests (NULL: none, "" for a POST). */
static const char *req_body;

static struct call *call_begin(struct world *w, const char *method, const char *path,
                               const char *header, size_t max_events) {
  struct call *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->method = method;
  c->path = path;
  httpc_url(c->url, sizeof c->url, w->port, path);
  snprintf(c->header, sizeof c->header, "%s", header ? header : "");
  c->headers[0] = c->header[0] != '\0' ? c->header : NULL;
  c->hc = httpc_begin(&w->loop, &(httpc_opts_t){.method = method,
                                                .url = c->url,
                                                .body = req_body != NULL ? req_body
                                                        : strcmp(method, "POST") == 0 ? ""
                                                                                      : NULL,
                                                .headers = c->headers,
                                                .max_events = max_events});
  assert_non_null(c->hc);
  return c;
}

static struct call *call_start(struct world *w, const char *method, const char *path,
                               const char *header) {
  return call_begin(w, method, path, header, 0);
}

/* Drives the loop until the response ended (or its block limit was reached). */
static void call_finish(struct world *w, struct call *c) {
  (void)w;
  char *hdrs = NULL;
  httpc_wait(c->hc, NULL, NULL);
  assert_int_eq(httpc_end(c->hc, &c->status, &c->body, &hdrs), 0);
  c->hc = NULL;
  char *v = httpc_header(hdrs, "Content-Type");
  snprintf(c->ctype, sizeof c->ctype, "%s", v ? v : "");
  free(v);
  v = httpc_header(hdrs, "Allow");
  snprintf(c->allow, sizeof c->allow, "%s", v ? v : "");
  free(v);
  free(hdrs);
  if (c->body == NULL)
    c->body = calloc(1, 1);
}

static void call_free(struct call *c) {
  free(c->body);
  free(c);
}

/* A whole JSON request: the status must be `status`; returns the body parsed
 * (the caller deletes it) and dumps it. */
static cJSON *api(struct world *w, const char *method, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cJSON *api(struct world *w, const char *method, long status, const char *fmt, ...) {
  char path[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof path, fmt, ap);
  va_end(ap);
  struct call *c = call_start(w, method, path, NULL);
  call_finish(w, c);
  if (c->status != status)
    fail_msg("%s %s: status %ld, want %ld: %s", method, path, c->status, status, c->body);
  if (strncmp(c->ctype, "application/json", 16) != 0)
    fail_msg("%s %s: content type \"%s\"", method, path, c->ctype);
  cJSON *o = cJSON_Parse(c->body);
  if (o == NULL)
    fail_msg("%s %s: not JSON: %s", method, path, c->body);
  snprintf(last_text, sizeof last_text, "%s", c->body);
  dump_json(NULL, NULL, c, c->body);
  call_free(c);
  return o;
}

/* An error answer: status, the stable code, and a message containing `says`. */
static void api_error(struct world *w, const char *method, long status, const char *code,
                      const char *says, const char *path) {
  cJSON *o = api(w, method, status, "%s", path);
  cJSON *e = field(o, "error");
  assert_string_equal(str_field(e, "code"), code);
  if (says != NULL && strstr(str_field(e, "message"), says) == NULL)
    fail_msg("%s %s: message \"%s\" does not say \"%s\"", method, path,
             str_field(e, "message"), says);
  cJSON_Delete(o);
}

/* ------------------------------------------------------------ the world */

/* A fiber body that sleeps until cancelled. */
static int sleeper(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600 * 1000);
}

/* A fiber that never reports ready (a handshake service stays STARTING). */
static int never_ready(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600 * 1000);
}

/* A service body that, once cancelled, keeps stopping (shielded) until the
 * test lets it go: deterministically "stopping for good". */
static atomic_int release_persistent;
static int persistent(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_sleep(cx, 3600 * 1000);
  arbor_scope_t s;
  arbor_scope_enter(cx, &s, &(arbor_scope_opts_t){.shield = 1});
  while (!atomic_load(&release_persistent))
    arbor_sleep(cx, 1);
  arbor_scope_exit(cx, &s);
  return 0;
}

static arbor_node_t *fiber(arbor_node_t *parent, const char *name, arbor_fiber_fn fn) {
  arbor_node_t *n = NULL;
  assert_code(arbor_fiber_spawn(parent, &(arbor_fiber_spec_t){.name = name, .fn = fn}, &n), 0);
  return n;
}

static arbor_node_t *service(arbor_node_t *parent, const arbor_service_spec_t *spec) {
  arbor_node_t *n = NULL;
  assert_code(arbor_service_add(parent, spec, &n), 0);
  return n;
}

/* The tree every HTTP test serves:
 *   supervisor sup (one_for_one)
 *     service web (fiber, sleeps)
 *     service proc (process: echo hi; echo err >&2; sleep 100)
 *   group failing FAILED (task writer FAILED: EIO caused by ENOENT)
 *   group batch (attributes): 3 fibers and group inner with 2 fibers
 */
struct tree {
  arbor_node_t *sup, *web, *proc, *failing, *writer, *batch, *inner;
  char proc_log[64];             /* proc's log file (service.log_file in its detail) */
  char proc_env[64];             /* proc's env file (service.exec in its detail) */
};

static char *proc_argv[] = {"/bin/sh", "-c", "echo hi; echo err >&2; sleep 100", NULL};

static void tree_build(struct world *w, struct tree *t) {
  arbor_node_t *root = arbor_root(w->rt);
  assert_code(arbor_supervisor_new(root, &(arbor_sup_opts_t){.name = "sup"}, &t->sup), 0);
  t->web = service(t->sup, &(arbor_service_spec_t){.name = "web", .fiber = sleeper});
  snprintf(t->proc_log, sizeof t->proc_log, "/tmp/arbor-test-api-%d.log", (int)getpid());
  snprintf(t->proc_env, sizeof t->proc_env, "/tmp/arbor-test-api-%d.env", (int)getpid());
  FILE *env = fopen(t->proc_env, "w");
  assert_non_null(env);
  fputs("GREETING=hi\n", env);
  fclose(env);
  t->proc = service(t->sup, &(arbor_service_spec_t){.name = "proc", .argv = proc_argv,
                                                     .log_file = t->proc_log,
                                                     .env_file = t->proc_env});
  t->failing = arbor_test_group(root, "failing");
  t->writer = spawn_fn(t->failing, "writer", fail_chain_start, NULL);
  arbor_node_ref(t->failing);
  arbor_node_ref(t->writer);
  assert_code(arbor_group_join(t->failing, NULL, NULL), 0);
  t->batch = arbor_test_group(root, "batch");
  assert_code(arbor_node_attr_set(t->batch, "owner", "ops"), 0);
  for (int i = 0; i < 3; i++)
    fiber(t->batch, "worker", sleeper);
  t->inner = arbor_test_group(t->batch, "inner");
  fiber(t->inner, "leaf", sleeper);
  fiber(t->inner, "leaf", sleeper);
  arbor_node_ref(t->batch);
  arbor_node_ref(t->inner);
  /* Everything up: services STARTED, the process has written both lines. */
  char buf[64];
  uint64_t off;
  arbor_log_file_info_t lf;
  run_ticking_until(&w->loop, arbor_node_state(t->sup) == ARBOR_STATE_STARTED &&
                                  arbor_node_is_finished(t->failing) &&
                                  (off = 0, arbor_service_log_read(t->proc, &off, buf, sizeof buf,
                                                                   NULL) == 7) &&
                                  arbor_service_log_file_info(t->proc, &lf) == 0 &&
                                  lf.bytes_written == 7);
}

static void tree_release(struct tree *t) {
  unlink(t->proc_log);           /* written and open: nothing creates it again */
  unlink(t->proc_env);
  arbor_node_unref(t->failing);
  arbor_node_unref(t->writer);
  arbor_node_unref(t->batch);
  arbor_node_unref(t->inner);
}

/* ------------------------------------------------------------ the tests */

/* GET /api/v1/tree: nested nodes, depth and limit, "more", the root= subtree,
 * and 400 / 404 naming the parameter. */
static void api_tree_depth_limit_root(void **state) {
  struct world w;
  struct tree t;
  world_open(&w, NULL, NULL);
  tree_build(&w, &t);

  cJSON *o = api(&w, "GET", 200, "/api/v1/tree");
  assert_int_eq(num_field(o, "depth"), 4);
  assert_int_eq(num_field(o, "limit"), 100);
  assert_false(bool_field(o, "truncated"));
  cJSON *root = field(o, "root");
  assert_string_equal(str_field(root, "kind"), "root");
  cJSON *top = field(root, "nodes");
  assert_int_eq(cJSON_GetArraySize(top), 3);
  cJSON *sup = cJSON_GetArrayItem(top, 0);
  assert_string_equal(str_field(sup, "name"), "sup");
  assert_string_equal(str_field(sup, "kind"), "supervisor");
  assert_int_eq(cJSON_GetArraySize(field(sup, "nodes")), 2);
  cJSON *batch = cJSON_GetArrayItem(top, 2);
  assert_string_equal(str_field(field(batch, "attributes"), "owner"), "ops");
  cJSON *inner = cJSON_GetArrayItem(field(batch, "nodes"), 3);
  assert_string_equal(str_field(inner, "name"), "inner");
  assert_int_eq(cJSON_GetArraySize(field(inner, "nodes")), 2);
  assert_null(cJSON_GetObjectItem(inner, "more"));
  /* root 0, sup/failing/batch 1, ... : 1 + 3 + (2 + 1 + 4) + (2 incarnations + 2 leaves) */
  assert_int_eq(num_field(o, "count"), 15);
  cJSON_Delete(o);

  /* depth 1: the root's children without theirs, each saying how many. */
  o = api(&w, "GET", 200, "/api/v1/tree?depth=1&limit=2");
  root = field(o, "root");
  top = field(root, "nodes");
  assert_int_eq(cJSON_GetArraySize(top), 2);
  assert_int_eq(num_field(root, "more"), 1);
  sup = cJSON_GetArrayItem(top, 0);
  assert_null(cJSON_GetObjectItem(sup, "nodes"));
  assert_int_eq(num_field(sup, "more"), 2);
  cJSON_Delete(o);

  /* A subtree. */
  o = api(&w, "GET", 200, "/api/v1/tree?root=%llu&depth=0",
          (unsigned long long)arbor_node_id(t.inner));
  assert_string_equal(str_field(field(o, "root"), "name"), "inner");
  assert_int_eq(num_field(field(o, "root"), "more"), 2);
  cJSON_Delete(o);

  api_error(&w, "GET", 400, "bad_request", "depth", "/api/v1/tree?depth=65");
  api_error(&w, "GET", 400, "bad_request", "depth", "/api/v1/tree?depth=-1");
  api_error(&w, "GET", 400, "bad_request", "limit", "/api/v1/tree?limit=1001");
  api_error(&w, "GET", 400, "bad_request", "root", "/api/v1/tree?root=abc");
  api_error(&w, "GET", 404, "not_found", "no node 999999", "/api/v1/tree?root=999999");
  tree_release(&t);
  world_close(&w);
}

/* GET /api/v1/nodes/{id}: the detail of a supervisor, a service with its
 * incarnation, a fiber's wait site, a failed task's chain; 400 and 404. */
static void api_node_detail(void **state) {
  struct world w;
  struct tree t;
  world_open(&w, NULL, NULL);
  tree_build(&w, &t);

  cJSON *o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(t.sup));
  cJSON *svc = field(o, "service");
  assert_string_equal(str_field(svc, "strategy"), "one_for_one");
  assert_int_eq(num_field(svc, "intensity"), 3);
  assert_int_eq(num_field(svc, "period_ms"), 5000);
  assert_string_equal(str_field(svc, "phase"), "running");
  assert_int_eq(cJSON_GetArraySize(field(o, "history")), 0);
  assert_null(cJSON_GetObjectItem(o, "fiber"));
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(t.web));
  svc = field(o, "service");
  assert_string_equal(str_field(svc, "restart"), "permanent");
  assert_false(bool_field(svc, "is_process"));
  assert_null(cJSON_GetObjectItem(svc, "strategy"));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(svc, "usage")));   /* no program */
  uint64_t inc = (uint64_t)num_field(svc, "incarnation_id");
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)inc);
  assert_uint_eq(num_field(o, "parent_id"), arbor_node_id(t.web));
  cJSON *fb = field(o, "fiber");
  assert_string_equal(str_field(fb, "wait"), "sleep");
  assert_non_null(strstr(str_field(fb, "file"), "test_api.c"));
  assert_true(num_field(fb, "line") > 0);
  assert_rfc3339(str_field(fb, "since"));
  assert_true(num_field(fb, "stack_size") > 0);
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(t.proc));
  assert_true(bool_field(field(o, "service"), "is_process"));
  assert_true(num_field(field(o, "service"), "pid") > 0);
  cJSON *lf = field(field(o, "service"), "log_file");
  assert_true(cJSON_IsNull(field(lf, "error")));
  assert_int_eq(num_field(lf, "bytes_written"), 7);
  assert_int_eq(num_field(lf, "bytes_dropped"), 0);
  assert_int_eq(num_field(lf, "rotations"), 0);
  /* how it is executed: only its env file is set */
  cJSON *ex = field(field(o, "service"), "exec");
  assert_string_equal(str_field(ex, "env_file"), t.proc_env);
  assert_true(cJSON_IsNull(field(ex, "uid")) && cJSON_IsNull(field(ex, "umask")));
  /* the figures of the running program (sh, and its sleep once forked) */
  cJSON *usage = field(field(o, "service"), "usage");
  assert_true(num_field(usage, "processes") >= 1);
  assert_true(num_field(usage, "threads") >= num_field(usage, "processes"));
  assert_true(num_field(usage, "rss_bytes") > 0);
  assert_true(num_field(usage, "open_fds") >= 3);
  assert_true(num_field(usage, "cpu_seconds") >= 0);
  assert_true(num_field(usage, "cpu_percent") >= 0);
  assert_false(bool_field(usage, "partial"));
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(t.writer));
  assert_string_equal(str_field(o, "outcome"), "FAILED");
  cJSON *err = field(o, "error");
  assert_string_equal(str_field(err, "name"), "EIO");
  assert_string_equal(str_field(field(err, "cause"), "name"), "ENOENT");
  cJSON_Delete(o);

  api_error(&w, "GET", 400, "bad_request", "node id", "/api/v1/nodes/abc");
  api_error(&w, "GET", 400, "bad_request", "node id", "/api/v1/nodes/0");
  api_error(&w, "GET", 400, "bad_request", "node id", "/api/v1/nodes/-4");
  api_error(&w, "GET", 400, "bad_request", "node id", "/api/v1/nodes/18446744073709551616");
  api_error(&w, "GET", 404, "not_found", "no node 999999", "/api/v1/nodes/999999");
  tree_release(&t);
  world_close(&w);
}

static int sleeps(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  int rc;
  while ((rc = arbor_sleep(cx, 3600 * 1000)) == 0)
    ;
  return rc;
}

/* service.ready and service.probes: each probe's settings, verdict, counters and
 * last error (a refused TCP connect), null for a probe it does not have. */
static void api_node_probes(void **state) {
  struct world w;
  world_open(&w, NULL, NULL);
  char *ok[] = {"true", NULL};
  arbor_health_probe_t live = {.kind = ARBOR_PROBE_TCP, .port = 1, .interval_ms = 5,
                               .failure_threshold = 1000000};
  arbor_health_probe_t ready = {.kind = ARBOR_PROBE_EXEC, .argv = ok, .interval_ms = 5};
  arbor_node_t *svc = service(arbor_root(w.rt),
                              &(arbor_service_spec_t){.name = "probed", .fiber = sleeps,
                                                      .liveness = &live, .readiness = &ready});
  arbor_probe_info_t li;
  arbor_test_run_ticking_until(&w.loop, arbor_node_state(svc) == ARBOR_STATE_STARTED &&
                                            arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS,
                                                                     &li) == 0 &&
                                            li.failures >= 1);
  cJSON *o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(svc));
  cJSON *sv = field(o, "service");
  assert_true(bool_field(sv, "ready"));
  cJSON *lp = field(field(sv, "probes"), "liveness");
  assert_string_equal(str_field(lp, "kind"), "tcp");
  assert_string_equal(str_field(lp, "target"), "127.0.0.1:1");
  assert_true(bool_field(lp, "passing"));
  assert_false(bool_field(lp, "last_ok"));
  assert_true(num_field(lp, "failures") >= 1);
  assert_int_eq(num_field(lp, "interval_ms"), 5);
  assert_int_eq(num_field(lp, "timeout_ms"), 1000);
  assert_string_equal(str_field(field(lp, "last_error"), "message"),
                      "TCP connect 127.0.0.1:1: connection refused");
  cJSON *rp = field(field(sv, "probes"), "readiness");
  assert_string_equal(str_field(rp, "kind"), "exec");
  assert_true(bool_field(rp, "passing"));
  assert_true(cJSON_IsNull(field(rp, "last_error")));
  assert_rfc3339(str_field(rp, "last_time"));
  cJSON_Delete(o);
  world_close(&w);
}

/* service.waiting_for: a supervisor's child held back by an earlier sibling
 * that is not STARTED names it, with its state (the dashboard's "waiting for
 * db: STARTING"); null for the sibling itself and once everything runs. */
static void api_node_waiting_for_names_the_sibling(void **state) {
  struct world w;
  world_open(&w, NULL, NULL);
  arbor_node_t *sup = NULL;
  assert_code(arbor_supervisor_new(arbor_root(w.rt), &(arbor_sup_opts_t){.name = "deps"}, &sup),
              0);
  arbor_node_t *db = service(sup, &(arbor_service_spec_t){.name = "db", .fiber = never_ready,
                                                          .handshake = 1});
  arbor_node_t *app = service(sup, &(arbor_service_spec_t){.name = "app", .fiber = sleeper});
  run_ticking_until(&w.loop, arbor_test_service_parked(db));

  cJSON *o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(app));
  cJSON *svc = field(o, "service");
  assert_string_equal(str_field(svc, "phase"), "idle");
  cJSON *wf = field(svc, "waiting_for");
  assert_uint_eq(num_field(wf, "id"), arbor_node_id(db));
  assert_string_equal(str_field(wf, "name"), "db");
  assert_string_equal(str_field(wf, "state"), "STARTING");
  assert_string_equal(str_field(wf, "phase"), "starting");
  assert_string_equal(str_field(field(o, "waiting_for"), "name"), "db");   /* top too */
  cJSON_Delete(o);

  /* The tree's nodes carry it only while they wait. */
  o = api(&w, "GET", 200, "/api/v1/tree?root=%llu", (unsigned long long)arbor_node_id(sup));
  cJSON *kids = field(field(o, "root"), "nodes");
  assert_int_eq(cJSON_GetArraySize(kids), 2);
  assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(kids, 0), "waiting_for"));
  wf = field(cJSON_GetArrayItem(kids, 1), "waiting_for");
  assert_string_equal(str_field(wf, "name"), "db");
  assert_string_equal(str_field(wf, "state"), "STARTING");
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(db));
  assert_true(cJSON_IsNull(field(field(o, "service"), "waiting_for")));
  cJSON_Delete(o);
  world_close(&w);
}

/* GET /api/v1/nodes/{id}/children: pages in creation order. */
static void api_children_paging(void **state) {
  struct world w;
  struct tree t;
  world_open(&w, NULL, NULL);
  tree_build(&w, &t);
  unsigned long long id = arbor_node_id(t.batch);

  cJSON *o = api(&w, "GET", 200, "/api/v1/nodes/%llu/children", id);
  assert_int_eq(num_field(o, "total"), 4);
  assert_int_eq(num_field(o, "offset"), 0);
  assert_int_eq(num_field(o, "limit"), 100);
  assert_int_eq(cJSON_GetArraySize(field(o, "children")), 4);
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu/children?offset=2&limit=5", id);
  cJSON *ch = field(o, "children");
  assert_int_eq(cJSON_GetArraySize(ch), 2);
  assert_string_equal(str_field(cJSON_GetArrayItem(ch, 1), "name"), "inner");
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu/children?offset=9", id);
  assert_int_eq(num_field(o, "total"), 4);
  assert_int_eq(cJSON_GetArraySize(field(o, "children")), 0);
  cJSON_Delete(o);

  char path[128];
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/children?limit=1001", id);
  api_error(&w, "GET", 400, "bad_request", "limit", path);
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/children?offset=x", id);
  api_error(&w, "GET", 400, "bad_request", "offset", path);
  api_error(&w, "GET", 404, "not_found", "no node 999999", "/api/v1/nodes/999999/children");
  tree_release(&t);
  world_close(&w);
}

static int all_cancelled(arbor_node_t *node, int depth, void *arg) {
  (void)arg;
  if (depth > 0 && (arbor_node_state(node) != ARBOR_STATE_FINISHED ||
                    arbor_node_outcome(node) != ARBOR_OUTCOME_CANCELLED))
    return -1;
  return 0;
}

/* POST /cancel of a group: 202, then every descendant FINISHED CANCELLED;
 * again: 409 finished; the root: 400; unknown: 404; GET: 405 with Allow. */
static void api_cancel_group_cancels_every_descendant(void **state) {
  struct world w;
  struct tree t;
  world_open(&w, NULL, NULL);
  tree_build(&w, &t);
  unsigned long long id = arbor_node_id(t.batch);

  cJSON *o = api(&w, "POST", 202, "/api/v1/nodes/%llu/cancel", id);
  assert_uint_eq(num_field(o, "id"), id);
  assert_true(bool_field(o, "cancel_requested"));
  assert_string_equal(str_field(o, "state"), "STOPPING");
  cJSON_Delete(o);
  run_ticking_until(&w.loop, arbor_node_is_finished(t.batch));
  assert_outcome(t.batch, CANCELLED);
  assert_int_eq(arbor_tree_walk(t.batch, -1, all_cancelled, NULL), 0);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", id);
  assert_string_equal(str_field(o, "state"), "FINISHED");
  assert_string_equal(str_field(o, "outcome"), "CANCELLED");
  assert_true(bool_field(o, "cancel_requested"));
  assert_rfc3339(str_field(o, "finished"));
  cJSON_Delete(o);

  char path[128];
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/cancel", id);
  api_error(&w, "POST", 409, "finished", "finished", path);
  api_error(&w, "POST", 400, "bad_request", "root", "/api/v1/nodes/1/cancel");
  api_error(&w, "POST", 400, "bad_request", "node id", "/api/v1/nodes/abc/cancel");
  api_error(&w, "POST", 404, "not_found", "no node 999999", "/api/v1/nodes/999999/cancel");

  struct call *c = call_start(&w, "GET", path, NULL);
  call_finish(&w, c);
  assert_int_eq(c->status, 405);
  assert_non_null(strstr(c->allow, "POST"));
  dump_json(NULL, NULL, c, c->body);
  call_free(c);
  tree_release(&t);
  world_close(&w);
}

/* POST /restart: same id, restarts + 1, a new incarnation; a task: 400
 * not_a_service; not started yet: 409 not_started; stopping for good: 409
 * stopping; finished: 409 finished. */
static void api_restart_service_same_id_count_plus_one(void **state) {
  struct world w;
  struct tree t;
  world_open(&w, NULL, NULL);
  tree_build(&w, &t);
  unsigned long long id = arbor_node_id(t.web);
  arbor_service_info_t si;
  assert_code(arbor_service_info(t.web, &si), 0);
  uint64_t inc0 = si.incarnation_id;
  uint32_t before = si.restarts;

  cJSON *o = api(&w, "POST", 202, "/api/v1/nodes/%llu/restart", id);
  assert_uint_eq(num_field(o, "id"), id);
  assert_uint_eq(num_field(o, "restarts"), before + 1);
  cJSON_Delete(o);
  run_ticking_until(&w.loop, arbor_service_info(t.web, &si) == 0 && si.incarnation_id != inc0 &&
                                 si.phase == ARBOR_PHASE_RUNNING);
  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", id);
  assert_uint_eq(num_field(o, "restarts"), before + 1);
  assert_uint_eq(num_field(field(o, "service"), "incarnation_id"), si.incarnation_id);
  cJSON_Delete(o);

  char path[128];
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/restart", (unsigned long long)arbor_node_id(t.writer));
  api_error(&w, "POST", 400, "not_a_service", "task", path);
  api_error(&w, "POST", 404, "not_found", "no node 999999", "/api/v1/nodes/999999/restart");

  /* Not started: the second child of a supervisor whose first never reports ready. */
  arbor_node_t *sup2 = NULL;
  assert_code(arbor_supervisor_new(arbor_root(w.rt), &(arbor_sup_opts_t){.name = "sup2"}, &sup2), 0);
  service(sup2, &(arbor_service_spec_t){.name = "slow", .fiber = never_ready, .handshake = 1});
  arbor_node_t *later = service(sup2, &(arbor_service_spec_t){.name = "later", .fiber = sleeper});
  run_ticking_until(&w.loop, arbor_node_state(sup2) == ARBOR_STATE_STARTING);
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/restart", (unsigned long long)arbor_node_id(later));
  api_error(&w, "POST", 409, "not_started", "not started", path);

  /* Stopping for good: a service whose body holds out once cancelled. */
  atomic_store(&release_persistent, 0);
  arbor_node_t *held = service(arbor_root(w.rt), &(arbor_service_spec_t){.name = "persistent",
                                                                          .fiber = persistent});
  arbor_node_ref(held);
  run_ticking_until(&w.loop, arbor_test_service_parked(held));
  assert_code(arbor_node_cancel(held), 0);
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/restart", (unsigned long long)arbor_node_id(held));
  api_error(&w, "POST", 409, "stopping", "stopping", path);
  atomic_store(&release_persistent, 1);
  run_ticking_until(&w.loop, arbor_node_is_finished(held));
  api_error(&w, "POST", 409, "finished", "finished", path);
  arbor_node_unref(held);
  tree_release(&t);
  world_close(&w);
}

/* GET /log: read part, then on from next_offset; the whole is both lines;
 * not a process: 400 not_a_process. A ring smaller than the output: missed. */
static void api_log_offset_and_tail(void **state) {
  struct world w;
  struct tree t;
  world_open(&w, NULL, NULL);
  tree_build(&w, &t);
  unsigned long long id = arbor_node_id(t.proc);

  cJSON *o = api(&w, "GET", 200, "/api/v1/nodes/%llu/log?limit=3", id);
  assert_int_eq(num_field(o, "offset"), 0);
  assert_int_eq(num_field(o, "next_offset"), 3);
  assert_int_eq(num_field(o, "missed"), 0);
  assert_int_eq(num_field(o, "size"), 7);
  char all[16];
  snprintf(all, sizeof all, "%s", str_field(o, "data"));
  assert_int_eq(strlen(all), 3);
  cJSON_Delete(o);

  o = api(&w, "GET", 200, "/api/v1/nodes/%llu/log?offset=3", id);
  assert_int_eq(num_field(o, "offset"), 3);
  assert_int_eq(num_field(o, "next_offset"), 7);
  strncat(all, str_field(o, "data"), sizeof all - strlen(all) - 1);
  cJSON_Delete(o);
  /* stdout and stderr are two pipes: either line may arrive first. */
  assert_true(strcmp(all, "hi\nerr\n") == 0 || strcmp(all, "err\nhi\n") == 0);

  /* At the end: nothing, and an offset past the end is answered from the end. */
  o = api(&w, "GET", 200, "/api/v1/nodes/%llu/log?offset=7", id);
  assert_string_equal(str_field(o, "data"), "");
  assert_int_eq(num_field(o, "next_offset"), 7);
  cJSON_Delete(o);
  o = api(&w, "GET", 200, "/api/v1/nodes/%llu/log?offset=1000", id);
  assert_int_eq(num_field(o, "offset"), 7);
  assert_int_eq(num_field(o, "next_offset"), 7);
  cJSON_Delete(o);

  char path[128];
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/log", (unsigned long long)arbor_node_id(t.web));
  api_error(&w, "GET", 400, "not_a_process", "not a process", path);
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/log?limit=262145", id);
  api_error(&w, "GET", 400, "bad_request", "limit", path);
  api_error(&w, "GET", 404, "not_found", "no node 999999", "/api/v1/nodes/999999/log");

  /* A 16-byte ring under 40 bytes of output (and bytes that are not UTF-8). */
  static char *noisy[] = {"/bin/sh", "-c", "printf 'abcdefghijklmnopqrstuvwxyz0123456789\\377\\n'; sleep 100", NULL};
  arbor_node_t *n = service(arbor_root(w.rt), &(arbor_service_spec_t){.name = "noisy", .argv = noisy,
                                                                       .log_size = 16});
  char buf[64];
  uint64_t off;
  run_ticking_until(&w.loop, (off = 0, arbor_service_log_read(n, &off, buf, sizeof buf, NULL) > 0 &&
                                           off == 38));
  o = api(&w, "GET", 200, "/api/v1/nodes/%llu/log", (unsigned long long)arbor_node_id(n));
  assert_int_eq(num_field(o, "size"), 38);
  assert_int_eq(num_field(o, "offset"), 38 - 16);
  assert_int_eq(num_field(o, "missed"), 38 - 16);
  assert_string_equal(str_field(o, "data"), "wxyz0123456789\xef\xbf\xbd\n");
  cJSON_Delete(o);
  tree_release(&t);
  world_close(&w);
}

/* service.memory_limit: the limit and the run's readings for a process service
 * with max_memory, null for one without. */
static void api_node_memory_limit(void **state) {
  (void)state;
  struct world w;
  world_open(&w, NULL, NULL);
  static char *sleeper[] = {"/bin/sleep", "100", NULL};
  arbor_node_t *lim = service(arbor_root(w.rt),
                              &(arbor_service_spec_t){.name = "limited", .argv = sleeper,
                                                      .max_memory = 256u << 20,
                                                      .max_memory_for_ms = 500});
  arbor_node_t *plain = service(arbor_root(w.rt),
                                &(arbor_service_spec_t){.name = "plain", .argv = sleeper});
  arbor_memory_limit_info_t m;
  run_ticking_until(&w.loop, arbor_service_memory_limit(lim, &m) == 0 && m.readings >= 1);
  cJSON *o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(lim));
  const cJSON *ml = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(o, "service"), "memory_limit");
  assert_true(cJSON_IsObject(ml));
  assert_int_eq(num_field(ml, "max_memory"), 256u << 20);
  assert_int_eq(num_field(ml, "max_memory_for_ms"), 500);
  assert_true(num_field(ml, "check_ms") >= ARBOR_MEMORY_CHECK_MS);
  assert_true(num_field(ml, "readings") >= 1);
  assert_true(num_field(ml, "rss_bytes") > 0);
  assert_true(num_field(ml, "processes") >= 1);
  assert_int_eq(num_field(ml, "over_ms"), 0);
  assert_int_eq(num_field(ml, "exceeded"), 0);
  cJSON_Delete(o);
  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)arbor_node_id(plain));
  assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(o, "service"), "memory_limit")));
  cJSON_Delete(o);
  world_close(&w);
}

/* One SSE event of a stream text: its id (0 for none), type and data. */
struct sse_event {
  uint64_t id;
  char type[32];
  char data[8192];
};

/* Splits text into events (comments skipped). Returns how many. */
static int sse_parse(const char *text, struct sse_event *out, int max) {
  int n = 0;
  const char *at = text;
  while (*at != '\0' && n < max) {
    const char *end = strstr(at, "\n\n");
    if (end == NULL)
      break;
    struct sse_event *e = &out[n];
    memset(e, 0, sizeof *e);
    int any = 0;
    for (const char *line = at; line < end;) {
      const char *nl = memchr(line, '\n', (size_t)(end - line));
      if (nl == NULL)
        nl = end;
      int len = (int)(nl - line);
      if (strncmp(line, "id: ", 4) == 0)
        e->id = strtoull(line + 4, NULL, 10), any = 1;
      else if (strncmp(line, "event: ", 7) == 0)
        snprintf(e->type, sizeof e->type, "%.*s", len - 7, line + 7), any = 1;
      else if (strncmp(line, "data: ", 6) == 0)
        snprintf(e->data, sizeof e->data, "%.*s", len - 6, line + 6), any = 1;
      line = nl + 1;
    }
    if (any)
      n++;
    at = end + 2;
  }
  return n;
}

/* Reads n events of /api/v1/events with an optional header; checks and dumps each. */
static int sse_read(struct world *w, const char *path, const char *header, int n,
                    struct sse_event *out) {
  struct call *c = call_begin(w, "GET", path, header, (size_t)n);
  call_finish(w, c);
  assert_int_eq(c->status, 200);
  assert_non_null(strstr(c->ctype, "text/event-stream"));
  int got = sse_parse(c->body, out, n);
  assert_int_eq(got, n);
  for (int i = 0; i < got; i++) {
    cJSON *d = cJSON_Parse(out[i].data);
    if (d == NULL)
      fail_msg("event data is not JSON: %s", out[i].data);
    if (strcmp(out[i].type, "gap") == 0) {
      dump_json("Gap", path, c, out[i].data);
    } else {
      assert_uint_eq(num_field(d, "seq"), out[i].id);
      assert_string_equal(str_field(d, "type"), out[i].type);
      assert_rfc3339(str_field(d, "time"));
      dump_json("Event", path, c, out[i].data);
    }
    cJSON_Delete(d);
  }
  call_free(c);
  return got;
}

/* A timer callback: a task that ends at once, so events are recorded. */
static int done_at_start(arbor_node_t *task, void *arg) {
  (void)arg;
  return arbor_task_done(task);
}
static void make_event(uv_timer_t *timer) {
  spawn_fn(timer->data, "blip", done_at_start, NULL);
}

/* SSE: read some events from the start, reconnect with Last-Event-ID and get
 * exactly the following ones; ?after= does the same; a bad id is 400. */
static void api_events_resume_with_last_event_id(void **state) {
  struct world w;
  struct tree t;
  world_open(&w, NULL, NULL);
  tree_build(&w, &t);
  struct sse_event ev[8], again[4];

  assert_int_eq(sse_read(&w, "/api/v1/events?after=0", NULL, 6, ev), 6);
  for (int i = 0; i < 6; i++)
    assert_uint_eq(ev[i].id, (uint64_t)i + 1);
  assert_string_equal(ev[0].type, "created");

  assert_int_eq(sse_read(&w, "/api/v1/events", "Last-Event-ID: 3", 3, again), 3);
  for (int i = 0; i < 3; i++) {
    assert_uint_eq(again[i].id, ev[3 + i].id);
    assert_string_equal(again[i].data, ev[3 + i].data);
  }
  assert_int_eq(sse_read(&w, "/api/v1/events?after=4", NULL, 2, again), 2);
  assert_uint_eq(again[0].id, 5);
  assert_uint_eq(again[1].id, 6);

  /* Without either: the next events recorded, not the history. A timer makes
   * events until the client has one (when its request reaches the server is
   * up to the threads). */
  arbor_events_stats_t st;
  arbor_events_stats(w.rt, &st);
  struct call *c = call_begin(&w, "GET", "/api/v1/events", NULL, 1);
  uv_timer_t maker;
  maker.data = t.batch;
  assert_int_eq(uv_timer_init(&w.loop, &maker), 0);
  assert_int_eq(uv_timer_start(&maker, make_event, 1, 1), 0);
  call_finish(&w, c);
  uv_close((uv_handle_t *)&maker, NULL);
  int n = sse_parse(c->body, ev, 1);
  assert_int_eq(n, 1);
  assert_true(ev[0].id > st.recorded);
  call_free(c);

  api_error(&w, "GET", 400, "bad_request", "after", "/api/v1/events?after=x");
  tree_release(&t);
  world_close(&w);
}

/* A 16-event ring: a client resuming from the start first gets the gap event,
 * then the oldest kept event. */
static void api_events_gap_when_ring_overwrote(void **state) {
  struct world w;
  world_open(&w, &(arbor_runtime_opts_t){.event_capacity = 16}, NULL);
  arbor_node_t *g = arbor_test_group(arbor_root(w.rt), "many");
  for (int i = 0; i < 20; i++)
    fiber(g, "f", sleeper);
  arbor_test_spin(&w.loop, 10);
  arbor_events_stats_t st;
  arbor_events_stats(w.rt, &st);
  assert_true(st.first_seq > 1);

  struct sse_event ev[3];
  assert_int_eq(sse_read(&w, "/api/v1/events", "Last-Event-ID: 0", 3, ev), 3);
  assert_string_equal(ev[0].type, "gap");
  assert_uint_eq(ev[0].id, 0);
  cJSON *d = cJSON_Parse(ev[0].data);
  assert_true(num_field(d, "missed") >= (double)(st.first_seq - 1));
  uint64_t next = (uint64_t)num_field(d, "next_seq");
  cJSON_Delete(d);
  assert_uint_eq(ev[1].id, next);
  assert_uint_eq(ev[2].id, next + 1);
  assert_code(arbor_node_cancel(g), 0);
  world_close(&w);
}

/* Each event names its node, looked up when the event is sent: the name of a
 * node still known (alive or retained), null for one evicted since. */
static void api_events_name_null_after_eviction(void **state) {
  struct world w;
  world_open(&w, &(arbor_runtime_opts_t){.retain_finished = 1}, NULL);
  arbor_node_t *g = arbor_test_group(arbor_root(w.rt), "batch");
  arbor_node_t *first = spawn_fn(g, "first", done_at_start, NULL);
  uint64_t first_id = arbor_node_id(first), g_id = arbor_node_id(g);
  arbor_node_ref(first);
  arbor_test_run_until(&w.loop, arbor_node_is_finished(first));
  arbor_node_unref(first);
  arbor_node_t *second = spawn_fn(g, "second", done_at_start, NULL);
  uint64_t second_id = arbor_node_id(second);
  arbor_node_ref(second);
  arbor_test_run_until(&w.loop, arbor_node_is_finished(second));
  assert_null(arbor_node_find(w.rt, first_id));   /* retention keeps one: second */
  assert_non_null(arbor_node_find(w.rt, second_id));

  arbor_events_stats_t st;
  arbor_events_stats(w.rt, &st);
  assert_true(st.recorded <= 32);
  int n = (int)st.recorded;
  struct sse_event *ev = calloc(32, sizeof *ev);
  assert_non_null(ev);
  assert_int_eq(sse_read(&w, "/api/v1/events?after=0", NULL, n, ev), n);
  int seen_first = 0, seen_second = 0, seen_group = 0;
  for (int i = 0; i < n; i++) {
    cJSON *d = cJSON_Parse(ev[i].data);
    uint64_t id = (uint64_t)num_field(d, "node_id");
    cJSON *name = field(d, "name");
    if (id == first_id) {
      assert_true(cJSON_IsNull(name));
      seen_first++;
    } else if (id == second_id) {
      assert_string_equal(str_field(d, "name"), "second");
      seen_second++;
    } else if (id == g_id) {
      assert_string_equal(str_field(d, "name"), "batch");
      seen_group++;
    } else {
      assert_true(cJSON_IsString(name));
    }
    cJSON_Delete(d);
  }
  assert_true(seen_first > 0 && seen_second > 0 && seen_group > 0);
  free(ev);
  arbor_node_unref(second);
  world_close(&w);
}

/* An idle stream gets heartbeat comments. */
static void api_events_heartbeat_when_idle(void **state) {
  struct world w;
  world_open(&w, NULL, &(arbor_admin_opts_t){.sse_heartbeat_ms = 20});
  struct call *c = call_begin(&w, "GET", "/api/v1/events", NULL, 2);
  call_finish(&w, c);
  assert_int_eq(c->status, 200);
  assert_string_equal(c->body, ": heartbeat\n\n: heartbeat\n\n");
  call_free(c);
  world_close(&w);
}

/* ------------------------------------------------------ live services */

/* What a daemon would do with a spec, faked: "good" adds a fiber service named
 * "added" under the root, anything else is a bad spec; "web" is the one service
 * that can be updated or removed. */
struct fake_services {
  arbor_runtime_t *rt;
  arbor_node_t *web;
  int adds, updates, removes;
};

static int fake_add(void *arg, const char *spec, size_t len, uint64_t *id, char *msg,
                    size_t msglen) {
  struct fake_services *f = arg;
  assert_uint_eq(len, strlen(spec));
  if (strcmp(spec, "dup") == 0) {
    snprintf(msg, msglen, "a service named \"web\" exists");
    return ARBOR_EEXIST;
  }
  if (strcmp(spec, "good") != 0) {
    snprintf(msg, msglen, "body: argv: expected a non-empty array of strings");
    return ARBOR_EINVAL;
  }
  arbor_node_t *n = service(arbor_root(f->rt),
                            &(arbor_service_spec_t){.name = "added", .fiber = sleeper});
  f->adds++;
  *id = arbor_node_id(n);
  return 0;
}

static int fake_update(void *arg, const char *name, const char *spec, size_t len, uint64_t *id,
                       int *restarted, char *msg, size_t msglen) {
  struct fake_services *f = arg;
  (void)len;
  if (strcmp(name, "web") != 0) {
    snprintf(msg, msglen, "no service named \"%s\"", name);
    return ARBOR_ENOENT;
  }
  if (strcmp(spec, "same") == 0) {
    *restarted = 0;
  } else {
    assert_code(arbor_service_restart(f->web), 0);
    f->updates++;
  }
  *id = arbor_node_id(f->web);
  return 0;
}

static int fake_remove(void *arg, const char *name, uint64_t *id, char *msg, size_t msglen) {
  struct fake_services *f = arg;
  if (strcmp(name, "sup") == 0) {
    snprintf(msg, msglen, "\"sup\" is a supervisor");
    return ARBOR_EKIND;
  }
  if (strcmp(name, "web") != 0) {
    msg[0] = '\0';              /* the server says something still */
    return ARBOR_ENOENT;
  }
  assert_code(arbor_node_cancel(f->web), 0);
  f->removes++;
  *id = arbor_node_id(f->web);
  return 0;
}

/* POST /api/v1/services, PUT and DELETE /api/v1/services/{name}: the callbacks'
 * codes become statuses (201 with Location, 202, 200 unchanged, 400, 404, 409),
 * the token guards all three, a server without callbacks answers 501. */
static void api_services_through_the_callbacks(void **state) {
  (void)state;
  struct world w;
  struct tree t;
  struct fake_services f = {0};
  arbor_admin_services_t cbs = {.add = fake_add, .update = fake_update, .remove = fake_remove,
                                .arg = &f};
  world_open(&w, NULL, &(arbor_admin_opts_t){.services = &cbs});
  tree_build(&w, &t);
  f.rt = w.rt;
  f.web = t.web;

  req_body = "good";
  struct call *c = call_start(&w, "POST", "/api/v1/services", NULL);
  call_finish(&w, c);
  assert_int_eq(c->status, 201);
  cJSON *o = cJSON_Parse(c->body);
  dump_json(NULL, NULL, c, c->body);
  call_free(c);
  assert_string_equal(str_field(o, "name"), "added");
  uint64_t added = (uint64_t)num_field(o, "id");
  cJSON_Delete(o);
  assert_int_eq(f.adds, 1);
  /* Location names the new node: ask it. */
  o = api(&w, "GET", 200, "/api/v1/nodes/%llu", (unsigned long long)added);
  assert_string_equal(str_field(o, "name"), "added");
  cJSON_Delete(o);

  req_body = "{\"service\": 1}";
  api_error(&w, "POST", 400, "bad_spec", "body: argv: expected", "/api/v1/services");
  req_body = "dup";
  api_error(&w, "POST", 409, "exists", "\"web\" exists", "/api/v1/services");

  req_body = "new";
  o = api(&w, "PUT", 202, "/api/v1/services/web");
  assert_uint_eq(num_field(o, "id"), arbor_node_id(t.web));
  assert_true(bool_field(o, "restarted"));
  cJSON_Delete(o);
  req_body = "same";
  o = api(&w, "PUT", 200, "/api/v1/services/web");
  assert_false(bool_field(o, "restarted"));
  cJSON_Delete(o);
  api_error(&w, "PUT", 404, "not_found", "no service named \"db\"", "/api/v1/services/db");
  assert_int_eq(f.updates, 1);

  req_body = NULL;
  api_error(&w, "DELETE", 400, "not_a_service", "supervisor", "/api/v1/services/sup");
  api_error(&w, "DELETE", 404, "not_found", "no such", "/api/v1/services/db");
  o = api(&w, "DELETE", 202, "/api/v1/services/web");
  assert_uint_eq(num_field(o, "id"), arbor_node_id(t.web));
  assert_true(bool_field(o, "cancel_requested"));
  cJSON_Delete(o);
  assert_int_eq(f.removes, 1);
  api_error(&w, "GET", 405, "method_not_allowed", NULL, "/api/v1/services");
  tree_release(&t);
  world_close(&w);

  /* A token: 401 for each without it, nothing called. */
  world_open(&w, NULL, &(arbor_admin_opts_t){.services = &cbs, .token = "tok"});
  req_body = "good";
  api_error(&w, "POST", 401, "unauthorized", NULL, "/api/v1/services");
  api_error(&w, "PUT", 401, "unauthorized", NULL, "/api/v1/services/web");
  req_body = NULL;
  api_error(&w, "DELETE", 401, "unauthorized", NULL, "/api/v1/services/web");
  assert_int_eq(f.adds + f.updates + f.removes, 3);
  world_close(&w);

  /* No callbacks (a program that never asked for them): 501. */
  world_open(&w, NULL, NULL);
  req_body = "good";
  api_error(&w, "POST", 501, "not_implemented", "without live service changes",
            "/api/v1/services");
  api_error(&w, "PUT", 501, "not_implemented", NULL, "/api/v1/services/web");
  req_body = NULL;
  api_error(&w, "DELETE", 501, "not_implemented", NULL, "/api/v1/services/web");
  world_close(&w);
}

/* Every scenario above once, for tests/http/schema/run.sh (ARBOR_API_DUMP=DIR):
 * their responses are dumped and checked against docs/openapi.yaml. */
static void api_dump_responses(void **state) {
  api_tree_depth_limit_root(state);
  api_node_detail(state);
  api_node_waiting_for_names_the_sibling(state);
  api_node_probes(state);
  api_children_paging(state);
  api_cancel_group_cancels_every_descendant(state);
  api_restart_service_same_id_count_plus_one(state);
  api_log_offset_and_tail(state);
  api_node_memory_limit(state);
  api_events_resume_with_last_event_id(state);
  api_events_gap_when_ring_overwrote(state);
  api_events_name_null_after_eviction(state);
  api_services_through_the_callbacks(state);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(json_node_failed_group_shape),
    cmocka_unit_test(json_times_and_big_integers_exact),
    cmocka_unit_test(json_invalid_utf8_replaced),
    cmocka_unit_test(json_attribute_key_invalid_utf8_replaced),
    cmocka_unit_test(json_error_chain_bounded),
    cmocka_unit_test(api_tree_depth_limit_root),
    cmocka_unit_test(api_node_detail),
    cmocka_unit_test(api_node_waiting_for_names_the_sibling),
    cmocka_unit_test(api_node_probes),
    cmocka_unit_test(api_children_paging),
    cmocka_unit_test(api_cancel_group_cancels_every_descendant),
    cmocka_unit_test(api_restart_service_same_id_count_plus_one),
    cmocka_unit_test(api_log_offset_and_tail),
    cmocka_unit_test(api_node_memory_limit),
    cmocka_unit_test(api_events_resume_with_last_event_id),
    cmocka_unit_test(api_events_gap_when_ring_overwrote),
    cmocka_unit_test(api_events_name_null_after_eviction),
    cmocka_unit_test(api_events_heartbeat_when_idle),
    cmocka_unit_test(api_services_through_the_callbacks),
    cmocka_unit_test(api_dump_responses),
};

ARBOR_TEST_MAIN(tests)
