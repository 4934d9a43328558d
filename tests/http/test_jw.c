/* tests/http/test_jw.c - the JSON writer of http/jw.h and GET /tree written
 * with it: the same bytes as the cJSON document it replaced. */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>

#include "../../http/jw.h"

/* The text written so far, which must exist. */
static const char *text_of(struct jw *w) {
  size_t len;
  const char *t = jw_text(w, &len);
  assert_non_null(t);
  assert_int_eq(strlen(t), len);
  return t;
}

/* ----------------------------------------------------------- the writer */

/* Commas between members and elements, nesting, every scalar. */
static void jw_shapes_and_commas(void **state) {
  struct jw w;
  jw_init(&w, 0);
  jw_obj_begin(&w);
  jw_key(&w, "a");
  jw_arr_begin(&w);
  jw_arr_end(&w);
  jw_key(&w, "b");
  jw_obj_begin(&w);
  jw_obj_end(&w);
  jw_key(&w, "c");
  jw_arr_begin(&w);
  jw_u64(&w, 0);
  jw_i64(&w, -1);
  jw_bool(&w, 1);
  jw_bool(&w, 0);
  jw_null(&w);
  jw_str(&w, NULL);
  jw_arr_begin(&w);
  jw_obj_begin(&w);
  jw_key(&w, "x");
  jw_str(&w, "");
  jw_obj_end(&w);
  jw_obj_begin(&w);
  jw_obj_end(&w);
  jw_arr_end(&w);
  jw_arr_end(&w);
  jw_key(&w, "d");
  jw_u64(&w, 7);
  jw_obj_end(&w);
  assert_string_equal(text_of(&w), "{\"a\":[],\"b\":{},\"c\":[0,-1,true,false,null,null,"
                                   "[{\"x\":\"\"},{}]],\"d\":7}");
  jw_free(&w);
}

/* Integers exact at both ends, as cJSON prints them (json.c's raw path). */
static void jw_integers_exact(void **state) {
  static const uint64_t u[] = {0, 1, 9, 10, 99, 100, 2147483647ULL, 2147483648ULL,
                               9007199254740993ULL, 10000000000000000000ULL, UINT64_MAX};
  static const int64_t s[] = {0, -1, -9, -10, -2147483647LL, -2147483648LL, INT64_MAX, INT64_MIN};
  char got[24], want[24];
  for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
    got[jw_fmt_u64(u[i], got)] = '\0';
    snprintf(want, sizeof want, "%" PRIu64, u[i]);
    assert_string_equal(got, want);
  }
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    got[jw_fmt_i64(s[i], got)] = '\0';
    snprintf(want, sizeof want, "%" PRId64, s[i]);
    assert_string_equal(got, want);
  }
  /* And cJSON's own rendering of the same values through json.c. */
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  for (int64_t v = -100005; v <= 100005; v += 997) {
    cJSON *o = cJSON_CreateObject();
    http_jadd_i64(&cx, o, "v", v);
    char *c = cJSON_PrintUnformatted(o);
    struct jw w;
    jw_init(&w, 0);
    jw_obj_begin(&w);
    jw_key(&w, "v");
    jw_i64(&w, v);
    jw_obj_end(&w);
    assert_string_equal(text_of(&w), c);
    jw_free(&w);
    free(c);
    cJSON_Delete(o);
  }
}

/* Strings: every byte value, alone and in company, the same as cJSON prints
 * json.c's cleaned string; invalid UTF-8 as U+FFFD; a cut never splits a
 * character. */
static void jw_strings_like_cjson(void **state) {
  static const char *cases[] = {
      "", "plain", "q\"uote\\back/slash", "\b\f\n\r\t\x01\x1f\x7f",
      "a\xff" "b\xc3(\xed\xa0\x80" "c", "gr\xc3\xbc\xc3\x9f \xe2\x9c\x93 \xf0\x9f\x8c\xb3",
      "\xe0\x80\x80 \xf4\x90\x80\x80 \xf0\x8f\xbf\xbf \xc0\xaf \xe2\x9c", "\xf0\x9f\x8c",
  };
  char one[2] = {0, 0};
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < (pass == 0 ? sizeof cases / sizeof cases[0] : 255); i++) {
      const char *s = cases[0];
      if (pass == 0) {
        s = cases[i];
      } else {
        one[0] = (char)(i + 1);
        s = one;
      }
      struct http_jcx cx;
      http_jcx_init(&cx, 0, 0);
      cJSON *o = cJSON_CreateObject();
      http_jadd_str(&cx, o, "k", s);
      char *c = cJSON_PrintUnformatted(o);
      struct jw w;
      jw_init(&w, 0);
      jw_obj_begin(&w);
      jw_key(&w, "k");
      jw_str(&w, s);
      jw_obj_end(&w);
      assert_string_equal(text_of(&w), c);
      cJSON *back = cJSON_Parse(text_of(&w));
      assert_non_null(back);
      cJSON_Delete(back);
      jw_free(&w);
      free(c);
      cJSON_Delete(o);
    }

  struct jw w;
  jw_init(&w, 0);
  jw_str_max(&w, "ab\xe2\x9c\x93" "cd", 4);      /* the check mark is cut out whole */
  jw_str_max(&w, "abc", 3);
  assert_string_equal(text_of(&w), "\"ab\",\"abc\"");
  jw_free(&w);
}

/* RFC 3339 times: the text of http_format_time, for instants across the whole
 * int64 range of nanoseconds (leap years, centuries, before 1970). */
static void jw_times_like_format_time(void **state) {
  int64_t probes[] = {0, -1, 1, 1795538400123456789LL, 951782400000000000LL /* 2000-02-29 */,
                      4107542400000000000LL /* 2100-03-01 */, -2208988800000000000LL,
                      INT64_MAX, INT64_MIN, 86399999999999LL, -86400000000000LL};
  struct jw w;
  jw_init(&w, 0);
  uint64_t x = 88172645463325252ULL;             /* xorshift: many instants, reproducible */
  for (int i = 0; i < 20000; i++) {
    int64_t t;
    if (i < (int)(sizeof probes / sizeof probes[0])) {
      t = probes[i];
    } else {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      t = (int64_t)x;
    }
    char want[HTTP_TIME_LEN + 2], f[HTTP_TIME_LEN];
    http_format_time(t, f);
    snprintf(want, sizeof want, "\"%s\"", f);
    w.len = 0;
    w.first[w.depth] = 1;
    jw_time(&w, t);
    if (strcmp(text_of(&w), want) != 0)
      fail_msg("%" PRId64 ": %s, want %s", t, text_of(&w), want);
  }
  jw_free(&w);
}

/* The byte cap and the sticky error: nothing after it, no text. */
static void jw_cap_is_sticky(void **state) {
  struct jw w;
  jw_init(&w, 8);
  jw_arr_begin(&w);
  jw_u64(&w, 123);
  assert_int_eq(w.err, 0);
  jw_str(&w, "long enough");
  assert_int_eq(w.err, JW_ECAP);
  jw_u64(&w, 1);
  jw_arr_end(&w);
  size_t len = 99;
  assert_null(jw_text(&w, &len));
  assert_int_eq(len, 0);
  jw_free(&w);

  /* Growth from nothing across many reallocations. */
  jw_init(&w, 0);
  jw_arr_begin(&w);
  for (int i = 0; i < 100000; i++)
    jw_u64(&w, (uint64_t)i);
  jw_arr_end(&w);
  assert_int_eq(w.err, 0);
  assert_true(strncmp(text_of(&w), "[0,1,2,", 7) == 0);
  jw_free(&w);
}

/* jw_take hands over the text jw_text shows (the writer is left empty and
 * reusable); after an error it gives NULL and frees. jw_presize changes no
 * byte of the text, whatever the hint (none, small, exact, too large, over
 * the cap). */
static void jw_take_and_presize_same_text(void **state) {
  (void)state;
  static const size_t hints[] = {0, 1, 100, 4095, 4096, 60000, 1 << 20};
  char *first = NULL;
  size_t first_len = 0;
  for (size_t h = 0; h < sizeof hints / sizeof hints[0]; h++) {
    struct jw w;
    jw_init(&w, 0);
    jw_presize(&w, hints[h]);
    jw_obj_begin(&w);
    for (int i = 0; i < 2000; i++) {
      jw_key(&w, "k");
      jw_str(&w, "v\"\n");
    }
    jw_obj_end(&w);
    size_t shown_len;
    const char *shown = jw_text(&w, &shown_len);
    assert_non_null(shown);
    char *copy = strdup(shown);
    size_t len = 0;
    char *taken = jw_take(&w, &len);
    assert_non_null(taken);
    assert_int_eq(len, shown_len);
    assert_string_equal(taken, copy);
    assert_null(w.buf);          /* the writer no longer owns it */
    jw_free(&w);                 /* harmless: nothing left to free */
    if (first == NULL) {
      first = taken;
      first_len = len;
    } else {
      assert_int_eq(len, first_len);
      assert_string_equal(taken, first);
      free(taken);
    }
    free(copy);
  }
  free(first);

  struct jw w;
  jw_init(&w, 8);
  jw_presize(&w, 1 << 20);       /* capped: at most the writer's max */
  assert_true(w.cap <= 9);
  jw_str(&w, "longer than eight");
  assert_int_eq(w.err, JW_ECAP);
  size_t len = 99;
  assert_null(jw_take(&w, &len));
  assert_int_eq(len, 0);
  assert_null(w.buf);
}

/* ------------------------------------------------ /tree, both ways */

/* The cJSON renderer of /tree as it was before jw (tree.c at 29d3df6), kept
 * here as the reference the new one must match byte for byte. */
struct ref_pending {
  arbor_node_t *node;
  cJSON *obj;
  int depth;
};
struct ref_walk {
  struct http_jcx cx;
  struct ref_pending *q;
  size_t head, tail, cap;
  size_t budget, limit;
  int max_depth, truncated;
  arbor_node_t **page;
};

static cJSON *ref_node(struct ref_walk *w, arbor_node_t *node, int depth) {
  w->cx.errors_left = HTTP_ERRORS_MAX;
  cJSON *o = http_jnode(&w->cx, node);
  assert_non_null(o);
  w->budget--;
  if (w->tail == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 64;
    w->q = realloc(w->q, w->cap * sizeof *w->q);
    assert_non_null(w->q);
  }
  w->q[w->tail++] = (struct ref_pending){node, o, depth};
  return o;
}

static void ref_expand(struct ref_walk *w, struct ref_pending p) {
  arbor_node_info_t in;
  arbor_node_info(p.node, &in);
  size_t total = in.children, want = 0;
  if (p.depth < w->max_depth) {
    want = total < w->limit ? total : w->limit;
    if (want > w->budget) {
      want = w->budget;
      w->truncated = 1;
    }
  }
  size_t got = 0;
  if (p.depth < w->max_depth) {
    int n = want > 0 ? arbor_node_children(p.node, 0, want, w->page, &total) : 0;
    cJSON *arr = http_jadd(&w->cx, p.obj, "nodes", cJSON_CreateArray());
    for (int i = 0; arr != NULL && i < n; i++)
      if (http_jpush(&w->cx, arr, ref_node(w, w->page[i], p.depth + 1)) != NULL)
        got++;
  }
  if (total > got)
    http_jadd_u64(&w->cx, p.obj, "more", total - got);
}

static char *ref_tree(arbor_node_t *root, int depth, size_t limit) {
  struct ref_walk w = {.budget = HTTP_TREE_NODES_MAX, .limit = limit, .max_depth = depth};
  http_jcx_init(&w.cx, 0, 0);
  w.page = malloc((limit > 0 ? limit : 1) * sizeof *w.page);
  cJSON *doc = cJSON_CreateObject();
  http_jadd(&w.cx, doc, "root", ref_node(&w, root, 0));
  while (w.head < w.tail)
    ref_expand(&w, w.q[w.head++]);
  http_jadd_u64(&w.cx, doc, "depth", (uint64_t)depth);
  http_jadd_u64(&w.cx, doc, "limit", limit);
  http_jadd_u64(&w.cx, doc, "count", HTTP_TREE_NODES_MAX - w.budget);
  http_jadd_bool(&w.cx, doc, "truncated", w.truncated);
  assert_false(w.cx.oom);
  free(w.q);
  free(w.page);
  char *text = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  return text;
}

static int fail_odd_start(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_error_t *cause = arbor_error_new(ARBOR_ENOENT, "no \"config\"\tat\n\x01\x7f\xff here");
  arbor_error_t *e = arbor_error_wrap(cause, -EIO, "write failed \xe2\x9c\x93 \xc3(");
  for (int i = 0; i < 20; i++)                  /* past HTTP_ERROR_DEPTH_MAX */
    e = arbor_error_wrap(e, -EIO, "level %d", i);
  arbor_task_fail_error(task, e);
  return 0;
}

static char long_msg[HTTP_MESSAGE_MAX + 64];

static int fail_long_start(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor_task_fail(task, -EPIPE, "%s", long_msg);
  return 0;
}

static arbor_probe_t probes[1300];

/* A tree with every shape /tree meets: a group wider than the node budget,
 * nesting deeper than the default depth, failed groups with chains past every
 * bound, names, attributes and messages that need escaping or are not UTF-8.
 * Rendered both ways for several depths, limits and roots. */
static void jw_tree_same_bytes_as_cjson(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *root = arbor_root(rt);
  memset(long_msg, 'm', sizeof long_msg - 1);
  memcpy(long_msg + HTTP_MESSAGE_MAX - 2, "\xf0\x9f\x8c\xb3", 4);

  arbor_node_t *wide = arbor_test_group(root, "wide");
  for (int i = 0; i < 1200; i++) {
    probes[i].started_in_start = 1;
    arbor_test_spawn(wide, &probes[i], i % 2 ? "w" : "w\"\\\n\xff", 0);
  }
  arbor_node_t *deep = arbor_test_group(root, "deep \xe2\x9c\x93");
  assert_code(arbor_node_attr_set(deep, "owner", "ops\t\"x\"\xfe"), 0);
  assert_code(arbor_node_attr_set(deep, "k\"ey", ""), 0);
  arbor_node_t *at = deep;
  for (int i = 0; i < 8; i++)
    at = arbor_test_group(at, "level");
  for (int i = 0; i < 3; i++) {
    probes[1200 + i].started_in_start = 1;
    arbor_test_spawn(at, &probes[1200 + i], "leaf", 0);
  }
  arbor_node_t *failing[2];
  failing[0] = arbor_test_group(root, "failing");
  failing[1] = arbor_test_group(root, "long");
  arbor_task_spec_t s1 = {.name = "odd", .start = fail_odd_start};
  arbor_task_spec_t s2 = {.name = "long", .start = fail_long_start};
  assert_code(arbor_task_spawn(failing[0], &s1, NULL), 0);
  assert_code(arbor_task_spawn(failing[1], &s2, NULL), 0);
  for (int i = 0; i < 2; i++) {
    arbor_node_ref(failing[i]);
    assert_code(arbor_group_join(failing[i], NULL, NULL), 0);
  }
  arbor_test_run_until(&loop, arbor_node_is_finished(failing[0]) &&
                                  arbor_node_is_finished(failing[1]) &&
                                  arbor_node_state(wide) == ARBOR_STATE_STARTED);

  struct {
    arbor_node_t *root;
    int depth;
    size_t limit;
  } cases[] = {{root, 4, 100},  {root, 64, 1000}, {root, 0, 100}, {root, 1, 0},
               {root, 2, 5},    {root, 64, 1},    {wide, 1, 1000}, {deep, 64, 100},
               {failing[0], 4, 100}, {failing[1], 1, 100}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *want = ref_tree(cases[i].root, cases[i].depth, cases[i].limit);
    struct jw w;
    jw_init(&w, 0);
    assert_int_eq(http_tree_write(&w, cases[i].root, cases[i].depth, cases[i].limit), 0);
    const char *got = text_of(&w);
    if (strcmp(got, want) != 0) {
      size_t k = 0;
      while (got[k] == want[k])
        k++;
      fail_msg("case %zu differs at byte %zu: ...%.80s vs ...%.80s", i, k,
               got + (k > 20 ? k - 20 : 0), want + (k > 20 ? k - 20 : 0));
    }
    if (i == 1)                                  /* 1214 nodes: the budget cut */
      assert_non_null(strstr(got, "\"truncated\":true"));
    if (i == 0)                                  /* wide: 100 of 1200 */
      assert_non_null(strstr(got, "\"more\":1100"));
    cJSON *back = cJSON_Parse(got);
    assert_non_null(back);
    cJSON_Delete(back);
    jw_free(&w);
    free(want);
  }

  for (int i = 0; i < 2; i++)
    arbor_node_unref(failing[i]);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(jw_shapes_and_commas),
    cmocka_unit_test(jw_integers_exact),
    cmocka_unit_test(jw_strings_like_cjson),
    cmocka_unit_test(jw_times_like_format_time),
    cmocka_unit_test(jw_cap_is_sticky),
    cmocka_unit_test(jw_take_and_presize_same_text),
    cmocka_unit_test(jw_tree_same_bytes_as_cjson),
};

ARBOR_TEST_MAIN(tests)
