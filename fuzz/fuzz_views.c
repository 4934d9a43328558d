/* fuzz/fuzz_views.c - every view of the tree, with names, attributes and error
 * messages taken from the input: control characters, invalid UTF-8, quotes and
 * backslashes, and names made very long (up to 16 KiB) by repetition.
 *
 * Byte 0 chooses the view this input is rendered through (below); byte 1 says
 * how often piece 0 is repeated (0..255 times) and which error code the
 * failure has; the rest is up to 12 NUL-separated pieces:
 *   root
 *   ├── group  p0 x rep   attr p2=p3, running
 *   │   └── task  p1      attrs p4=p5, running
 *   ├── group  p6         failed
 *   │   └── task  p7      failed: error p9 whose cause is error p8 (with p10 as
 *   │                     its file name)
 *   └── task  p11         done
 * The views, each output checked as strict JSON (fz_check_json: valid UTF-8, no
 * raw control character, cJSON parses it) or as Prometheus text:
 *   0 GET /api/v1/tree's body (http_tree_write), whole;
 *   1 every node with jw (jw_node_fields), which must be byte for byte what
 *     json.c's cJSON builder gives (http/jw.h promises it);
 *   2 the Chrome trace, 3 the OTLP trace (arbor_trace_write);
 *   4 over HTTP, GET /metrics;
 *   5 over HTTP, every event of GET /api/v1/events?after=0;
 *   6 over HTTP, GET /api/v1/nodes/{id} of the failed task and of the
 *     long-named group.
 * One view per input, not all seven: rendering them all cost 2.4 ms an input
 * under ASan (400 a second), while the views share nothing an input could
 * steer differently; chosen by the input, each view gets its own coverage
 * feedback at about five times the executions. The committed seeds come once
 * per view (fuzz/corpus/views/<seed>.<view>), so a replay renders every view.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jw.h"
#include "support.h"

#define PIECES 12
#define LONG_MAX_BYTES (16 * 1024)

enum view { V_TREE, V_NODES, V_CHROME, V_OTLP, V_METRICS, V_EVENTS, V_DETAIL, V_COUNT };

struct input {
  enum view view;
  char *p[PIECES];               /* NUL-terminated copies; "" when missing */
  char *long_name;
  int code;
};

static int start_running(arbor_node_t *t, void *arg) {
  (void)t;
  (void)arg;
  return 0;
}

static int start_done(arbor_node_t *t, void *arg) {
  (void)arg;
  arbor_task_done(t);
  return 0;
}

static int start_failing(arbor_node_t *t, void *arg) {
  struct input *in = arg;
  arbor_error_t *cause = arbor_error_new_at(in->code, NULL, in->p[10], 7, in->p[1], "%s", in->p[8]);
  arbor_task_fail_error(t, arbor_error_new_at(-EIO, cause, "views.c", 9, "load", "%s", in->p[9]));
  return 0;
}

static void split(const unsigned char *data, size_t size, struct input *in) {
  memset(in, 0, sizeof *in);
  in->view = size > 0 ? (enum view)(data[0] % V_COUNT) : V_TREE;
  if (size > 0)
    data++, size--;
  unsigned rep = size > 0 ? data[0] : 1;
  static const int codes[] = {-EIO, ARBOR_ENOENT, ARBOR_ECANCELED, -EINVAL, 0, 1, -99999};
  in->code = codes[rep % 7];
  const char *d = size > 0 ? (const char *)data + 1 : "";
  size_t n = size > 0 ? size - 1 : 0;
  for (int i = 0; i < PIECES; i++) {
    const char *z = n > 0 ? memchr(d, '\0', n) : NULL;
    size_t len = z != NULL ? (size_t)(z - d) : n;
    in->p[i] = strndup(d, len);
    if (in->p[i] == NULL)
      fz_die("out of memory");
    d += len + (z != NULL), n -= len + (z != NULL);
  }
  size_t plen = strlen(in->p[0]);
  if (plen > 0 && rep * plen > LONG_MAX_BYTES)
    rep = (unsigned)(LONG_MAX_BYTES / plen);
  in->long_name = malloc(rep * plen + 1);
  if (in->long_name == NULL)
    fz_die("out of memory");
  for (unsigned i = 0; i < rep; i++)
    memcpy(in->long_name + i * plen, in->p[0], plen);
  in->long_name[rep * plen] = '\0';
}

/* jw's node and cJSON's node, the same bytes, each strict JSON. */
static void check_node(arbor_node_t *node) {
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = http_jnode(&cx, node);
  if (o == NULL)
    fz_die("http_jnode: NULL");
  char *want = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  struct jw w;
  jw_init(&w, 0);
  http_jcx_init(&cx, 0, 0);
  jw_node_fields(&w, &cx, node);   /* opens the object, leaves it open */
  jw_obj_end(&w);
  size_t len;
  const char *got = jw_text(&w, &len);
  if (got == NULL || want == NULL)
    fz_die("a node could not be written");
  fz_check_json("node (jw)", got, len);
  if (strcmp(got, want) != 0) {
    size_t k = 0;
    while (got[k] == want[k])
      k++;
    fprintf(stderr, "jw:    %s\ncJSON: %s\n", got, want);
    fz_die("jw and cJSON differ at byte %zu (of %zu and %zu)", k, strlen(got), strlen(want));
  }
  free(want);
  jw_free(&w);
}

static void check_trace(arbor_runtime_t *rt, arbor_trace_format_t format, const char *what) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (f == NULL)
    fz_die("open_memstream");
  int rc = arbor_trace_write(rt, format, f);
  fclose(f);
  if (rc != 0)
    fz_die("%s: arbor_trace_write: %s", what, arbor_err_name(rc));
  fz_check_json(what, text, len);
  free(text);
}

static struct fz_resp get(struct fz_loop *l, arbor_admin_t *admin, const char *target) {
  char req[256];
  /* HTTP/1.0: the body comes unchunked, and ends with the connection. */
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", target);
  struct fz_resp r;
  fz_http_roundtrip(l, admin, req, (size_t)n, 0, &r);
  if (r.status != 200 || r.body == NULL)
    fz_die("GET %s: status %u", target, r.status);
  return r;
}

static void check_events(const struct fz_resp *r) {
  const char *p = r->body, *end = r->body + r->body_len;
  int seen = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
      break;                     /* cut mid-line: the rest of a stream */
    if (nl - p >= 6 && memcmp(p, "data: ", 6) == 0) {
      fz_check_json("SSE event data", p + 6, (size_t)(nl - p - 6));
      seen++;
    } else if (memchr(p, '\r', (size_t)(nl - p)) != NULL) {
      fz_die("SSE: a CR inside a line would split the event");
    }
    p = nl + 1;
  }
  if (seen == 0)
    fz_die("GET /api/v1/events?after=0: no event");
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size > 8192)
    return 0;
  struct input in;
  split(data, size, &in);
  struct fz_loop l;
  fz_loop_open(&l);
  arbor_node_t *root = arbor_root(l.rt), *g, *t, *bad, *boom, *ok;
  arbor_group_opts_t go = {.name = in.long_name}, bo = {.name = in.p[6]};
  arbor_task_spec_t ts = {.name = in.p[1], .start = start_running};
  arbor_task_spec_t fs = {.name = in.p[7], .start = start_failing, .arg = &in};
  arbor_task_spec_t ds = {.name = in.p[11], .start = start_done};
  if (arbor_group_new(root, &go, &g) != 0 || arbor_task_spawn(g, &ts, &t) != 0 ||
      arbor_group_new(root, &bo, &bad) != 0 || arbor_task_spawn(bad, &fs, &boom) != 0 ||
      arbor_task_spawn(root, &ds, &ok) != 0)
    fz_die("building the tree");
  arbor_node_t *nodes[] = {root, g, t, bad, boom, ok};
  for (size_t i = 0; i < 6; i++)
    arbor_node_ref(nodes[i]);
  arbor_node_attr_set(g, in.p[2], in.p[3]);   /* may be refused: too long, empty */
  arbor_node_attr_set(t, in.p[4], in.p[5]);
  arbor_node_attr_set(t, in.p[3], in.p[2]);
  fz_loop_settle(&l);

  arbor_admin_t *admin = NULL;
  if (in.view >= V_METRICS) {
    arbor_admin_opts_t o = {0};
    admin = fz_http_start(&l, &o);
  }
  struct fz_resp r;
  switch (in.view) {
  case V_TREE: {
    struct jw w;
    jw_init(&w, 0);
    if (http_tree_write(&w, root, 64, 100) != 0)
      fz_die("http_tree_write failed");
    size_t len;
    const char *text = jw_text(&w, &len);
    fz_check_json("GET /api/v1/tree", text, len);
    jw_free(&w);
    break;
  }
  case V_NODES:
    for (size_t i = 0; i < 6; i++)
      check_node(nodes[i]);
    break;
  case V_CHROME:
    check_trace(l.rt, ARBOR_TRACE_CHROME, "Chrome trace");
    break;
  case V_OTLP:
    check_trace(l.rt, ARBOR_TRACE_OTLP, "OTLP trace");
    break;
  case V_METRICS:
    r = get(&l, admin, "/metrics");
    fz_check_exposition("GET /metrics", r.body, r.body_len);
    fz_resp_free(&r);
    break;
  case V_EVENTS:
    r = get(&l, admin, "/api/v1/events?after=0");
    check_events(&r);
    fz_resp_free(&r);
    break;
  case V_DETAIL: {
    char target[64];
    arbor_node_t *detail[] = {boom, g};
    for (size_t i = 0; i < 2; i++) {
      snprintf(target, sizeof target, "/api/v1/nodes/%llu",
               (unsigned long long)arbor_node_id(detail[i]));
      r = get(&l, admin, target);
      if (!r.ended)
        fz_die("GET %s did not end", target);
      fz_check_json(target, r.body, r.body_len);
      fz_resp_free(&r);
    }
    break;
  }
  case V_COUNT:
    break;
  }

  for (size_t i = 0; i < 6; i++)
    arbor_node_unref(nodes[i]);
  fz_loop_close(&l);
  for (int i = 0; i < PIECES; i++)
    free(in.p[i]);
  free(in.long_name);
  return 0;
}
