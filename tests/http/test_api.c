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
  assert_int_eq(http_utf8_complete("ab\xe2\x9c", 4), 2);
  assert_int_eq(http_utf8_complete("ab\xe2\x9c\x93", 5), 5);
  assert_int_eq(http_utf8_complete("ab\xff", 3), 3);
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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(json_node_failed_group_shape),
    cmocka_unit_test(json_times_and_big_integers_exact),
    cmocka_unit_test(json_invalid_utf8_replaced),
    cmocka_unit_test(json_error_chain_bounded),
};

ARBOR_TEST_MAIN(tests)
