/* tests/http/test_metrics.c - GET /metrics (http/metrics.c) and the responses
 * by status it reports (http/server.c).
 *
 * Every test runs a real admin server on 127.0.0.1 and scrapes it with
 * tests/http/httpc.h. The text is read by a small parser of the Prometheus
 * text exposition format 0.0.4 below, which fails the test on anything a
 * scraper or promtool would reject or lint (a sample before its family's HELP
 * and TYPE, a sample of no declared family, a family split in two, a counter
 * not ending in _total, a histogram whose buckets are not cumulative or whose
 * +Inf is not its _count, a duplicate series, a bad escape). The values are
 * then looked up by name and labels and compared with what the test built and
 * with a walk of the tree of its own, never with expected text.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ------------------------------------------------- the exposition parser */

#define MAX_LABELS 8
#define MAX_FAMILIES 64

struct msample {
  char *name;
  int family;                    /* index into expo.fam */
  int nlabels;
  char *key[MAX_LABELS];
  char *val[MAX_LABELS];         /* unescaped */
  char *val_raw[MAX_LABELS];     /* as written (le: its exact text) */
  double value;
};

struct mfamily {
  char *name;
  char type[16];
  int help, typed;
  int nsamples;
};

struct expo {
  struct mfamily fam[MAX_FAMILIES];
  int nfam;
  struct msample *s;
  int ns, cap;
};

static int is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
static int is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

/* A metric or label name at *p: returns it (malloc'd) and advances, or NULL. */
static char *take_name(const char **p, int label) {
  const char *s = *p;
  if (!is_name_start(*s) || (label && *s == ':'))
    return NULL;
  while (is_name_char(*s) && !(label && *s == ':'))
    s++;
  char *n = strndup(*p, (size_t)(s - *p));
  assert_non_null(n);
  *p = s;
  return n;
}

static int family_find(struct expo *e, const char *name) {
  for (int i = 0; i < e->nfam; i++)
    if (strcmp(e->fam[i].name, name) == 0)
      return i;
  return -1;
}

/* The family a sample name belongs to: its own name, or a histogram's with
 * _bucket, _sum or _count. -1: none declared. */
static int family_of_sample(struct expo *e, const char *name) {
  int f = family_find(e, name);
  if (f >= 0 && strcmp(e->fam[f].type, "histogram") != 0)
    return f;
  static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
  size_t len = strlen(name);
  for (int i = 0; i < 3; i++) {
    size_t sl = strlen(suffixes[i]);
    if (len > sl && strcmp(name + len - sl, suffixes[i]) == 0) {
      char base[256];
      snprintf(base, sizeof base, "%.*s", (int)(len - sl), name);
      f = family_find(e, base);
      if (f >= 0 && strcmp(e->fam[f].type, "histogram") == 0)
        return f;
    }
  }
  return -1;
}

/* The family of a HELP or TYPE line: a new one, or the one just declared. A
 * family seen before whose samples began cannot be declared again. */
static int declare(struct expo *e, const char *name, int lineno) {
  int f = family_find(e, name);
  if (f >= 0) {
    if (e->fam[f].nsamples > 0)
      fail_msg("line %d: HELP/TYPE of %s after its samples", lineno, name);
    return f;
  }
  assert_true(e->nfam < MAX_FAMILIES);
  f = e->nfam++;
  e->fam[f].name = strdup(name);
  return f;
}

/* A label value's escapes (\\, \", \n; nothing else) undone. */
static char *unescape(const char *raw, size_t len, int lineno) {
  char *out = malloc(len + 1);
  assert_non_null(out);
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (raw[i] != '\\') {
      out[o++] = raw[i];
      continue;
    }
    i++;
    if (i < len && raw[i] == '\\')
      out[o++] = '\\';
    else if (i < len && raw[i] == '"')
      out[o++] = '"';
    else if (i < len && raw[i] == 'n')
      out[o++] = '\n';
    else
      fail_msg("line %d: bad escape in a label value", lineno);
  }
  out[o] = '\0';
  return out;
}

static void parse_sample(struct expo *e, const char *line, int lineno, int *current) {
  const char *p = line;
  char *name = take_name(&p, 0);
  if (name == NULL)
    fail_msg("line %d: no metric name: %s", lineno, line);
  int f = family_of_sample(e, name);
  if (f < 0)
    fail_msg("line %d: sample %s of no declared family", lineno, name);
  if (!e->fam[f].help || !e->fam[f].typed)
    fail_msg("line %d: sample %s before its family's HELP and TYPE", lineno, name);
  if (*current != f && e->fam[f].nsamples > 0)
    fail_msg("line %d: samples of %s are not together", lineno, e->fam[f].name);
  *current = f;
  if (e->ns == e->cap) {
    e->cap = e->cap ? e->cap * 2 : 256;
    e->s = realloc(e->s, (size_t)e->cap * sizeof *e->s);
    assert_non_null(e->s);
  }
  struct msample *s = &e->s[e->ns++];
  memset(s, 0, sizeof *s);
  s->name = name;
  s->family = f;
  e->fam[f].nsamples++;
  if (*p == '{') {
    p++;
    while (*p != '}') {
      if (s->nlabels == MAX_LABELS)
        fail_msg("line %d: too many labels", lineno);
      char *key = take_name(&p, 1);
      if (key == NULL || p[0] != '=' || p[1] != '"')
        fail_msg("line %d: bad label: %s", lineno, line);
      p += 2;
      const char *v = p;
      while (*p != '"') {
        if (*p == '\0')
          fail_msg("line %d: unterminated label value", lineno);
        p += *p == '\\' && p[1] != '\0' ? 2 : 1;
      }
      for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->key[i], key) == 0)
          fail_msg("line %d: label %s twice", lineno, key);
      s->key[s->nlabels] = key;
      s->val_raw[s->nlabels] = strndup(v, (size_t)(p - v));
      s->val[s->nlabels] = unescape(v, (size_t)(p - v), lineno);
      s->nlabels++;
      p++;
      if (*p == ',')
        p++;
      else if (*p != '}')
        fail_msg("line %d: expected , or } in %s", lineno, line);
    }
    p++;
  }
  if (*p != ' ')
    fail_msg("line %d: no space before the value: %s", lineno, line);
  p++;
  char *end;
  if (strcmp(p, "+Inf") == 0) {
    s->value = INFINITY;
  } else {
    s->value = strtod(p, &end);
    if (end == p || *end != '\0')     /* no timestamps: arbor writes none */
      fail_msg("line %d: bad value \"%s\"", lineno, p);
  }
}

/* Parses the whole text; every format rule failing fails the test. */
static void expo_parse(struct expo *e, const char *text) {
  memset(e, 0, sizeof *e);
  char *copy = strdup(text);
  assert_non_null(copy);
  int lineno = 0, current = -1;
  size_t tlen = strlen(text);
  if (tlen == 0 || text[tlen - 1] != '\n')
    fail_msg("the text does not end with a newline");
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    lineno++;
    if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
      int help = line[2] == 'H';
      const char *p = line + 7;
      char *name = take_name(&p, 0);
      if (name == NULL || *p != ' ' || p[1] == '\0')
        fail_msg("line %d: bad %s line: %s", lineno, help ? "HELP" : "TYPE", line);
      int f = declare(e, name, lineno);
      free(name);
      if (help) {
        if (e->fam[f].help)
          fail_msg("line %d: second HELP", lineno);
        e->fam[f].help = 1;
      } else {
        if (e->fam[f].typed)
          fail_msg("line %d: second TYPE", lineno);
        const char *t = p + 1;
        if (strcmp(t, "counter") != 0 && strcmp(t, "gauge") != 0 &&
            strcmp(t, "histogram") != 0 && strcmp(t, "summary") != 0 &&
            strcmp(t, "untyped") != 0)
          fail_msg("line %d: unknown type %s", lineno, t);
        snprintf(e->fam[f].type, sizeof e->fam[f].type, "%s", t);
        e->fam[f].typed = 1;
      }
      current = f;
    } else if (line[0] == '#') {
      fail_msg("line %d: a comment arbor does not write: %s", lineno, line);
    } else {
      parse_sample(e, line, lineno, &current);
    }
  }
  free(copy);
  for (int f = 0; f < e->nfam; f++) {
    if (!e->fam[f].help || !e->fam[f].typed)
      fail_msg("family %s lacks HELP or TYPE", e->fam[f].name);
    size_t len = strlen(e->fam[f].name);
    if (strcmp(e->fam[f].type, "counter") == 0 &&
        (len < 6 || strcmp(e->fam[f].name + len - 6, "_total") != 0))
      fail_msg("counter %s does not end in _total", e->fam[f].name);
  }
  /* No series twice: same name, same labels (arbor writes them in one order). */
  for (int i = 0; i < e->ns; i++)
    for (int j = i + 1; j < e->ns; j++) {
      struct msample *a = &e->s[i], *b = &e->s[j];
      if (strcmp(a->name, b->name) != 0 || a->nlabels != b->nlabels)
        continue;
      int same = 1;
      for (int k = 0; k < a->nlabels && same; k++)
        same = strcmp(a->key[k], b->key[k]) == 0 && strcmp(a->val[k], b->val[k]) == 0;
      if (same)
        fail_msg("series %s written twice", a->name);
    }
}

static void expo_free(struct expo *e) {
  for (int i = 0; i < e->ns; i++) {
    free(e->s[i].name);
    for (int k = 0; k < e->s[i].nlabels; k++) {
      free(e->s[i].key[k]);
      free(e->s[i].val[k]);
      free(e->s[i].val_raw[k]);
    }
  }
  free(e->s);
  for (int f = 0; f < e->nfam; f++)
    free(e->fam[f].name);
}

static const char *label_of(const struct msample *s, const char *key) {
  for (int k = 0; k < s->nlabels; k++)
    if (strcmp(s->key[k], key) == 0)
      return s->val[k];
  return NULL;
}

/* The sample named so whose labels are exactly the pairs given (key, value ...,
 * NULL), or NULL. */
static const struct msample *find_v(const struct expo *e, const char *name, va_list ap) {
  const char *kv[2 * MAX_LABELS];
  int n = 0;
  const char *k;
  while ((k = va_arg(ap, const char *)) != NULL && n < 2 * MAX_LABELS) {
    kv[n++] = k;
    kv[n++] = va_arg(ap, const char *);
  }
  for (int i = 0; i < e->ns; i++) {
    const struct msample *s = &e->s[i];
    if (strcmp(s->name, name) != 0 || s->nlabels != n / 2)
      continue;
    int ok = 1;
    for (int j = 0; j < n && ok; j += 2) {
      const char *v = label_of(s, kv[j]);
      ok = v != NULL && strcmp(v, kv[j + 1]) == 0;
    }
    if (ok)
      return s;
  }
  return NULL;
}

static const struct msample *find(const struct expo *e, const char *name, ...) {
  va_list ap;
  va_start(ap, name);
  const struct msample *s = find_v(e, name, ap);
  va_end(ap);
  return s;
}

/* The value of a sample that must be there (labels as find's). */
static double value(const struct expo *e, const char *name, ...) {
  va_list ap;
  va_start(ap, name);
  const struct msample *s = find_v(e, name, ap);
  va_end(ap);
  if (s == NULL)
    fail_msg("no sample %s with those labels", name);
  return s->value;
}

static const struct mfamily *family(const struct expo *e, const char *name) {
  int f = family_find((struct expo *)e, name);
  if (f < 0)
    fail_msg("no family %s", name);
  return &e->fam[f];
}

/* A histogram family with no labels but le: buckets in rising le order, counts
 * cumulative, the last le="+Inf" equal to _count, _sum present. Returns its
 * _count. */
static double check_histogram(const struct expo *e, const char *name) {
  char bucket[128], sum[128], count[128];
  snprintf(bucket, sizeof bucket, "%s_bucket", name);
  snprintf(sum, sizeof sum, "%s_sum", name);
  snprintf(count, sizeof count, "%s_count", name);
  assert_string_equal(family(e, name)->type, "histogram");
  double prev_le = -INFINITY, prev_n = 0;
  int buckets = 0, inf = 0;
  for (int i = 0; i < e->ns; i++) {
    const struct msample *s = &e->s[i];
    if (strcmp(s->name, bucket) != 0)
      continue;
    const char *le = label_of(s, "le");
    if (le == NULL || s->nlabels != 1)
      fail_msg("%s without le, or with other labels", bucket);
    if (inf)
      fail_msg("%s: a bucket after +Inf", bucket);
    double v = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
    if (!(v > prev_le))
      fail_msg("%s: le=\"%s\" not above the previous bucket", bucket, le);
    if (s->value < prev_n)
      fail_msg("%s: le=\"%s\" count %.0f below the previous %.0f: not cumulative", bucket, le,
               s->value, prev_n);
    prev_le = v;
    prev_n = s->value;
    inf = isinf(v);
    buckets++;
  }
  if (buckets == 0 || !inf)
    fail_msg("%s: no buckets or no +Inf", name);
  double n = value(e, count, NULL);
  value(e, sum, NULL);
  if (prev_n != n)
    fail_msg("%s: +Inf %.0f != _count %.0f", name, prev_n, n);
  return n;
}

/* A histogram's cumulative count at the bucket whose le is `le` seconds. */
static double bucket_at(const struct expo *e, const char *name, double le) {
  char bucket[128];
  snprintf(bucket, sizeof bucket, "%s_bucket", name);
  for (int i = 0; i < e->ns; i++)
    if (strcmp(e->s[i].name, bucket) == 0 && strtod(label_of(&e->s[i], "le"), NULL) == le)
      return e->s[i].value;
  fail_msg("%s: no bucket le=%g", name, le);
  return 0;
}

/* ------------------------------------------------------------ the world */

struct world {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  int port;
};

static void world_open(struct world *w, const arbor_admin_opts_t *aopts) {
  arbor_test_open(&w->loop, &w->rt, NULL);
  assert_code(arbor_admin_start(w->rt, aopts, &w->admin), 0);
  w->port = arbor_admin_port(w->admin);
  assert_true(w->port > 0);
}

static void world_close(struct world *w) { arbor_test_close(w->rt, &w->loop); }

/* One request; the caller frees body (never NULL) and content type. */
static long request(struct world *w, const char *method, const char *path,
                    const char *const *headers, char **body, char **ctype, char **allow) {
  char url[2600];
  long status = 0;
  char *hdrs = NULL;
  *body = NULL;
  httpc_url(url, sizeof url, w->port, path);
  assert_int_eq(httpc_request(&w->loop, method, url, strcmp(method, "POST") == 0 ? "" : NULL,
                              headers, &status, body, &hdrs),
                0);
  if (*body == NULL)
    *body = calloc(1, 1);
  if (ctype != NULL)
    *ctype = httpc_header(hdrs, "Content-Type");
  if (allow != NULL)
    *allow = httpc_header(hdrs, "Allow");
  free(hdrs);
  return status;
}

/* GET /metrics, parsed and checked by the parser. */
static void scrape(struct world *w, struct expo *e) {
  char *body, *ctype;
  long status = request(w, "GET", "/metrics", NULL, &body, &ctype, NULL);
  if (status != 200)
    fail_msg("GET /metrics: %ld: %s", status, body);
  assert_non_null(ctype);
  assert_string_equal(ctype, CONTENT_TYPE);
  expo_parse(e, body);
  free(body);
  free(ctype);
}

/* A fiber body that sleeps until cancelled. */
static int sleeper(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600 * 1000);
}

/* Fails its first `fail` runs at once, then sleeps until cancelled. */
struct flaky {
  int fail, runs;
};
static int flaky_body(arbor_ctx_t *cx, void *arg) {
  struct flaky *f = arg;
  if (f->runs++ < f->fail)
    return -EIO;
  return arbor_sleep(cx, 3600 * 1000);
}

/* Once cancelled, keeps stopping (shielded) until the test lets it go: stuck
 * past a short shutdown timeout. */
static atomic_int release_stubborn;
static int stubborn(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_sleep(cx, 3600 * 1000);
  arbor_scope_t s;
  arbor_scope_enter(cx, &s, &(arbor_scope_opts_t){.shield = 1});
  while (!atomic_load(&release_stubborn))
    arbor_sleep(cx, 1);
  arbor_scope_exit(cx, &s);
  return 0;
}

static arbor_node_t *service(arbor_node_t *parent, const arbor_service_spec_t *spec) {
  arbor_node_t *n = NULL;
  assert_code(arbor_service_add(parent, spec, &n), 0);
  return n;
}

static char id_text[8][24];
static const char *id_of(int slot, arbor_node_t *n) {
  snprintf(id_text[slot], sizeof id_text[slot], "%llu", (unsigned long long)arbor_node_id(n));
  return id_text[slot];
}

/* What a walk of the tree counts by itself, to compare the gauges with. */
struct census {
  uint64_t nodes[ARBOR_KIND_COUNT][ARBOR_STATE_COUNT];
  uint64_t finished[ARBOR_KIND_COUNT][ARBOR_OUTCOME_COUNT];
  uint64_t all[ARBOR_KIND_COUNT];
  uint64_t stuck;
};

static int census_visit(arbor_node_t *node, int depth, void *arg) {
  (void)depth;
  struct census *c = arg;
  arbor_node_info_t in;
  arbor_node_info(node, &in);
  c->nodes[in.kind][in.state]++;
  c->all[in.kind]++;
  if (in.state == ARBOR_STATE_FINISHED)
    c->finished[in.kind][in.outcome]++;
  else if (in.stuck)
    c->stuck++;
  return 0;
}

/* ------------------------------------------------------------ the tests */

/* Every family arbor promises, with its type; the parser has checked the
 * format rules on the whole text already. */
static void metrics_every_family_declared_with_help_and_type(void **state) {
  static const struct {
    const char *name, *type;
  } want[] = {
      {"arbor_nodes", "gauge"},
      {"arbor_nodes_created_total", "counter"},
      {"arbor_nodes_finished_total", "counter"},
      {"arbor_restarts_total", "counter"},
      {"arbor_failures_total", "counter"},
      {"arbor_cancellations_total", "counter"},
      {"arbor_events_recorded_total", "counter"},
      {"arbor_events_dropped_total", "counter"},
      {"arbor_event_ring_capacity", "gauge"},
      {"arbor_stuck_nodes", "gauge"},
      {"arbor_nodes_evicted_total", "counter"},
      {"arbor_fiber_stack_overflows_total", "counter"},
      {"arbor_restart_gap_seconds", "histogram"},
      {"arbor_task_lifetime_seconds", "histogram"},
      {"arbor_service_restarts_total", "counter"},
      {"arbor_service_up", "gauge"},
      {"arbor_service_cpu_seconds_total", "counter"},
      {"arbor_service_resident_memory_bytes", "gauge"},
      {"arbor_service_open_fds", "gauge"},
      {"arbor_service_threads", "gauge"},
      {"arbor_service_processes", "gauge"},
      {"arbor_service_memory_limit_bytes", "gauge"},
      {"arbor_service_memory_limit_exceeded_total", "counter"},
      {"arbor_service_ready", "gauge"},
      {"arbor_probe_results_total", "counter"},
      {"arbor_probe_up", "gauge"},
      {"arbor_probe_duration_seconds", "gauge"},
      {"arbor_admin_http_requests_total", "counter"},
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_start_time_seconds", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
  };
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  scrape(&w, &e);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    assert_string_equal(family(&e, want[i].name)->type, want[i].type);
  /* Every kind x state is there (zeros too: a series does not come and go). */
  for (int k = 0; k < ARBOR_KIND_COUNT; k++)
    for (int s = 0; s < ARBOR_STATE_COUNT; s++)
      value(&e, "arbor_nodes", "kind", arbor_kind_name((arbor_kind_t)k), "state",
            arbor_state_name((arbor_state_t)s), NULL);
  assert_true(value(&e, "arbor_event_ring_capacity", NULL) > 0);
  expo_free(&e);
  world_close(&w);
}

/* A supervisor whose service fails N times, a cancelled task, a stuck service:
 * the counters say N restarts and N failures, the gauges match a walk of the
 * tree kind by kind and state by state, the per-service series name each live
 * service, and the histograms are cumulative with +Inf == _count. */
static void metrics_values_match_the_tree(void **state) {
  enum { N = 3 };
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  arbor_node_t *root = arbor_root(w.rt), *sup = NULL;
  assert_code(arbor_supervisor_new(root,
                                   &(arbor_sup_opts_t){.name = "sup", .intensity = 10,
                                                       .period_ms = 60000, .backoff_ms = 20,
                                                       .backoff_max_ms = 1000, .no_jitter = 1},
                                   &sup),
              0);
  struct flaky fl = {.fail = N};
  arbor_node_t *flaky = service(sup, &(arbor_service_spec_t){.name = "flaky", .fiber = flaky_body,
                                                             .arg = &fl});
  arbor_node_t *steady = service(sup, &(arbor_service_spec_t){.name = "steady", .fiber = sleeper});
  arbor_node_t *victim = NULL;
  assert_code(arbor_fiber_spawn(root, &(arbor_fiber_spec_t){.name = "victim", .fn = sleeper},
                                &victim),
              0);
  arbor_node_ref(victim);
  atomic_store(&release_stubborn, 0);
  arbor_node_t *stuck = service(root, &(arbor_service_spec_t){.name = "stubborn", .fiber = stubborn,
                                                              .shutdown_timeout_ms = 10});
  arbor_node_ref(stuck);
  arbor_test_run_ticking_until(&w.loop, arbor_test_service_parked(flaky) && arbor_test_service_parked(steady) && arbor_test_service_parked(stuck) &&
                                 fl.runs == N + 1);
  assert_code(arbor_node_cancel(victim), 0);
  assert_code(arbor_node_cancel(stuck), 0);
  arbor_test_run_ticking_until(&w.loop, arbor_node_is_finished(victim) && arbor_node_is_stuck(stuck));

  scrape(&w, &e);
  struct census c = {0};
  arbor_tree_walk(root, -1, census_visit, &c);

  assert_int_eq(value(&e, "arbor_restarts_total", NULL), N);
  assert_int_eq(value(&e, "arbor_failures_total", NULL), N);
  arbor_stats_t st;
  arbor_runtime_stats(w.rt, &st);
  assert_true(value(&e, "arbor_cancellations_total", NULL) >= 2);   /* victim, stubborn */
  assert_uint_eq(value(&e, "arbor_cancellations_total", NULL), st.events[ARBOR_EVENT_CANCEL]);
  assert_int_eq(value(&e, "arbor_nodes_evicted_total", NULL), 0);
  assert_int_eq(value(&e, "arbor_fiber_stack_overflows_total", NULL), 0);
  /* Nothing was evicted, so the walk sees every node ever created. */
  for (int k = 0; k < ARBOR_KIND_COUNT; k++) {
    const char *kind = arbor_kind_name((arbor_kind_t)k);
    assert_uint_eq(value(&e, "arbor_nodes_created_total", "kind", kind, NULL), c.all[k]);
    for (int s = 0; s < ARBOR_STATE_COUNT; s++)
      assert_uint_eq(value(&e, "arbor_nodes", "kind", kind, "state",
                           arbor_state_name((arbor_state_t)s), NULL),
                     c.nodes[k][s]);
    for (int o = ARBOR_OUTCOME_OK; o < ARBOR_OUTCOME_COUNT; o++)
      assert_uint_eq(value(&e, "arbor_nodes_finished_total", "kind", kind, "outcome",
                           arbor_outcome_name((arbor_outcome_t)o), NULL),
                     c.finished[k][o]);
  }
  assert_int_eq(value(&e, "arbor_nodes_finished_total", "kind", "task", "outcome", "FAILED",
                      NULL),
                N);
  assert_true(value(&e, "arbor_nodes_finished_total", "kind", "task", "outcome", "CANCELLED",
                    NULL) >= 1);
  assert_true(c.stuck >= 1);
  assert_uint_eq(value(&e, "arbor_stuck_nodes", NULL), c.stuck);

  /* Per service: every live one, by name and id; up while its run is STARTED. */
  assert_int_eq(value(&e, "arbor_service_restarts_total", "service", "flaky", "id",
                      id_of(0, flaky), NULL),
                N);
  assert_int_eq(value(&e, "arbor_service_restarts_total", "service", "steady", "id",
                      id_of(1, steady), NULL),
                0);
  assert_int_eq(value(&e, "arbor_service_up", "service", "flaky", "id", id_of(0, flaky), NULL), 1);
  assert_int_eq(value(&e, "arbor_service_up", "service", "steady", "id", id_of(1, steady), NULL),
                1);
  assert_int_eq(value(&e, "arbor_service_up", "service", "stubborn", "id", id_of(2, stuck), NULL),
                0);                               /* stopping */
  assert_int_eq(family(&e, "arbor_service_up")->nsamples, 3);

  /* Histograms: N restart gaps, each at least most of its 20, 40, 80 ms backoff. */
  assert_int_eq(check_histogram(&e, "arbor_restart_gap_seconds"), N);
  assert_int_eq(bucket_at(&e, "arbor_restart_gap_seconds", 0.005), 0);
  assert_true(value(&e, "arbor_restart_gap_seconds_sum", NULL) >= N * 0.015);
  double tasks_finished = 0;
  for (int o = ARBOR_OUTCOME_OK; o < ARBOR_OUTCOME_COUNT; o++)
    tasks_finished += c.finished[ARBOR_KIND_TASK][o] + c.finished[ARBOR_KIND_PROCESS][o];
  assert_true(tasks_finished >= N + 1);
  assert_int_eq(check_histogram(&e, "arbor_task_lifetime_seconds"), tasks_finished);
  expo_free(&e);

  /* Released, the stubborn service finishes: no longer stuck, no longer listed. */
  atomic_store(&release_stubborn, 1);
  arbor_test_run_ticking_until(&w.loop, arbor_node_is_finished(stuck));
  scrape(&w, &e);
  assert_int_eq(value(&e, "arbor_stuck_nodes", NULL), 0);
  assert_null(find(&e, "arbor_service_up", "service", "stubborn", "id", id_of(2, stuck), NULL));
  assert_int_eq(family(&e, "arbor_service_up")->nsamples, 2);
  expo_free(&e);
  arbor_node_unref(victim);
  arbor_node_unref(stuck);
  world_close(&w);
}

/* Each le is exact decimal seconds of the core's bound (the text Go's client
 * writes: shortest digits, "1e-06" below 1e-4), so it is the same at every
 * scrape. */
static void metrics_histogram_le_exact_seconds(void **state) {
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  scrape(&w, &e);
  size_t i = 0;
  for (int j = 0; j < e.ns; j++) {
    const struct msample *s = &e.s[j];
    if (strcmp(s->name, "arbor_task_lifetime_seconds_bucket") != 0)
      continue;
    const char *le = s->val_raw[0];
    if (i == ARBOR_HISTOGRAM_BUCKETS) {
      assert_string_equal(le, "+Inf");
      i++;
      continue;
    }
    /* The text read back as a decimal is the bound in ns, exactly. */
    uint64_t ns = arbor_histogram_bound_ns(i);
    double back = strtod(le, NULL) * 1e9;
    if (fabs(back - (double)ns) > (double)ns * 1e-12)
      fail_msg("le=\"%s\" is not %llu ns", le, (unsigned long long)ns);
    /* The shortest form: no trailing zeros, no "+" in an exponent, exponent
     * form exactly below 1e-4. */
    const char *dot = strchr(le, '.');
    const char *exp = strchr(le, 'e');
    if (dot != NULL && exp == NULL && le[strlen(le) - 1] == '0')
      fail_msg("le=\"%s\" has trailing zeros", le);
    if ((exp != NULL) != (ns < 100000))
      fail_msg("le=\"%s\": exponent form iff below 1e-4 s", le);
    if (exp != NULL && (exp[1] != '-' || strlen(exp + 2) < 2))
      fail_msg("le=\"%s\": exponent not as e-NN", le);
    i++;
  }
  assert_int_eq(i, ARBOR_HISTOGRAM_BUCKETS + 1);
  expo_free(&e);
  world_close(&w);
}

/* Responses are counted by status where they are queued, also those no
 * handler saw: 401 (a POST without the token), 404, 405, 414. */
static void metrics_requests_counted_by_status(void **state) {
  struct world w;
  struct expo e;
  char *body, *long_path;
  world_open(&w, &(arbor_admin_opts_t){.token = "s3cret", .max_url = 256});
  assert_int_eq(request(&w, "GET", "/healthz", NULL, &body, NULL, NULL), 200);
  free(body);
  assert_int_eq(request(&w, "GET", "/nope", NULL, &body, NULL, NULL), 404);
  free(body);
  assert_int_eq(request(&w, "GET", "/nope/again", NULL, &body, NULL, NULL), 404);
  free(body);
  assert_int_eq(request(&w, "POST", "/metrics", NULL, &body, NULL, NULL), 405);
  free(body);
  assert_int_eq(request(&w, "POST", "/api/v1/nodes/1/cancel", NULL, &body, NULL, NULL), 401);
  free(body);
  long_path = malloc(400);
  assert_non_null(long_path);
  memset(long_path, 'a', 399);
  long_path[0] = '/';
  long_path[399] = '\0';
  assert_int_eq(request(&w, "GET", long_path, NULL, &body, NULL, NULL), 414);
  free(body);
  free(long_path);

  scrape(&w, &e);
  assert_string_equal(family(&e, "arbor_admin_http_requests_total")->type, "counter");
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "200", NULL), 1);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "404", NULL), 2);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "405", NULL), 1);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "401", NULL), 1);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "414", NULL), 1);
  assert_null(find(&e, "arbor_admin_http_requests_total", "code", "500", NULL));
  expo_free(&e);
  /* The scrape itself counts from the next one on. */
  scrape(&w, &e);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "200", NULL), 2);
  expo_free(&e);
  world_close(&w);
}

/* The other two answers no handler sees: 413 (a body over max_body) and 503
 * (a connection over max_connections), each counted as the client saw it. */
static void metrics_requests_counted_413_and_503(void **state) {
  struct world w;
  struct expo e;
  char *body, url[128], big[100];
  long status;
  world_open(&w, &(arbor_admin_opts_t){.token = "s3cret", .max_body = 16, .max_connections = 1});
  static const char *const auth[] = {"Authorization: Bearer s3cret", NULL};
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  httpc_url(url, sizeof url, w.port, "/api/v1/nodes/1/cancel");
  assert_int_eq(httpc_request(&w.loop, "POST", url, big, auth, &status, &body, NULL), 0);
  assert_int_eq(status, 413);
  free(body);
  /* A connection that sends nothing holds the only slot (it is in the listen
   * backlog before curl's, so it is accepted first). */
  int fd = httpc_connect_raw(w.port);
  assert_true(fd >= 0);
  assert_int_eq(request(&w, "GET", "/healthz", NULL, &body, NULL, NULL), 503);
  free(body);
  int busy = 1;
  close(fd);
  /* The slot comes back once the server has seen the close. */
  while ((status = request(&w, "GET", "/healthz", NULL, &body, NULL, NULL)) == 503) {
    busy++;
    free(body);
  }
  free(body);
  assert_int_eq(status, 200);
  scrape(&w, &e);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "413", NULL), 1);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "503", NULL), busy);
  assert_int_eq(value(&e, "arbor_admin_http_requests_total", "code", "200", NULL), 1);
  expo_free(&e);
  world_close(&w);
}

/* A service name with a quote, a backslash, a newline, UTF-8 and a byte that
 * is not UTF-8: escaped as the format says, read back as the name (the bad
 * byte as U+FFFD). */
static void metrics_label_values_escaped(void **state) {
  static const char odd[] = "we\"ird\\na\nme \xC3\xBC\xE2\x82\xAC";
  static const char bad[] = "bad\xFF" "byte";
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  arbor_node_t *sup = NULL;
  assert_code(arbor_supervisor_new(arbor_root(w.rt), &(arbor_sup_opts_t){.name = "sup"}, &sup), 0);
  arbor_node_t *a = service(sup, &(arbor_service_spec_t){.name = odd, .fiber = sleeper});
  arbor_node_t *b = service(sup, &(arbor_service_spec_t){.name = bad, .fiber = sleeper});
  arbor_test_run_ticking_until(&w.loop, arbor_test_service_parked(a) && arbor_test_service_parked(b));
  scrape(&w, &e);
  assert_int_eq(value(&e, "arbor_service_up", "service", odd, "id", id_of(0, a), NULL), 1);
  assert_int_eq(value(&e, "arbor_service_restarts_total", "service", odd, "id", id_of(0, a), NULL),
                0);
  const struct msample *s = find(&e, "arbor_service_up", "service", odd, "id", id_of(0, a), NULL);
  assert_string_equal(s->val_raw[0], "we\\\"ird\\\\na\\nme \xC3\xBC\xE2\x82\xAC");
  assert_int_eq(value(&e, "arbor_service_up", "service", "bad\xEF\xBF\xBD" "byte", "id",
                      id_of(1, b), NULL),
                1);
  expo_free(&e);
  world_close(&w);
}

/* HEAD: the headers of GET, no body. POST: 405 allowing GET and HEAD. */
static void metrics_head_no_body_post_not_allowed(void **state) {
  struct world w;
  char *body, *ctype, *allow;
  world_open(&w, NULL);
  assert_int_eq(request(&w, "HEAD", "/metrics", NULL, &body, &ctype, NULL), 200);
  assert_string_equal(body, "");
  assert_non_null(ctype);
  assert_string_equal(ctype, CONTENT_TYPE);
  free(body);
  free(ctype);
  assert_int_eq(request(&w, "POST", "/metrics", NULL, &body, NULL, &allow), 405);
  assert_non_null(allow);
  assert_string_equal(allow, "GET, HEAD");
  assert_non_null(strstr(body, "method_not_allowed"));
  free(body);
  free(allow);
  world_close(&w);
}

/* The process_* family, as the client libraries define it: plausible values
 * of this very process, and open fds that follow what it opens. */
static void metrics_process_metrics_of_this_process(void **state) {
  enum { EXTRA = 20 };
  struct world w;
  struct expo e;
  int fds[EXTRA];
  world_open(&w, NULL);
  scrape(&w, &e);
  double open1 = value(&e, "process_open_fds", NULL);
  double max = value(&e, "process_max_fds", NULL);
  assert_true(open1 >= 3 && open1 <= max);
  assert_true(value(&e, "process_resident_memory_bytes", NULL) > 0);
  assert_true(value(&e, "process_virtual_memory_bytes", NULL) >=
              value(&e, "process_resident_memory_bytes", NULL));
  assert_true(value(&e, "process_cpu_seconds_total", NULL) >= 0);
  double start = value(&e, "process_start_time_seconds", NULL);
  double now = (double)time(NULL);
  assert_true(start <= now + 1 && start >= now - 24 * 3600);
  expo_free(&e);

  for (int i = 0; i < EXTRA; i++)
    assert_true((fds[i] = dup(0)) >= 0);
  scrape(&w, &e);
  double open2 = value(&e, "process_open_fds", NULL);
  for (int i = 0; i < EXTRA; i++)
    close(fds[i]);
  /* A connection of the client's may come or go between the scrapes. */
  assert_true(open2 >= open1 + EXTRA - 2 && open2 <= open1 + EXTRA + 2);
  expo_free(&e);
  world_close(&w);
}

/* A service waiting in its backoff is down; its sibling is up. */
static void metrics_service_up_zero_in_backoff(void **state) {
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  arbor_node_t *sup = NULL;
  assert_code(arbor_supervisor_new(arbor_root(w.rt),
                                   &(arbor_sup_opts_t){.name = "sup", .backoff_ms = 3600 * 1000},
                                   &sup),
              0);
  struct flaky fl = {.fail = 1000};
  arbor_node_t *steady = service(sup, &(arbor_service_spec_t){.name = "steady", .fiber = sleeper});
  arbor_node_t *down = service(sup, &(arbor_service_spec_t){.name = "down", .fiber = flaky_body,
                                                            .arg = &fl});
  arbor_service_info_t si;
  arbor_test_run_ticking_until(&w.loop, arbor_test_service_parked(steady) && arbor_service_info(down, &si) == 0 &&
                                 si.phase == ARBOR_PHASE_BACKOFF);
  scrape(&w, &e);
  assert_int_eq(value(&e, "arbor_service_up", "service", "steady", "id", id_of(0, steady), NULL),
                1);
  assert_int_eq(value(&e, "arbor_service_up", "service", "down", "id", id_of(1, down), NULL), 0);
  assert_int_eq(value(&e, "arbor_failures_total", NULL), 1);
  expo_free(&e);
  world_close(&w);
}

/* The resource families: a sample for each process service with a running
 * program, plausible against /proc (a shell and its one sleep: two processes,
 * two threads, at least stdin, stdout and stderr each), none for a fiber
 * service; and the same figures in the node's JSON (tests/http/test_api.c). */
static void metrics_service_usage_of_process_services(void **state) {
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  char *argv[] = {"/bin/sh", "-c", "sleep 30 & echo >&3; wait", NULL};
  arbor_node_t *proc = service(arbor_root(w.rt), &(arbor_service_spec_t){
                                                     .name = "worker", .argv = argv,
                                                     .notify_fd = 3});
  arbor_node_t *fib = service(arbor_root(w.rt), &(arbor_service_spec_t){.name = "fiber",
                                                                        .fiber = sleeper});
  arbor_test_run_ticking_until(&w.loop, arbor_node_state(proc) == ARBOR_STATE_STARTED && arbor_test_service_parked(fib));
  scrape(&w, &e);
  const char *id = id_of(0, proc);
  assert_int_eq(value(&e, "arbor_service_processes", "service", "worker", "id", id, NULL), 2);
  assert_int_eq(value(&e, "arbor_service_threads", "service", "worker", "id", id, NULL), 2);
  assert_true(value(&e, "arbor_service_open_fds", "service", "worker", "id", id, NULL) >= 6);
  assert_true(value(&e, "arbor_service_resident_memory_bytes", "service", "worker", "id", id,
                    NULL) > 0);
  assert_true(value(&e, "arbor_service_cpu_seconds_total", "service", "worker", "id", id,
                    NULL) >= 0);
  static const char *const fams[] = {"arbor_service_cpu_seconds_total",
                                     "arbor_service_resident_memory_bytes",
                                     "arbor_service_open_fds", "arbor_service_threads",
                                     "arbor_service_processes"};
  for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
    assert_int_eq(family(&e, fams[i])->nsamples, 1);   /* the fiber service has none */
    assert_null(find(&e, fams[i], "service", "fiber", "id", id_of(1, fib), NULL));
  }
  expo_free(&e);
  world_close(&w);
}

/* A process service with max_memory has its limit and its exceeded count;
 * one without has neither. */
static void metrics_service_memory_limit(void **state) {
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  char *argv[] = {"/bin/sleep", "30", NULL};
  arbor_node_t *lim = service(arbor_root(w.rt), &(arbor_service_spec_t){
                                                    .name = "limited", .argv = argv,
                                                    .max_memory = 64u << 20});
  arbor_node_t *plain = service(arbor_root(w.rt), &(arbor_service_spec_t){.name = "plain",
                                                                          .argv = argv});
  arbor_test_run_ticking_until(&w.loop, arbor_node_state(lim) == ARBOR_STATE_STARTED &&
                                            arbor_node_state(plain) == ARBOR_STATE_STARTED);
  scrape(&w, &e);
  const char *id = id_of(0, lim);
  assert_int_eq(value(&e, "arbor_service_memory_limit_bytes", "service", "limited", "id", id,
                      NULL),
                64u << 20);
  assert_int_eq(value(&e, "arbor_service_memory_limit_exceeded_total", "service", "limited",
                      "id", id, NULL),
                0);
  assert_int_eq(family(&e, "arbor_service_memory_limit_bytes")->nsamples, 1);
  assert_int_eq(family(&e, "arbor_service_memory_limit_exceeded_total")->nsamples, 1);
  expo_free(&e);
  world_close(&w);
}

/* The probe families: results by probe and result, the verdict, the last
 * duration; arbor_service_ready for every service. A refused TCP liveness probe
 * below its threshold and an exec readiness probe that passes. */
static void metrics_probe_families(void **state) {
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  char *ok[] = {"true", NULL};
  arbor_health_probe_t live = {.kind = ARBOR_PROBE_TCP, .port = 1, .interval_ms = 5,
                               .failure_threshold = 1000000};
  arbor_health_probe_t ready = {.kind = ARBOR_PROBE_EXEC, .argv = ok, .interval_ms = 5};
  arbor_node_t *svc = service(arbor_root(w.rt),
                              &(arbor_service_spec_t){.name = "probed", .fiber = sleeper,
                                                      .liveness = &live, .readiness = &ready});
  arbor_node_t *plain = service(arbor_root(w.rt),
                                &(arbor_service_spec_t){.name = "plain", .fiber = sleeper});
  arbor_probe_info_t li;
  arbor_test_run_ticking_until(&w.loop, arbor_node_state(svc) == ARBOR_STATE_STARTED &&
                                            arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS,
                                                                     &li) == 0 &&
                                            li.failures >= 2);
  scrape(&w, &e);
  const char *id = id_of(0, svc);
  assert_true(value(&e, "arbor_probe_results_total", "service", "probed", "id", id, "probe",
                    "liveness", "result", "failure", NULL) >= 2);
  assert_int_eq(value(&e, "arbor_probe_results_total", "service", "probed", "id", id, "probe",
                      "liveness", "result", "success", NULL), 0);
  assert_int_eq(value(&e, "arbor_probe_results_total", "service", "probed", "id", id, "probe",
                      "liveness", "result", "timeout", NULL), 0);
  assert_true(value(&e, "arbor_probe_results_total", "service", "probed", "id", id, "probe",
                    "readiness", "result", "success", NULL) >= 1);
  assert_int_eq(value(&e, "arbor_probe_up", "service", "probed", "id", id, "probe", "liveness",
                      NULL), 1);
  assert_int_eq(value(&e, "arbor_probe_up", "service", "probed", "id", id, "probe", "readiness",
                      NULL), 1);
  assert_true(value(&e, "arbor_probe_duration_seconds", "service", "probed", "id", id, "probe",
                    "readiness", NULL) > 0);
  assert_int_eq(value(&e, "arbor_service_ready", "service", "probed", "id", id, NULL), 1);
  assert_null(find(&e, "arbor_probe_up", "service", "plain", "id", id_of(1, plain), "probe",
                   "liveness", NULL));
  expo_free(&e);
  world_close(&w);
}

/* A port nobody listens on: bound, then closed. */
static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

static int otlp_queued(arbor_otlp_t *o, uint64_t n) {
  arbor_otlp_stats_t s;
  arbor_otlp_stats(o, &s);
  return s.spans_queued == n;
}

/* The OTLP push exporter's families are there while the runtime has one, with
 * its numbers, and gone without it. */
static void metrics_otlp_families_while_exporter_runs(void **state) {
  static const char *const names[] = {
      "arbor_otlp_spans_queued_total", "arbor_otlp_spans_exported_total",
      "arbor_otlp_spans_dropped_total", "arbor_otlp_requests_total",
      "arbor_otlp_requests_failed_total", "arbor_otlp_events_missed_total",
      "arbor_otlp_queue_spans", "arbor_otlp_queue_bytes"};
  struct world w;
  struct expo e;
  world_open(&w, NULL);
  scrape(&w, &e);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    assert_int_eq(family_find(&e, names[i]), -1);
  expo_free(&e);

  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", closed_port());
  arbor_otlp_t *otlp = NULL;
  /* A batch would wait an hour: the spans stay queued, nothing is sent. */
  assert_code(arbor_otlp_start(w.rt, &(arbor_otlp_opts_t){.endpoint = endpoint,
                                                          .flush_ms = 3600 * 1000},
                               &otlp),
              0);
  static arbor_probe_t p = {.done_in_start = 1};
  for (int i = 0; i < 3; i++)
    arbor_test_spawn(arbor_root(w.rt), &p, "done", 0);
  arbor_test_run_ticking_until(&w.loop, otlp_queued(otlp, 3));
  arbor_otlp_stats_t st;
  arbor_otlp_stats(otlp, &st);
  assert_true(st.queue_bytes > 0);
  scrape(&w, &e);
  assert_string_equal(family(&e, "arbor_otlp_spans_queued_total")->type, "counter");
  assert_string_equal(family(&e, "arbor_otlp_queue_spans")->type, "gauge");
  assert_int_eq(value(&e, "arbor_otlp_spans_queued_total", NULL), 3);
  assert_int_eq(value(&e, "arbor_otlp_spans_exported_total", NULL), 0);
  assert_int_eq(value(&e, "arbor_otlp_spans_dropped_total", NULL), 0);
  assert_int_eq(value(&e, "arbor_otlp_requests_total", NULL), 0);
  assert_int_eq(value(&e, "arbor_otlp_requests_failed_total", NULL), 0);
  assert_int_eq(value(&e, "arbor_otlp_events_missed_total", NULL), 0);
  assert_int_eq(value(&e, "arbor_otlp_queue_spans", NULL), 3);
  assert_int_eq(value(&e, "arbor_otlp_queue_bytes", NULL), (intmax_t)st.queue_bytes);
  expo_free(&e);

  assert_code(arbor_otlp_stop(otlp), 0);
  scrape(&w, &e);
  assert_int_eq(family_find(&e, "arbor_otlp_spans_queued_total"), -1);
  expo_free(&e);
  world_close(&w);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(metrics_every_family_declared_with_help_and_type),
    cmocka_unit_test(metrics_probe_families),
    cmocka_unit_test(metrics_values_match_the_tree),
    cmocka_unit_test(metrics_histogram_le_exact_seconds),
    cmocka_unit_test(metrics_requests_counted_by_status),
    cmocka_unit_test(metrics_requests_counted_413_and_503),
    cmocka_unit_test(metrics_label_values_escaped),
    cmocka_unit_test(metrics_head_no_body_post_not_allowed),
    cmocka_unit_test(metrics_process_metrics_of_this_process),
    cmocka_unit_test(metrics_service_up_zero_in_backoff),
    cmocka_unit_test(metrics_service_usage_of_process_services),
    cmocka_unit_test(metrics_service_memory_limit),
    cmocka_unit_test(metrics_otlp_families_while_exporter_runs),
};

ARBOR_TEST_MAIN(tests)
