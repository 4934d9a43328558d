/* test_export.c - the trace exporters (tracing/: Chrome trace JSON, OTLP/JSON),
 * GET /api/v1/trace, and the counters behind GET /metrics (arbor_runtime_stats).
 *
 * One rich tree is built for the exporter tests: concurrent siblings in a group,
 * a service restarted twice by its supervisor, a failure with a cause chain, a
 * cancelled fiber, a node with an odd name and attributes, and fibers still
 * running. The exports are parsed back with cJSON and checked against the tree.
 * With ARBOR_TRACE_DUMP=DIR set, the rich tree's exports are also written to
 * DIR/trace.chrome.json and DIR/trace.otlp.json, for the third-party validators
 * (scripts/validate.sh).
 */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../tracing/trace.h"
#include "http/httpc.h"

#define HOUR (3600u * 1000u)
#define ODD_NAME "q\"b\\s\nn\x01 \xe2\x9c\x93 end"   /* quote, backslash, newline, ^A, U+2713 */

/* ----------------------------------------------------------- the tree */

static int sleeper(arbor_ctx_t *cx, void *arg) {
  uint64_t ms = (uint64_t)(uintptr_t)arg;
  return arbor_sleep(cx, ms) < 0 ? ARBOR_ECANCELED : 0;
}

static int chain_fail(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_yield(cx);
  arbor_error_t *low = arbor_error_new(-ECONNREFUSED, "connect to 127.0.0.1:9 refused");
  return arbor_fiber_fail_error(cx, arbor_error_wrap(low, -EIO, "loading the config failed"));
}

static int flaky_runs;
static int flaky(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  if (++flaky_runs <= 2) {
    arbor_yield(cx);
    return arbor_fiber_fail(cx, -EPIPE, "flaky run %d broke", flaky_runs);
  }
  return arbor_sleep(cx, HOUR) < 0 ? ARBOR_ECANCELED : 0;
}

struct tree {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *work, *w[4], *fails, *sup, *svc, *victim, *odd, *running;
};

static arbor_node_t *fiber(arbor_node_t *parent, const char *name, arbor_fiber_fn fn, void *arg) {
  arbor_node_t *n = NULL;
  assert_code(arbor_fiber_spawn(parent, &(arbor_fiber_spec_t){.name = name, .fn = fn, .arg = arg},
                                &n),
              0);
  return n;
}

static int tree_ready(struct tree *t) {
  return arbor_node_is_finished(t->work) && arbor_node_is_finished(t->fails) &&
         arbor_node_is_finished(t->victim) && arbor_node_is_finished(t->odd) &&
         arbor_service_is_running(t->svc) && flaky_runs == 3 &&
         arbor_node_state(t->svc) == ARBOR_STATE_STARTED;
}

static void tree_build(struct tree *t) {
  memset(t, 0, sizeof *t);
  flaky_runs = 0;
  arbor_test_open(&t->loop, &t->rt, NULL);
  arbor_node_t *root = arbor_root(t->rt);
  assert_code(arbor_group_new(root, &(arbor_group_opts_t){.name = "work"}, &t->work), 0);
  for (int i = 0; i < 4; i++) {
    char name[16];
    snprintf(name, sizeof name, "w%d", i);
    t->w[i] = fiber(t->work, name, sleeper, (void *)(uintptr_t)(5 + 5 * i));
  }
  assert_code(arbor_group_join(t->work, NULL, NULL), 0);
  t->fails = fiber(root, "fails", chain_fail, NULL);
  assert_code(arbor_supervisor_new(root,
                                   &(arbor_sup_opts_t){.name = "sup",
                                                       .intensity = 10,
                                                       .period_ms = 60000,
                                                       .no_backoff = 1},
                                   &t->sup),
              0);
  assert_code(arbor_service_add(t->sup, &(arbor_service_spec_t){.name = "flaky", .fiber = flaky},
                                &t->svc),
              0);
  t->victim = fiber(root, "victim", sleeper, (void *)(uintptr_t)HOUR);
  t->odd = fiber(root, ODD_NAME, sleeper, (void *)(uintptr_t)1);
  assert_code(arbor_node_attr_set(t->odd, "http.route", "/a\"b"), 0);
  t->running = fiber(root, "running", sleeper, (void *)(uintptr_t)HOUR);
  arbor_test_run_ticking_until(&t->loop, arbor_node_state(t->victim) == ARBOR_STATE_STARTED);
  assert_code(arbor_node_cancel(t->victim), 0);
  arbor_test_run_ticking_until(&t->loop, tree_ready(t));
}

static void tree_close(struct tree *t) { arbor_test_close(t->rt, &t->loop); }


static void dump(const char *file, const char *text) {
  const char *dir = getenv("ARBOR_TRACE_DUMP");
  if (dir == NULL || dir[0] == '\0')
    return;
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static cJSON *parse(const char *text) {
  cJSON *doc = cJSON_Parse(text);
  if (doc == NULL)
    fail_msg("export is not JSON near: %.80s", cJSON_GetErrorPtr());
  return doc;
}

/* Every node of the tree, in pre-order. */
struct nodes {
  arbor_node_t *n[64];
  size_t len;
};
static int collect(arbor_node_t *node, int depth, void *arg) {
  (void)depth;
  struct nodes *ns = arg;
  assert_true(ns->len < 64);
  ns->n[ns->len++] = node;
  return 0;
}

/* ------------------------------------------------------------- Chrome */

struct slice {
  long long ts, end;             /* ns, as Perfetto reads them: exact integers */
  double fend;                   /* ts + dur in microseconds, as the DevTools engine adds them */
  long tid;
  uint64_t id, parent_id;
};

static int slice_cmp(const void *a, const void *b) {
  const struct slice *x = a, *y = b;
  if (x->tid != y->tid)
    return x->tid < y->tid ? -1 : 1;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return x->end > y->end ? -1 : x->end < y->end;   /* the longer (outer) one first */
}

static cJSON *args_of(cJSON *ev) { return cJSON_GetObjectItemCaseSensitive(ev, "args"); }
static const char *str_of(cJSON *obj, const char *key) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
static double num_of(cJSON *obj, const char *key) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  assert_true(cJSON_IsNumber(v));
  return v->valuedouble;
}

/* Perfetto's rule: on one track, slices nest or are disjoint, never overlap. */
static void chrome_slices_nest_and_concurrent_siblings_never_overlap_on_a_track(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  char *text = arbor_test_trace_text(t.rt, ARBOR_TRACE_CHROME, NULL);
  dump("trace.chrome.json", text);
  cJSON *doc = parse(text);
  cJSON *events = cJSON_GetObjectItemCaseSensitive(doc, "traceEvents");
  assert_true(cJSON_IsArray(events));

  struct nodes ns = {0};
  assert_int_eq(arbor_tree_walk(arbor_root(t.rt), -1, collect, &ns), 0);
  struct slice sl[64];
  size_t nsl = 0;
  int named[256] = {0};
  int process_named = 0;
  cJSON *ev;
  cJSON_ArrayForEach(ev, events) {
    const char *ph = str_of(ev, "ph");
    assert_non_null(ph);
    long tid = (long)num_of(ev, "tid");
    assert_true(tid >= 0 && tid < 256);
    if (strcmp(ph, "M") == 0) {
      const char *what = str_of(ev, "name");
      if (strcmp(what, "thread_name") == 0)
        named[tid] = 1;
      if (strcmp(what, "process_name") == 0)
        process_named = 1;
      continue;
    }
    if (strcmp(ph, "X") != 0)
      continue;
    assert_true(nsl < 64);
    struct slice *s = &sl[nsl++];
    s->ts = llround(num_of(ev, "ts") * 1000);
    s->end = s->ts + llround(num_of(ev, "dur") * 1000);
    s->fend = num_of(ev, "ts") + num_of(ev, "dur");
    s->tid = tid;
    s->id = (uint64_t)num_of(args_of(ev), "id");
    s->parent_id = (uint64_t)num_of(args_of(ev), "parent_id");
  }
  assert_true(process_named);
  /* one slice per node of the tree */
  assert_uint_eq(nsl, ns.len);
  for (size_t i = 0; i < ns.len; i++) {
    int found = 0;
    for (size_t j = 0; j < nsl; j++)
      found += sl[j].id == arbor_node_id(ns.n[i]);
    assert_int_eq(found, 1);
  }
  /* each slice inside its parent's, each track named */
  for (size_t i = 0; i < nsl; i++) {
    assert_true(named[sl[i].tid]);
    for (size_t j = 0; j < nsl; j++)
      if (sl[j].id == sl[i].parent_id) {
        assert_true(sl[i].ts >= sl[j].ts);
        assert_true(sl[i].end <= sl[j].end);
        if (sl[i].tid == sl[j].tid && sl[i].fend > sl[j].fend)
          fail_msg("slice %llu ends after its parent %llu in floating point (%.17g > %.17g)",
                   (unsigned long long)sl[i].id, (unsigned long long)sl[j].id, sl[i].fend,
                   sl[j].fend);
      }
  }
  /* nesting per track: a stack of open slices */
  qsort(sl, nsl, sizeof *sl, slice_cmp);
  for (size_t i = 0; i < nsl; i++) {
    for (size_t j = 0; j < i; j++) {
      if (sl[j].tid != sl[i].tid || sl[j].end <= sl[i].ts)
        continue;                /* another track, or ended before i began */
      if (sl[i].end > sl[j].end)
        fail_msg("slices %llu and %llu overlap on tid %ld without nesting",
                 (unsigned long long)sl[j].id, (unsigned long long)sl[i].id, sl[i].tid);
    }
  }
  /* times: microseconds since the root was created, exact to the nanosecond */
  arbor_node_info_t root, w1;
  arbor_node_info(arbor_root(t.rt), &root);
  arbor_node_info(t.w[1], &w1);
  for (size_t j = 0; j < nsl; j++)
    if (sl[j].id == w1.id) {
      assert_uint_eq((uint64_t)sl[j].ts, w1.created_ns - root.created_ns);
      assert_uint_eq((uint64_t)(sl[j].end - sl[j].ts), w1.finished_ns - w1.created_ns);
    }
  /* the four concurrent workers are on four different tracks */
  long tids[4];
  for (int k = 0; k < 4; k++)
    for (size_t j = 0; j < nsl; j++)
      if (sl[j].id == arbor_node_id(t.w[k]))
        tids[k] = sl[j].tid;
  for (int a = 0; a < 4; a++)
    for (int b = a + 1; b < 4; b++)
      assert_true(tids[a] != tids[b]);
  cJSON_Delete(doc);
  free(text);
  tree_close(&t);
}

static cJSON *find_event(cJSON *events, const char *ph, uint64_t node, const char *name_prefix) {
  cJSON *ev;
  cJSON_ArrayForEach(ev, events) {
    const char *p = str_of(ev, "ph"), *name = str_of(ev, "name");
    cJSON *args = args_of(ev);
    if (p == NULL || strcmp(p, ph) != 0 || name == NULL || args == NULL)
      continue;
    cJSON *id = cJSON_GetObjectItemCaseSensitive(args, strcmp(ph, "X") == 0 ? "id" : "node");
    if (cJSON_IsNumber(id) && (uint64_t)id->valuedouble == node &&
        strncmp(name, name_prefix, strlen(name_prefix)) == 0)
      return ev;
  }
  return NULL;
}

static int count_events(cJSON *events, const char *ph, uint64_t node, const char *name) {
  int n = 0;
  cJSON *ev;
  cJSON_ArrayForEach(ev, events) {
    const char *p = str_of(ev, "ph"), *nm = str_of(ev, "name");
    cJSON *args = args_of(ev);
    cJSON *id = args != NULL ? cJSON_GetObjectItemCaseSensitive(args, "node") : NULL;
    n += p != NULL && strcmp(p, ph) == 0 && nm != NULL && strcmp(nm, name) == 0 &&
         cJSON_IsNumber(id) && (uint64_t)id->valuedouble == node;
  }
  return n;
}

static void chrome_failures_restarts_and_cancels_are_instant_events_with_the_chain(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  char *text = arbor_test_trace_text(t.rt, ARBOR_TRACE_CHROME, NULL);
  cJSON *doc = parse(text);
  cJSON *events = cJSON_GetObjectItemCaseSensitive(doc, "traceEvents");

  /* the failure: args carry the chain, outermost first */
  cJSON *x = find_event(events, "X", arbor_node_id(t.fails), "fails");
  assert_non_null(x);
  cJSON *args = args_of(x);
  assert_string_equal(str_of(args, "outcome"), "FAILED");
  cJSON *err = cJSON_GetObjectItemCaseSensitive(args, "error");
  assert_string_equal(str_of(err, "message"), "loading the config failed");
  assert_string_equal(str_of(err, "name"), "EIO");
  cJSON *cause = cJSON_GetObjectItemCaseSensitive(err, "cause");
  assert_string_equal(str_of(cause, "message"), "connect to 127.0.0.1:9 refused");
  assert_string_equal(str_of(cause, "name"), "ECONNREFUSED");
  assert_non_null(find_event(events, "i", arbor_node_id(t.fails), "failed: EIO"));

  /* restarts of the service, one instant each; the cancel of the victim */
  assert_int_eq(count_events(events, "i", arbor_node_id(t.svc), "restart"), 2);
  x = find_event(events, "X", arbor_node_id(t.svc), "flaky");
  assert_int_eq((int)num_of(args_of(x), "restarts"), 2);
  assert_int_eq(count_events(events, "i", arbor_node_id(t.victim), "cancel"), 1);
  x = find_event(events, "X", arbor_node_id(t.victim), "victim");
  assert_string_equal(str_of(args_of(x), "outcome"), "CANCELLED");
  /* state changes: a worker STARTED, STOPPED */
  assert_int_eq(count_events(events, "i", arbor_node_id(t.w[0]), "STARTED"), 1);
  assert_int_eq(count_events(events, "i", arbor_node_id(t.w[0]), "STOPPED"), 1);
  /* still running: its slice says so */
  x = find_event(events, "X", arbor_node_id(t.running), "running");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(args_of(x), "unfinished")));
  cJSON_Delete(doc);
  free(text);
  tree_close(&t);
}

/* --------------------------------------------------------------- OTLP */

static cJSON *spans_of(cJSON *doc) {
  cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "resourceSpans"), 0);
  cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rs, "scopeSpans"), 0);
  cJSON *spans = cJSON_GetObjectItemCaseSensitive(ss, "spans");
  assert_true(cJSON_IsArray(spans));
  return spans;
}

static cJSON *span_of(cJSON *spans, uint64_t id) {
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)id);
  cJSON *s;
  cJSON_ArrayForEach(s, spans) {
    const char *sid = str_of(s, "spanId");
    if (sid != NULL && strcmp(sid, hex) == 0)
      return s;
  }
  return NULL;
}

static const char *attr_of(cJSON *attrs, const char *key, const char *type) {
  cJSON *a;
  cJSON_ArrayForEach(a, attrs) {
    if (strcmp(str_of(a, "key"), key) != 0)
      continue;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "value"), type);
    if (cJSON_IsString(v))
      return v->valuestring;
    if (cJSON_IsBool(v))
      return cJSON_IsTrue(v) ? "true" : "false";
    return NULL;
  }
  return NULL;
}

static int is_hex(const char *s, size_t len) {
  if (s == NULL || strlen(s) != len)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

static int is_decimal(const char *s) {
  if (s == NULL || *s == '\0')
    return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

static void otlp_one_span_per_node_whose_parent_is_the_parent_node(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  char *text = arbor_test_trace_text(t.rt, ARBOR_TRACE_OTLP, NULL);
  dump("trace.otlp.json", text);
  cJSON *doc = parse(text);
  cJSON *spans = spans_of(doc);
  struct nodes ns = {0};
  arbor_tree_walk(arbor_root(t.rt), -1, collect, &ns);
  assert_int_eq(cJSON_GetArraySize(spans), (int)ns.len);
  const char *trace_id = NULL;
  for (size_t i = 0; i < ns.len; i++) {
    cJSON *s = span_of(spans, arbor_node_id(ns.n[i]));
    assert_non_null(s);
    assert_true(is_hex(str_of(s, "traceId"), 32));
    if (trace_id == NULL)
      trace_id = str_of(s, "traceId");
    assert_string_equal(str_of(s, "traceId"), trace_id);   /* one trace */
    arbor_node_t *p = arbor_node_parent(ns.n[i]);
    if (p == NULL) {
      assert_null(cJSON_GetObjectItemCaseSensitive(s, "parentSpanId"));
    } else {
      char hex[17];
      snprintf(hex, sizeof hex, "%016llx", (unsigned long long)arbor_node_id(p));
      assert_string_equal(str_of(s, "parentSpanId"), hex);
    }
    assert_int_eq((int)num_of(s, "kind"), 1);
    /* times: decimal strings, start <= end */
    const char *a = str_of(s, "startTimeUnixNano"), *b = str_of(s, "endTimeUnixNano");
    assert_true(is_decimal(a) && is_decimal(b));
    assert_true(strtoull(a, NULL, 10) <= strtoull(b, NULL, 10));
  }
  /* times: the node's own, on the wall clock, to the nanosecond */
  arbor_node_info_t info;
  arbor_node_info(t.w[1], &info);
  cJSON *w1 = span_of(spans, info.id);
  assert_uint_eq(strtoull(str_of(w1, "startTimeUnixNano"), NULL, 10), (uint64_t)info.created_wall_ns);
  assert_uint_eq(strtoull(str_of(w1, "endTimeUnixNano"), NULL, 10),
                 (uint64_t)info.created_wall_ns + (info.finished_ns - info.created_ns));
  /* the resource names who sent it */
  cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "resourceSpans"), 0);
  cJSON *rattrs = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(rs, "resource"), "attributes");
  assert_non_null(attr_of(rattrs, "service.name", "stringValue"));
  assert_true(is_decimal(attr_of(rattrs, "process.pid", "intValue")));
  assert_non_null(attr_of(rattrs, "service.instance.id", "stringValue"));
  cJSON_Delete(doc);
  free(text);
  tree_close(&t);
}

static void otlp_status_from_outcome_and_failure_as_exception_event(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  char *text = arbor_test_trace_text(t.rt, ARBOR_TRACE_OTLP, NULL);
  cJSON *doc = parse(text);
  cJSON *spans = spans_of(doc);

  cJSON *ok = span_of(spans, arbor_node_id(t.w[1]));
  assert_int_eq((int)num_of(cJSON_GetObjectItemCaseSensitive(ok, "status"), "code"), 1);
  cJSON *cancelled = span_of(spans, arbor_node_id(t.victim));
  cJSON *st = cJSON_GetObjectItemCaseSensitive(cancelled, "status");
  assert_null(cJSON_GetObjectItemCaseSensitive(st, "code"));   /* UNSET */
  assert_string_equal(attr_of(cJSON_GetObjectItemCaseSensitive(cancelled, "attributes"),
                              "arbor.outcome", "stringValue"),
                      "CANCELLED");
  cJSON *running = span_of(spans, arbor_node_id(t.running));
  assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(running, "status"),
                                               "code"));
  assert_string_equal(attr_of(cJSON_GetObjectItemCaseSensitive(running, "attributes"),
                              "arbor.unfinished", "boolValue"),
                      "true");

  cJSON *failed = span_of(spans, arbor_node_id(t.fails));
  st = cJSON_GetObjectItemCaseSensitive(failed, "status");
  assert_int_eq((int)num_of(st, "code"), 2);
  assert_string_equal(str_of(st, "message"), "loading the config failed");
  cJSON *ev, *exc = NULL;
  int states = 0;
  cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(failed, "events")) {
    if (strcmp(str_of(ev, "name"), "exception") == 0)
      exc = ev;
    if (strcmp(str_of(ev, "name"), "STARTED") == 0 || strcmp(str_of(ev, "name"), "FINISHED") == 0)
      states++;
    assert_true(is_decimal(str_of(ev, "timeUnixNano")));
  }
  assert_int_eq(states, 2);
  assert_non_null(exc);
  cJSON *ea = cJSON_GetObjectItemCaseSensitive(exc, "attributes");
  assert_string_equal(attr_of(ea, "exception.type", "stringValue"), "EIO");
  assert_string_equal(attr_of(ea, "exception.message", "stringValue"),
                      "loading the config failed");
  const char *stack = attr_of(ea, "exception.stacktrace", "stringValue");
  assert_non_null(stack);
  assert_non_null(strstr(stack, "caused by"));
  assert_non_null(strstr(stack, "connect to 127.0.0.1:9 refused"));
  assert_non_null(strstr(attr_of(ea, "code.filepath", "stringValue"), "test_export.c"));

  /* the service's span counts its restarts; each run is a child span */
  cJSON *svc = span_of(spans, arbor_node_id(t.svc));
  assert_string_equal(attr_of(cJSON_GetObjectItemCaseSensitive(svc, "attributes"),
                              "arbor.restarts", "intValue"),
                      "2");
  cJSON_Delete(doc);
  free(text);
  tree_close(&t);
}

/* Names and attribute values with quotes, backslashes, control characters and
 * UTF-8 come back as they were, in both formats; invalid UTF-8 becomes U+FFFD. */
static void exports_escape_odd_names(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  arbor_node_t *bad = fiber(arbor_root(t.rt), "bad\xff" "byte", sleeper, (void *)(uintptr_t)HOUR);
  arbor_test_spin(&t.loop, 2);
  for (int f = ARBOR_TRACE_CHROME; f <= ARBOR_TRACE_OTLP; f++) {
    char *text = arbor_test_trace_text(t.rt, (arbor_trace_format_t)f, NULL);
    cJSON *doc = parse(text);
    if (f == ARBOR_TRACE_CHROME) {
      cJSON *events = cJSON_GetObjectItemCaseSensitive(doc, "traceEvents");
      cJSON *x = find_event(events, "X", arbor_node_id(t.odd), "q");
      assert_non_null(x);
      assert_string_equal(str_of(x, "name"), ODD_NAME);
      cJSON *attrs = cJSON_GetObjectItemCaseSensitive(args_of(x), "attributes");
      assert_string_equal(str_of(attrs, "http.route"), "/a\"b");
      x = find_event(events, "X", arbor_node_id(bad), "bad");
      assert_string_equal(str_of(x, "name"), "bad\xef\xbf\xbd" "byte");
    } else {
      cJSON *spans = spans_of(doc);
      cJSON *s = span_of(spans, arbor_node_id(t.odd));
      assert_string_equal(str_of(s, "name"), ODD_NAME);
      assert_string_equal(attr_of(cJSON_GetObjectItemCaseSensitive(s, "attributes"), "http.route",
                                  "stringValue"),
                          "/a\"b");
      s = span_of(spans, arbor_node_id(bad));
      assert_string_equal(str_of(s, "name"), "bad\xef\xbf\xbd" "byte");
    }
    cJSON_Delete(doc);
    free(text);
  }
  tree_close(&t);
}

/* The streamed export gives the same bytes however small the reads. */
static void export_in_small_pieces_is_the_same_document(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  for (int f = ARBOR_TRACE_CHROME; f <= ARBOR_TRACE_OTLP; f++) {
    struct trace_export a, b;
    assert_code(trace_export_init(&a, arbor_root(t.rt), (arbor_trace_format_t)f, NULL), 0);
    assert_code(trace_export_init(&b, arbor_root(t.rt), (arbor_trace_format_t)f, NULL), 0);
    b.snap.now_ns = a.snap.now_ns;   /* the same end for unfinished nodes */
    if (f == ARBOR_TRACE_CHROME)
      assert_true(chrome_assign_tracks(&b.snap) > 0);
    char *big = malloc(1 << 20), small[7];
    ssize_t nbig = trace_export_read(&a, big, 1 << 20);
    assert_true(nbig > 0 && nbig < (1 << 20));
    assert_int_eq(trace_export_read(&a, big + nbig, 16), 0);   /* complete */
    ssize_t off = 0, n;
    while ((n = trace_export_read(&b, small, sizeof small)) > 0) {
      assert_true(off + n <= nbig);
      assert_memory_equal(small, big + off, (size_t)n);
      off += n;
    }
    assert_int_eq(n, 0);
    assert_int_eq(off, nbig);
    free(big);
    trace_export_free(&a);
    trace_export_free(&b);
  }
  tree_close(&t);
}

static void trace_format_names_and_file_suffixes(void **state) {
  (void)state;
  assert_int_eq(arbor_trace_format_parse("chrome"), ARBOR_TRACE_CHROME);
  assert_int_eq(arbor_trace_format_parse("otlp"), ARBOR_TRACE_OTLP);
  assert_code(arbor_trace_format_parse("perfetto"), ARBOR_EINVAL);
  assert_code(arbor_trace_format_parse(NULL), ARBOR_EINVAL);
  assert_int_eq(arbor_trace_format_for_path("/tmp/x.otlp.json"), ARBOR_TRACE_OTLP);
  assert_int_eq(arbor_trace_format_for_path("x.otlp"), ARBOR_TRACE_OTLP);
  assert_int_eq(arbor_trace_format_for_path("x.json"), ARBOR_TRACE_CHROME);
  assert_int_eq(arbor_trace_format_for_path("trace"), ARBOR_TRACE_CHROME);
  assert_code(arbor_trace_write(NULL, ARBOR_TRACE_CHROME, stdout), ARBOR_EINVAL);
}

/* A write that fails (a full disk) is reported, not ignored. */
static void trace_write_reports_a_failed_write(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  FILE *f = fopen("/dev/full", "w");
  if (f == NULL)
    skip();
  setvbuf(f, NULL, _IONBF, 0);
  assert_code(arbor_trace_write(rt, ARBOR_TRACE_CHROME, f), -ENOSPC);
  fclose(f);
  arbor_test_close(rt, &loop);
}

/* -------------------------------------------------------- the endpoint */

struct get {
  char url[256];
  long status;
  char *body;
};

static void get_trace(uv_loop_t *loop, int port, const char *query, struct get *g) {
  httpc_url(g->url, sizeof g->url, port, query);
  g->body = NULL;
  assert_int_eq(httpc_request(loop, "GET", g->url, NULL, NULL, &g->status, &g->body, NULL), 0);
}

static void trace_endpoint_serves_both_formats_and_names_bad_queries(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  arbor_admin_t *admin;
  assert_code(arbor_admin_start(t.rt, &(arbor_admin_opts_t){0}, &admin), 0);
  int port = arbor_admin_port(admin);
  struct get g;

  get_trace(&t.loop, port, "/api/v1/trace", &g);
  assert_int_eq(g.status, 200);
  cJSON *doc = parse(g.body);
  assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "traceEvents")));
  cJSON_Delete(doc);
  free(g.body);

  char q[64];
  snprintf(q, sizeof q, "/api/v1/trace?format=otlp&root=%llu",
           (unsigned long long)arbor_node_id(t.sup));
  get_trace(&t.loop, port, q, &g);
  assert_int_eq(g.status, 200);
  doc = parse(g.body);
  cJSON *spans = spans_of(doc);
  /* the subtree only: the supervisor, its service and the service's 3 runs */
  assert_int_eq(cJSON_GetArraySize(spans), 5);
  assert_non_null(span_of(spans, arbor_node_id(t.svc)));
  assert_null(span_of(spans, arbor_node_id(t.victim)));
  cJSON_Delete(doc);
  free(g.body);

  get_trace(&t.loop, port, "/api/v1/trace?format=svg", &g);
  assert_int_eq(g.status, 400);
  assert_non_null(strstr(g.body, "format"));
  free(g.body);
  get_trace(&t.loop, port, "/api/v1/trace?root=99999", &g);
  assert_int_eq(g.status, 404);
  assert_non_null(strstr(g.body, "99999"));
  free(g.body);
  get_trace(&t.loop, port, "/api/v1/trace?root=x", &g);
  assert_int_eq(g.status, 400);
  free(g.body);
  tree_close(&t);
}

/* ------------------------------------------------ counters (GET /metrics) */

static void stats_count_restarts_failures_and_nodes_by_state(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  arbor_stats_t st;
  arbor_runtime_stats(t.rt, &st);
  assert_uint_eq(st.events[ARBOR_EVENT_RESTART], 2);
  assert_uint_eq(st.restart_gap.count, 2);       /* both restarts reached STARTED */
  assert_uint_eq(st.created[ARBOR_KIND_ROOT], 1);
  assert_uint_eq(st.finished[ARBOR_KIND_TASK][ARBOR_OUTCOME_CANCELLED], 1);
  /* fails, the two flaky runs: FAILED tasks */
  assert_uint_eq(st.finished[ARBOR_KIND_TASK][ARBOR_OUTCOME_FAILED], 3);
  assert_uint_eq(st.task_lifetime.count, st.finished[ARBOR_KIND_TASK][ARBOR_OUTCOME_OK] +
                                             st.finished[ARBOR_KIND_TASK][ARBOR_OUTCOME_FAILED] +
                                             st.finished[ARBOR_KIND_TASK][ARBOR_OUTCOME_CANCELLED]);
  /* the gauges add up to the tree, state by state */
  struct nodes ns = {0};
  arbor_tree_walk(arbor_root(t.rt), -1, collect, &ns);
  uint64_t by_state[ARBOR_KIND_COUNT][ARBOR_STATE_COUNT] = {{0}};
  for (size_t i = 0; i < ns.len; i++)
    by_state[arbor_node_kind(ns.n[i])][arbor_node_state(ns.n[i])]++;
  for (int k = 0; k < ARBOR_KIND_COUNT; k++)
    for (int s = 0; s < ARBOR_STATE_COUNT; s++)
      assert_uint_eq(st.nodes[k][s], by_state[k][s]);
  /* histogram buckets add up to the count */
  uint64_t sum = 0;
  for (int i = 0; i <= ARBOR_HISTOGRAM_BUCKETS; i++)
    sum += st.task_lifetime.buckets[i];
  assert_uint_eq(sum, st.task_lifetime.count);
  assert_uint_eq(arbor_histogram_bound_ns(0), 1000);
  assert_uint_eq(arbor_histogram_bound_ns(ARBOR_HISTOGRAM_BUCKETS), UINT64_MAX);
  tree_close(&t);
}

static void state_times_are_in_lifecycle_order(void **state) {
  (void)state;
  struct tree t;
  tree_build(&t);
  uint64_t tm[ARBOR_STATE_COUNT];
  assert_code(arbor_node_state_times(t.w[0], tm), 0);
  assert_true(tm[ARBOR_STATE_CREATED] > 0);
  assert_true(tm[ARBOR_STATE_STARTED] >= tm[ARBOR_STATE_CREATED]);
  assert_true(tm[ARBOR_STATE_STOPPED] >= tm[ARBOR_STATE_STARTED]);
  assert_true(tm[ARBOR_STATE_FINISHED] >= tm[ARBOR_STATE_STOPPED]);
  assert_uint_eq(tm[ARBOR_STATE_STOPPING], 0);     /* it ended by itself */
  assert_code(arbor_node_state_times(t.running, tm), 0);
  assert_uint_eq(tm[ARBOR_STATE_FINISHED], 0);
  assert_code(arbor_node_state_times(NULL, tm), ARBOR_EINVAL);
  tree_close(&t);
}

/* no_events: nothing in the ring (no SSE, no span events), the counts kept. */
static void no_events_records_nothing_but_counts(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.no_events = 1});
  arbor_node_t *f = fiber(arbor_root(rt), "f", sleeper, (void *)(uintptr_t)1);
  arbor_test_run_ticking_until(&loop, arbor_node_is_finished(f));
  arbor_events_stats_t es;
  arbor_events_stats(rt, &es);
  assert_uint_eq(es.recorded, 0);
  arbor_stats_t st;
  arbor_runtime_stats(rt, &st);
  assert_uint_eq(st.created[ARBOR_KIND_TASK], 1);
  assert_uint_eq(st.finished[ARBOR_KIND_TASK][ARBOR_OUTCOME_OK], 1);
  assert_true(st.events[ARBOR_EVENT_STATE] >= 4);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
      cmocka_unit_test(chrome_slices_nest_and_concurrent_siblings_never_overlap_on_a_track),
      cmocka_unit_test(chrome_failures_restarts_and_cancels_are_instant_events_with_the_chain),
      cmocka_unit_test(otlp_one_span_per_node_whose_parent_is_the_parent_node),
      cmocka_unit_test(otlp_status_from_outcome_and_failure_as_exception_event),
      cmocka_unit_test(exports_escape_odd_names),
      cmocka_unit_test(export_in_small_pieces_is_the_same_document),
      cmocka_unit_test(trace_format_names_and_file_suffixes),
      cmocka_unit_test(trace_write_reports_a_failed_write),
      cmocka_unit_test(trace_endpoint_serves_both_formats_and_names_bad_queries),
      cmocka_unit_test(stats_count_restarts_failures_and_nodes_by_state),
      cmocka_unit_test(state_times_are_in_lifecycle_order),
      cmocka_unit_test(no_events_records_nothing_but_counts),
};

ARBOR_TEST_MAIN(tests)
