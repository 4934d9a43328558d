/* test_error.c - errors: fields, chains, error groups, text, refcounts, code names. */
#include "harness.h"

/* The file name as the library may print it: __FILE__ or its last component. */
static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* Number of leading spaces of the line in `text` that contains `needle`, and that
 * line's index (counted from 0) in *line_no; fails when needle is absent. */
static int indent_of(const char *text, const char *needle, int *line_no) {
  const char *hit = strstr(text, needle), *start, *p;
  int n = 0, lines = 0;
  if (hit == NULL)
    fail_msg("\"%s\" not in:\n%s", needle, text);
  start = hit;
  while (start > text && start[-1] != '\n')
    start--;
  for (p = text; p < start; p++)
    if (*p == '\n')
      lines++;
  while (start[n] == ' ' || start[n] == '\t')
    n++;
  *line_no = lines;
  return n;
}

static size_t count_of(const char *text, const char *needle) {
  size_t n = 0;
  const char *p = text;
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

static void error_new_fields(void **state) {
  arbor_error_t *err;
  uint64_t before, after;
  int line;
  (void)state;

  before = uv_hrtime();
  line = __LINE__ + 1;
  err = arbor_error_new(-ENOSPC, "disk %s is %d%% full", "sda", 97);
  after = uv_hrtime();
  assert_non_null(err);
  assert_code(arbor_error_code(err), -ENOSPC);
  assert_string_equal(arbor_error_message(err), "disk sda is 97% full");
  assert_string_equal(arbor_error_file(err), __FILE__);
  assert_int_eq(arbor_error_line(err), line);
  assert_string_equal(arbor_error_function(err), "error_new_fields");
  assert_uint_le(before, arbor_error_time_ns(err));
  assert_uint_le(arbor_error_time_ns(err), after);
  assert_uint_eq(arbor_error_node_id(err), 0);
  assert_null(arbor_error_cause(err));
  assert_uint_eq(arbor_error_child_count(err), 0);
  assert_null(arbor_error_child(err, 0));
  arbor_error_unref(err);
}

/* Wrapping builds a chain; the outer takes the caller's reference to the cause. */
static void error_wrap_chain(void **state) {
  arbor_error_t *a, *b, *c;
  (void)state;

  a = arbor_error_new(-ENOSPC, "disk full");
  b = arbor_error_wrap(a, -EIO, "write failed");
  c = arbor_error_wrap(b, ARBOR_ECANCELED, "flush aborted");
  assert_non_null(c);
  assert_ptr_equal(arbor_error_cause(c), b);
  assert_ptr_equal(arbor_error_cause(b), a);
  assert_null(arbor_error_cause(a));
  assert_code(arbor_error_code(arbor_error_cause(arbor_error_cause(c))), -ENOSPC);
  arbor_error_unref(c); /* frees the whole chain: LeakSanitizer checks */
}

/* Refcounts: ref returns the error, each ref needs its unref; unref(NULL) is fine.
 * A cause kept alive by its own reference outlives the wrapper. */
static void error_refcount_balance(void **state) {
  arbor_error_t *a, *b;
  (void)state;

  a = arbor_error_new(-EPIPE, "pipe");
  assert_ptr_equal(arbor_error_ref(a), a);
  assert_ptr_equal(arbor_error_ref(a), a);
  arbor_error_unref(a);
  arbor_error_unref(a);
  assert_string_equal(arbor_error_message(a), "pipe"); /* still one reference */

  arbor_error_ref(a);                                  /* keep the cause */
  b = arbor_error_wrap(a, -EIO, "outer");             /* takes one reference */
  arbor_error_unref(b);                                /* outer gone */
  assert_string_equal(arbor_error_message(a), "pipe"); /* cause still alive */
  arbor_error_unref(a);
  arbor_error_unref(NULL);
}

/* Text: outermost first, each cause on its own line, indented further, under
 * "caused by:", with message, code name and file:line. */
static void error_chain_text(void **state) {
  arbor_error_t *a, *b, *c;
  char buf[2048], loc[3][128];
  int la, lb, lc, n;
  int ia, ib, ic, line_a, line_b, line_c;
  const char *pa, *pb, *pc, *cb1, *cb2;
  (void)state;

  la = __LINE__ + 1;
  a = arbor_error_new(-ENOSPC, "inner disk full");
  lb = __LINE__ + 1;
  b = arbor_error_wrap(a, -EIO, "middle write failed");
  lc = __LINE__ + 1;
  c = arbor_error_wrap(b, ARBOR_ECANCELED, "outer flush aborted");

  n = arbor_error_format(c, buf, sizeof buf);
  assert_true(n > 0);
  assert_int_eq(n, (int)strlen(buf));

  /* order: outer, middle, inner */
  pc = strstr(buf, "outer flush aborted");
  pb = strstr(buf, "middle write failed");
  pa = strstr(buf, "inner disk full");
  assert_non_null(pa);
  assert_non_null(pb);
  assert_non_null(pc);
  assert_true(pc < pb);
  assert_true(pb < pa);
  /* each on its own line, more indented than the one before */
  ic = indent_of(buf, "outer flush aborted", &line_c);
  ib = indent_of(buf, "middle write failed", &line_b);
  ia = indent_of(buf, "inner disk full", &line_a);
  assert_true(line_c < line_b);
  assert_true(line_b < line_a);
  if (!(ic < ib && ib < ia))
    fail_msg("indentation not increasing (%d, %d, %d):\n%s", ic, ib, ia, buf);
  /* "caused by:" twice, once between each pair */
  assert_uint_eq(count_of(buf, "caused by:"), 2);
  cb1 = strstr(buf, "caused by:");
  cb2 = strstr(cb1 + 1, "caused by:");
  assert_true(pc < cb1 && cb1 < pb);
  assert_true(pb < cb2 && cb2 < pa);
  /* code names and locations */
  assert_non_null(strstr(buf, "ECANCELED"));
  assert_non_null(strstr(buf, "EIO"));
  assert_non_null(strstr(buf, "ENOSPC"));
  snprintf(loc[0], sizeof loc[0], "%s:%d", base_name(__FILE__), la);
  snprintf(loc[1], sizeof loc[1], "%s:%d", base_name(__FILE__), lb);
  snprintf(loc[2], sizeof loc[2], "%s:%d", base_name(__FILE__), lc);
  assert_non_null(strstr(buf, loc[0]));
  assert_non_null(strstr(buf, loc[1]));
  assert_non_null(strstr(buf, loc[2]));
  /* and in chain order */
  assert_true(strstr(buf, loc[2]) < strstr(buf, loc[1]));
  assert_true(strstr(buf, loc[1]) < strstr(buf, loc[0]));
  arbor_error_unref(c);
}

/* Like snprintf: returns the full length whatever the size, writes at most size-1
 * bytes and a NUL; NULL/0 only measures. */
static void error_format_truncates_like_snprintf(void **state) {
  arbor_error_t *a, *b;
  char full[2048], small[8], one[1];
  int n;
  (void)state;

  a = arbor_error_new(-ENOSPC, "disk full");
  b = arbor_error_wrap(a, -EIO, "write failed");
  n = arbor_error_format(b, full, sizeof full);
  assert_true(n > 20);
  assert_int_eq((int)strlen(full), n);
  assert_int_eq(arbor_error_format(b, NULL, 0), n);
  memset(small, 'x', sizeof small);
  assert_int_eq(arbor_error_format(b, small, sizeof small), n);
  assert_int_eq(small[7], '\0');
  assert_int_eq((int)strlen(small), 7);
  assert_memory_equal(small, full, 7);
  one[0] = 'x';
  assert_int_eq(arbor_error_format(b, one, 1), n);
  assert_int_eq(one[0], '\0');
  assert_code(arbor_error_format(NULL, full, sizeof full), ARBOR_EINVAL);
  arbor_error_unref(b);
}

/* print writes the same text as format. */
static void error_print_matches_format(void **state) {
  arbor_error_t *a, *b;
  char want[2048], got[2048];
  FILE *f;
  size_t len;
  int n;
  (void)state;

  a = arbor_error_new(-ENOSPC, "disk full");
  b = arbor_error_wrap(a, -EIO, "write failed");
  n = arbor_error_format(b, want, sizeof want);
  f = tmpfile();
  assert_non_null(f);
  assert_true(arbor_error_print(b, f) >= 0);
  rewind(f);
  len = fread(got, 1, sizeof got - 1, f);
  got[len] = '\0';
  fclose(f);
  /* print may add a final newline */
  if (len == (size_t)n + 1 && got[n] == '\n')
    got[n] = '\0';
  assert_string_equal(got, want);
  arbor_error_unref(b);
}

/* An error group made by a failing group prints each child under "child i of n:". */
static void error_group_text(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[2] = {{0}};
  arbor_node_t *g, *t[2];
  const arbor_error_t *gerr;
  char buf[4096];
  const char *first, *second, *c1, *c2;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  t[0] = arbor_test_spawn(g, &p[0], "a", ARBOR_PROBE_CUSTOM_CANCEL);
  t[1] = arbor_test_spawn(g, &p[1], "b", 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts);
  assert_code(arbor_task_fail(t[1], -EIO, "bee failed"), 0);
  arbor_test_run_until(&loop, p[0].cancels > 0);
  assert_code(arbor_task_fail(t[0], -EPIPE, "ay failed"), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));

  gerr = arbor_node_error(g);
  assert_non_null(gerr);
  assert_code(arbor_error_code(gerr), ARBOR_EGROUP);
  assert_true(arbor_error_format(gerr, buf, sizeof buf) > 0);
  assert_uint_eq(count_of(buf, "of 2:"), 2);
  c1 = strstr(buf, "of 2:");
  c2 = strstr(c1 + 1, "of 2:");
  first = strstr(buf, "bee failed");
  second = strstr(buf, "ay failed");
  assert_non_null(first);
  assert_non_null(second);
  assert_true(c1 < first && first < c2 && c2 < second);
  assert_non_null(strstr(buf, "EGROUP"));
  arbor_test_close(rt, &loop);
}

/* A group's error outlives the runtime when referenced; its children stay valid. */
static void error_ref_outlives_runtime(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *g, *t;
  arbor_error_t *kept;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(g, &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_task_fail(t, -EIO, "kept"), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  kept = arbor_error_ref((arbor_error_t *)arbor_node_error(g));
  arbor_test_close(rt, &loop);
  assert_code(arbor_error_code(kept), ARBOR_EGROUP);
  assert_uint_eq(arbor_error_child_count(kept), 1);
  assert_string_equal(arbor_error_message(arbor_error_child(kept, 0)), "kept");
  arbor_error_unref(kept);
}

/* Every code of ARBOR_ERRNO_MAP has its name and message; unknown codes do not. */
static void error_strerror_and_name_every_code(void **state) {
  (void)state;
#define XX(name, value, msg)                                                           \
  assert_string_equal(arbor_err_name(value), #name);                                   \
  assert_string_equal(arbor_strerror(value), msg);                                     \
  assert_code(ARBOR_##name, value);
  ARBOR_ERRNO_MAP(XX)
#undef XX
  assert_string_equal(arbor_err_name(-4099), "UNKNOWN");
  assert_string_equal(arbor_strerror(-4099), "unknown error");
  assert_string_equal(arbor_err_name(12345), "UNKNOWN");
  assert_string_equal(arbor_strerror(12345), "unknown error");
  /* plain negative errno codes are known too */
  assert_string_equal(arbor_err_name(-EIO), "EIO");
  assert_non_null(arbor_strerror(-EIO));
  assert_true(strlen(arbor_strerror(-EIO)) > 0);
  assert_string_not_equal(arbor_strerror(-EIO), "unknown error");
}

/* Every kind, state, outcome and event type has its name; unknown values give
 * "unknown". */
static void error_enum_names(void **state) {
  (void)state;
#define XX(name, text) assert_string_equal(arbor_kind_name(ARBOR_KIND_##name), text);
  ARBOR_KIND_MAP(XX)
#undef XX
#define XX(name, text) assert_string_equal(arbor_state_name(ARBOR_STATE_##name), text);
  ARBOR_STATE_MAP(XX)
#undef XX
#define XX(name, text) assert_string_equal(arbor_outcome_name(ARBOR_OUTCOME_##name), text);
  ARBOR_OUTCOME_MAP(XX)
#undef XX
#define XX(name, text)                                                                 \
  assert_string_equal(arbor_event_type_name(ARBOR_EVENT_##name), text);
  ARBOR_EVENT_MAP(XX)
#undef XX
  assert_string_equal(arbor_kind_name(ARBOR_KIND_COUNT), "unknown");
  assert_string_equal(arbor_state_name(ARBOR_STATE_COUNT), "unknown");
  assert_string_equal(arbor_outcome_name(ARBOR_OUTCOME_COUNT), "unknown");
  assert_string_equal(arbor_event_type_name(ARBOR_EVENT_COUNT), "unknown");
  assert_string_equal(arbor_state_name((arbor_state_t)-1), "unknown");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(error_new_fields),
    cmocka_unit_test(error_wrap_chain),
    cmocka_unit_test(error_refcount_balance),
    cmocka_unit_test(error_chain_text),
    cmocka_unit_test(error_format_truncates_like_snprintf),
    cmocka_unit_test(error_print_matches_format),
    cmocka_unit_test(error_group_text),
    cmocka_unit_test(error_ref_outlives_runtime),
    cmocka_unit_test(error_strerror_and_name_every_code),
    cmocka_unit_test(error_enum_names),
};

ARBOR_TEST_MAIN(tests)
