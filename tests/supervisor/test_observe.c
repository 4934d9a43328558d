/* test_observe.c - the observation API: find, children (links and pages), walks,
 * node info, attributes, tree print. */
#include "harness.h"

/* find: by id, alive or retained; unknown ids give NULL. Ids are unique. */
static void observe_find_by_id(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[3] = {{0}};
  arbor_node_t *t[3], *g;
  uint64_t max_id = 0;
  int i, j;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  for (i = 0; i < 3; i++)
    t[i] = arbor_test_spawn(g, &p[i], "t", 0);
  for (i = 0; i < 3; i++) {
    assert_ptr_equal(arbor_node_find(rt, arbor_node_id(t[i])), t[i]);
    for (j = 0; j < i; j++)
      assert_true(arbor_node_id(t[i]) != arbor_node_id(t[j]));
    if (arbor_node_id(t[i]) > max_id)
      max_id = arbor_node_id(t[i]);
  }
  assert_ptr_equal(arbor_node_find(rt, arbor_node_id(g)), g);
  assert_true(arbor_node_id(g) != arbor_node_id(arbor_root(rt)));
  assert_null(arbor_node_find(rt, max_id + 1000));
  assert_null(arbor_node_find(rt, 0));
  assert_null(arbor_node_find(rt, UINT64_MAX));

  /* finished nodes stay findable (default retention) */
  arbor_test_run_until(&loop, p[0].starts > 0);
  assert_code(arbor_task_done(t[0]), 0);
  arbor_test_run_until(&loop, p[0].finishes > 0);
  assert_ptr_equal(arbor_node_find(rt, arbor_node_id(t[0])), t[0]);
  arbor_test_close(rt, &loop);
}

/* Ids are never reused: a new node after others finished has a new id. */
static void observe_ids_never_reused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t p[8] = {{0}};
  uint64_t ids[8];
  int i, j;
  (void)state;
  opts.retain_finished = 1;
  arbor_test_open(&loop, &rt, &opts);

  for (i = 0; i < 8; i++) {
    p[i].done_in_start = 1;
    arbor_test_spawn(arbor_root(rt), &p[i], "t", 0);
    ids[i] = p[i].id;
    arbor_test_run_until(&loop, p[i].finishes > 0);
    for (j = 0; j < i; j++)
      assert_true(ids[i] != ids[j]);
  }
  arbor_test_close(rt, &loop);
}

/* Children: creation order through first_child/next_sibling and through pages. */
static void observe_children_paging(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[5] = {{0}};
  arbor_node_t *g, *t[5], *out[8], *c;
  size_t total;
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "g");
  for (i = 0; i < 5; i++)
    t[i] = arbor_test_spawn(g, &p[i], "t", 0);

  for (c = arbor_node_first_child(g), i = 0; c != NULL; c = arbor_node_next_sibling(c), i++)
    assert_ptr_equal(c, t[i]);
  assert_int_eq(i, 5);
  assert_null(arbor_node_first_child(t[0]));
  assert_null(arbor_node_next_sibling(t[4]));

  total = 99;
  assert_int_eq(arbor_node_children(g, 0, 2, out, &total), 2);
  assert_uint_eq(total, 5);
  assert_ptr_equal(out[0], t[0]);
  assert_ptr_equal(out[1], t[1]);
  assert_int_eq(arbor_node_children(g, 2, 2, out, &total), 2);
  assert_ptr_equal(out[0], t[2]);
  assert_ptr_equal(out[1], t[3]);
  assert_int_eq(arbor_node_children(g, 4, 2, out, &total), 1);
  assert_ptr_equal(out[0], t[4]);
  assert_int_eq(arbor_node_children(g, 5, 2, out, &total), 0);
  assert_int_eq(arbor_node_children(g, 50, 2, out, &total), 0);
  assert_uint_eq(total, 5);
  assert_int_eq(arbor_node_children(g, 0, 8, out, NULL), 5);
  for (i = 0; i < 5; i++)
    assert_ptr_equal(out[i], t[i]);
  total = 0;
  assert_int_eq(arbor_node_children(g, 0, 0, NULL, &total), 0);
  assert_uint_eq(total, 5);
  assert_code(arbor_node_children(NULL, 0, 2, out, &total), ARBOR_EINVAL);
  assert_code(arbor_node_children(g, 0, 2, NULL, &total), ARBOR_EINVAL);
  /* the root's only child is g */
  assert_int_eq(arbor_node_children(arbor_root(rt), 0, 8, out, &total), 1);
  assert_uint_eq(total, 1);
  assert_ptr_equal(out[0], g);
  arbor_test_close(rt, &loop);
}

/* A tree for the walks:
 *   root
 *     g
 *       t1
 *       g2
 *         t2
 *     t3                                                                         */
struct walk_log {
  int n;
  arbor_node_t *node[16];
  int depth[16];
  arbor_node_t *skip_at, *stop_at;
  int stop_rc;
};

static int walk_visit(arbor_node_t *node, int depth, void *arg) {
  struct walk_log *log = arg;
  if (log->n < 16) {
    log->node[log->n] = node;
    log->depth[log->n] = depth;
  }
  log->n++;
  if (node == log->stop_at)
    return log->stop_rc;
  if (node == log->skip_at)
    return 1;
  return 0;
}

static void build_walk_tree(arbor_runtime_t *rt, arbor_probe_t *p, arbor_node_t **n) {
  n[0] = arbor_root(rt);
  n[1] = arbor_test_group(n[0], "g");
  n[2] = arbor_test_spawn(n[1], &p[0], "t1", 0);
  n[3] = arbor_test_group(n[1], "g2");
  n[4] = arbor_test_spawn(n[3], &p[1], "t2", 0);
  n[5] = arbor_test_spawn(n[0], &p[2], "t3", 0);
}

static void assert_walk(const struct walk_log *log, arbor_node_t **n, const int *order,
                        const int *depths, int count) {
  int i;
  assert_int_eq(log->n, count);
  for (i = 0; i < count; i++) {
    if (log->node[i] != n[order[i]])
      fail_msg("visit %d: got %s, want %s", i, arbor_node_name(log->node[i]),
               arbor_node_name(n[order[i]]));
    assert_int_eq(log->depth[i], depths[i]);
  }
}

static void observe_walk_depth_limit(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[3] = {{0}};
  arbor_node_t *n[6];
  struct walk_log log;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  build_walk_tree(rt, p, n);

  {
    static const int order[] = {0, 1, 2, 3, 4, 5}, depth[] = {0, 1, 2, 2, 3, 1};
    memset(&log, 0, sizeof log);
    assert_int_eq(arbor_tree_walk(n[0], -1, walk_visit, &log), 0);
    assert_walk(&log, n, order, depth, 6);
  }
  {
    static const int order[] = {0}, depth[] = {0};
    memset(&log, 0, sizeof log);
    assert_int_eq(arbor_tree_walk(n[0], 0, walk_visit, &log), 0);
    assert_walk(&log, n, order, depth, 1);
  }
  {
    static const int order[] = {0, 1, 5}, depth[] = {0, 1, 1};
    memset(&log, 0, sizeof log);
    assert_int_eq(arbor_tree_walk(n[0], 1, walk_visit, &log), 0);
    assert_walk(&log, n, order, depth, 3);
  }
  {
    static const int order[] = {0, 1, 2, 3, 5}, depth[] = {0, 1, 2, 2, 1};
    memset(&log, 0, sizeof log);
    assert_int_eq(arbor_tree_walk(n[0], 2, walk_visit, &log), 0);
    assert_walk(&log, n, order, depth, 5);
  }
  { /* a subtree: depths count from its top */
    static const int order[] = {1, 2, 3}, depth[] = {0, 1, 1};
    memset(&log, 0, sizeof log);
    assert_int_eq(arbor_tree_walk(n[1], 1, walk_visit, &log), 0);
    assert_walk(&log, n, order, depth, 3);
  }
  arbor_test_close(rt, &loop);
}

static void observe_walk_skip_and_stop(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[3] = {{0}};
  arbor_node_t *n[6];
  struct walk_log log;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  build_walk_tree(rt, p, n);

  { /* 1 at g: its children are skipped, the walk goes on with t3 */
    static const int order[] = {0, 1, 5}, depth[] = {0, 1, 1};
    memset(&log, 0, sizeof log);
    log.skip_at = n[1];
    assert_int_eq(arbor_tree_walk(n[0], -1, walk_visit, &log), 0);
    assert_walk(&log, n, order, depth, 3);
  }
  { /* 1 at g2 skips t2 only */
    static const int order[] = {0, 1, 2, 3, 5}, depth[] = {0, 1, 2, 2, 1};
    memset(&log, 0, sizeof log);
    log.skip_at = n[3];
    assert_int_eq(arbor_tree_walk(n[0], -1, walk_visit, &log), 0);
    assert_walk(&log, n, order, depth, 5);
  }
  { /* a negative value at t1 stops the walk and is returned */
    static const int order[] = {0, 1, 2}, depth[] = {0, 1, 2};
    memset(&log, 0, sizeof log);
    log.stop_at = n[2];
    log.stop_rc = -7;
    assert_int_eq(arbor_tree_walk(n[0], -1, walk_visit, &log), -7);
    assert_walk(&log, n, order, depth, 3);
  }
  { /* stop at the very first node */
    static const int order[] = {0}, depth[] = {0};
    memset(&log, 0, sizeof log);
    log.stop_at = n[0];
    log.stop_rc = ARBOR_ECANCELED;
    assert_code(arbor_tree_walk(n[0], -1, walk_visit, &log), ARBOR_ECANCELED);
    assert_walk(&log, n, order, depth, 1);
  }
  arbor_test_close(rt, &loop);
}

/* Info: ids, parent id, kind, state, outcome, cancel flag, times in order, counts. */
static void observe_node_info_fields(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[2] = {{0}};
  arbor_node_t *g, *t, *u;
  arbor_node_info_t info, ginfo;
  uint64_t before;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  before = uv_hrtime();
  g = arbor_test_group(arbor_root(rt), "g");
  t = arbor_test_spawn(g, &p[0], "t", ARBOR_PROBE_CUSTOM_CANCEL);
  u = arbor_test_spawn(g, &p[1], "u", 0);

  memset(&info, 0xff, sizeof info);
  arbor_node_info(t, &info);
  assert_uint_eq(info.id, arbor_node_id(t));
  assert_uint_eq(info.parent_id, arbor_node_id(g));
  assert_int_eq(info.kind, ARBOR_KIND_TASK);
  assert_state_eq(info.state, ARBOR_STATE_CREATED);
  assert_outcome_eq(info.outcome, ARBOR_OUTCOME_NONE);
  assert_int_eq(info.cancel_requested, 0);
  assert_uint_le(before, info.created_ns);
  assert_uint_le(info.created_ns, uv_hrtime());
  assert_uint_eq(info.started_ns, 0);
  assert_uint_eq(info.stop_requested_ns, 0);
  assert_uint_eq(info.finished_ns, 0);
  assert_true(info.created_wall_ns > INT64_C(1600000000) * 1000000000);
  assert_uint_eq(info.children, 0);
  assert_uint_eq(info.live_children, 0);
  assert_uint_eq(info.children_total, 0);
  assert_uint_eq(info.restarts, 0);
  assert_uint_eq(info.attributes, 0);

  arbor_node_info(g, &ginfo);
  assert_int_eq(ginfo.kind, ARBOR_KIND_GROUP);
  assert_state_eq(ginfo.state, ARBOR_STATE_STARTED);
  assert_uint_eq(ginfo.parent_id, arbor_node_id(arbor_root(rt)));
  assert_uint_eq(ginfo.children, 2);
  assert_uint_eq(ginfo.live_children, 2);
  assert_uint_eq(ginfo.children_total, 2);
  assert_true(ginfo.started_ns >= ginfo.created_ns);

  arbor_test_run_until(&loop, p[0].starts && p[1].starts);
  arbor_node_info(t, &info);
  assert_state_eq(info.state, ARBOR_STATE_STARTED);
  assert_true(info.started_ns > 0);
  assert_uint_le(info.created_ns, info.started_ns);
  assert_uint_eq(info.stop_requested_ns, 0);

  assert_code(arbor_task_done(u), 0);
  arbor_test_run_until(&loop, p[1].finishes > 0);
  arbor_node_info(g, &ginfo);
  assert_uint_eq(ginfo.children, 2);       /* the finished one is retained */
  assert_uint_eq(ginfo.live_children, 1);
  assert_uint_eq(ginfo.children_total, 2);

  assert_code(arbor_node_cancel(t), 0);
  arbor_test_run_until(&loop, p[0].cancels > 0);
  arbor_node_info(t, &info);
  assert_int_eq(info.cancel_requested, 1);
  assert_state_eq(info.state, ARBOR_STATE_STOPPING);
  assert_true(info.stop_requested_ns > 0);
  assert_uint_le(info.started_ns, info.stop_requested_ns);
  assert_uint_eq(info.finished_ns, 0);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p[0].finishes > 0);
  arbor_node_info(t, &info);
  assert_state_eq(info.state, ARBOR_STATE_FINISHED);
  assert_outcome_eq(info.outcome, ARBOR_OUTCOME_CANCELLED);
  assert_uint_le(info.stop_requested_ns, info.finished_ns);
  assert_uint_le(info.finished_ns, uv_hrtime());

  /* u never had a stop request: it returned on its own */
  arbor_node_info(u, &info);
  assert_uint_eq(info.stop_requested_ns, 0);
  assert_uint_le(info.started_ns, info.finished_ns);
  assert_outcome_eq(info.outcome, ARBOR_OUTCOME_OK);
  arbor_test_close(rt, &loop);
}

/* A failed node has stop_requested_ns set (a failure occurred). */
static void observe_failed_node_times(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  arbor_node_info_t info;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_task_fail(t, -EIO, "x"), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  arbor_node_info(t, &info);
  assert_outcome_eq(info.outcome, ARBOR_OUTCOME_FAILED);
  assert_true(info.started_ns > 0);
  assert_uint_le(info.created_ns, info.started_ns);
  assert_uint_le(info.started_ns, info.finished_ns);
  if (info.stop_requested_ns != 0) {
    assert_uint_le(info.started_ns, info.stop_requested_ns);
    assert_uint_le(info.stop_requested_ns, info.finished_ns);
  }
  arbor_test_close(rt, &loop);
}

/* Attributes: set, get, replace, order, limits. */
static void observe_attributes(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  arbor_node_info_t info;
  const char *k, *v;
  char key[80], value[300];
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  assert_null(arbor_node_attr_get(t, "missing"));
  assert_code(arbor_node_attr_set(t, "peer", "10.0.0.1"), 0);
  assert_code(arbor_node_attr_set(t, "port", "7070"), 0);
  assert_string_equal(arbor_node_attr_get(t, "peer"), "10.0.0.1");
  assert_string_equal(arbor_node_attr_get(t, "port"), "7070");
  /* replace keeps the position and the count */
  assert_code(arbor_node_attr_set(t, "peer", "10.0.0.2"), 0);
  assert_string_equal(arbor_node_attr_get(t, "peer"), "10.0.0.2");
  arbor_node_info(t, &info);
  assert_uint_eq(info.attributes, 2);
  assert_code(arbor_node_attr_at(t, 0, &k, &v), 0);
  assert_string_equal(k, "peer");
  assert_string_equal(v, "10.0.0.2");
  assert_code(arbor_node_attr_at(t, 1, &k, &v), 0);
  assert_string_equal(k, "port");
  assert_string_equal(v, "7070");
  assert_code(arbor_node_attr_at(t, 2, &k, &v), ARBOR_ENOENT);

  /* values are copied */
  strcpy(value, "original");
  assert_code(arbor_node_attr_set(t, "copied", value), 0);
  strcpy(value, "changed");
  assert_string_equal(arbor_node_attr_get(t, "copied"), "original");

  /* key and value limits */
  memset(key, 'k', sizeof key);
  key[ARBOR_ATTR_KEY_MAX] = '\0';
  assert_code(arbor_node_attr_set(t, key, "ok"), 0); /* 63 bytes */
  key[ARBOR_ATTR_KEY_MAX] = 'k';
  key[ARBOR_ATTR_KEY_MAX + 1] = '\0';
  assert_code(arbor_node_attr_set(t, key, "too long key"), ARBOR_EINVAL); /* 64 */
  assert_null(arbor_node_attr_get(t, key));
  memset(value, 'v', sizeof value);
  value[ARBOR_ATTR_VALUE_MAX] = '\0';
  assert_code(arbor_node_attr_set(t, "long", value), 0); /* 255 bytes */
  value[ARBOR_ATTR_VALUE_MAX] = 'v';
  value[ARBOR_ATTR_VALUE_MAX + 1] = '\0';
  assert_code(arbor_node_attr_set(t, "too-long", value), ARBOR_EINVAL); /* 256 */
  assert_code(arbor_node_attr_set(t, "", "x"), ARBOR_EINVAL);
  assert_code(arbor_node_attr_set(t, NULL, "x"), ARBOR_EINVAL);
  assert_code(arbor_node_attr_set(t, "x", NULL), ARBOR_EINVAL);
  assert_code(arbor_node_attr_set(NULL, "x", "y"), ARBOR_EINVAL);
  assert_null(arbor_node_attr_get(t, "too-long"));
  arbor_node_info(t, &info);
  assert_uint_eq(info.attributes, 5);

  /* at most 16 */
  for (i = 5; i < ARBOR_ATTRS_MAX; i++) {
    char name[16];
    snprintf(name, sizeof name, "a%d", i);
    assert_code(arbor_node_attr_set(t, name, "x"), 0);
  }
  arbor_node_info(t, &info);
  assert_uint_eq(info.attributes, ARBOR_ATTRS_MAX);
  assert_code(arbor_node_attr_set(t, "one-too-many", "x"), ARBOR_ENOSPC);
  assert_null(arbor_node_attr_get(t, "one-too-many"));
  arbor_node_info(t, &info);
  assert_uint_eq(info.attributes, ARBOR_ATTRS_MAX);
  assert_code(arbor_node_attr_at(t, ARBOR_ATTRS_MAX, &k, &v), ARBOR_ENOENT);
  assert_code(arbor_node_attr_at(t, ARBOR_ATTRS_MAX - 1, &k, &v), 0);
  assert_string_equal(k, "a15");
  arbor_test_close(rt, &loop);
}

/* Replacing an existing key is not adding one: allowed when 16 are set. */
static void observe_attribute_replace_when_full(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  int i;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  for (i = 0; i < ARBOR_ATTRS_MAX; i++) {
    char name[16];
    snprintf(name, sizeof name, "a%d", i);
    assert_code(arbor_node_attr_set(t, name, "x"), 0);
  }
  assert_code(arbor_node_attr_set(t, "a3", "replaced"), 0);
  assert_string_equal(arbor_node_attr_get(t, "a3"), "replaced");
  arbor_test_close(rt, &loop);
}

/* The tree as text: one line per node with kind, name, id, state, outcome, and the
 * error of a failed node. */
static void observe_tree_print(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p[2] = {{0}};
  arbor_node_t *g, *t[2];
  FILE *f;
  char buf[8192], id[32];
  size_t len;
  int lines = 0;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  g = arbor_test_group(arbor_root(rt), "the-group");
  t[0] = arbor_test_spawn(g, &p[0], "worker-alpha", 0);
  t[1] = arbor_test_spawn(arbor_root(rt), &p[1], "worker-beta", 0);
  arbor_test_run_until(&loop, p[0].starts && p[1].starts);
  assert_code(arbor_task_fail(t[1], -EIO, "beta exploded"), 0);
  arbor_test_run_until(&loop, p[1].finishes > 0);

  f = tmpfile();
  assert_non_null(f);
  assert_true(arbor_tree_print(arbor_root(rt), f) >= 0);
  rewind(f);
  len = fread(buf, 1, sizeof buf - 1, f);
  buf[len] = '\0';
  fclose(f);
  {
    const char *c;
    for (c = buf; *c; c++)
      lines += *c == '\n';
  }
  assert_true(lines >= 4);
  assert_non_null(strstr(buf, "the-group"));
  assert_non_null(strstr(buf, "worker-alpha"));
  assert_non_null(strstr(buf, "worker-beta"));
  assert_non_null(strstr(buf, "group"));
  assert_non_null(strstr(buf, "task"));
  assert_non_null(strstr(buf, "STARTED"));
  assert_non_null(strstr(buf, "FINISHED"));
  assert_non_null(strstr(buf, "FAILED"));
  assert_non_null(strstr(buf, "beta exploded"));
  snprintf(id, sizeof id, "%ju", (uintmax_t)arbor_node_id(t[0]));
  assert_non_null(strstr(buf, id));
  /* the group comes before its child, the child is indented more */
  assert_true(strstr(buf, "the-group") < strstr(buf, "worker-alpha"));
  {
    const char *a = strstr(buf, "the-group"), *b = strstr(buf, "worker-alpha");
    const char *la = a, *lb = b;
    while (la > buf && la[-1] != '\n')
      la--;
    while (lb > buf && lb[-1] != '\n')
      lb--;
    assert_true(strspn(lb, " ") > strspn(la, " "));
  }
  (void)g;
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(observe_find_by_id),
    cmocka_unit_test(observe_ids_never_reused),
    cmocka_unit_test(observe_children_paging),
    cmocka_unit_test(observe_walk_depth_limit),
    cmocka_unit_test(observe_walk_skip_and_stop),
    cmocka_unit_test(observe_node_info_fields),
    cmocka_unit_test(observe_failed_node_times),
    cmocka_unit_test(observe_attributes),
    cmocka_unit_test(observe_attribute_replace_when_full),
    cmocka_unit_test(observe_tree_print),
};

ARBOR_TEST_MAIN(tests)
