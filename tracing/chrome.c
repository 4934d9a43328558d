/* tracing/chrome.c - a snapshot as Chrome Trace Event JSON (the "JSON Object
 * Format" of the Trace Event Format document), for Perfetto UI and
 * chrome://tracing.
 *
 * Each node is one complete event ("ph":"X") whose slice runs from CREATED to
 * FINISHED (the snapshot's time while it runs). Perfetto draws a track's
 * slices as a stack and refuses slices that overlap without nesting, so the
 * tree is laid out on tracks (threads of one process, pid = arbor's pid):
 *
 *   - a child goes on its parent's track when it starts after the previous
 *     child there ended: a service's runs, one after the other, nest under the
 *     service; a task that ran alone nests under its group;
 *   - a child that overlaps an earlier sibling takes the parent's extra lane
 *     that freed first, if free by its start, or opens a new one: concurrent siblings
 *     sit side by side, each with its own subtree under it;
 *   - a slice is clamped into its parent's (it always is inside, rule 1; the
 *     clamp keeps a clock oddity from making Perfetto drop it).
 *
 * A lane is named after the first node on it ("heartbeat"), or "<parent> lane
 * N" once siblings of other names shared it. State changes after CREATED, the
 * ring's cancel / restart / deadline / stuck events and the failure are
 * thread-scoped instant events ("ph":"i","s":"t") on the node's track. Args
 * carry the node's id, kind, state, outcome, attributes and error chain.
 * Times are microseconds since the runtime started, with the nanoseconds as
 * three decimals (exact: no float rounding can push a child past its parent).
 */
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define ARBOR_VERSION_TEXT                                                             \
  STR(ARBOR_VERSION_MAJOR) "." STR(ARBOR_VERSION_MINOR) "." STR(ARBOR_VERSION_PATCH)

/* Bounds on one error chain in args: a group's error can hold thousands. */
#define ERROR_DEPTH_MAX 16
#define ERROR_CHILDREN_MAX 16

/* ---------------------------------------------------------------- tracks */

/* Unfinished slices end at now + (UNFINISHED_DEPTH - depth) ns. */
#define UNFINISHED_DEPTH 1024

/* A parent's extra lanes, as a min-heap by the time each is busy until: the
 * child that overlaps its siblings takes the lane that freed first (the root),
 * or opens a new one when even that one is busy. A scan of the lanes made one
 * group of 100,000 concurrent tasks quadratic (8.6 s); the heap is n log n. */
struct lane {
  uint32_t track;
  uint64_t busy_until;
};

struct lanes {
  struct lane *v;
  uint32_t n, cap;
};

static void lanes_sift_down(struct lanes *h, uint32_t i) {
  for (;;) {
    uint32_t l = 2 * i + 1, m = i;
    if (l < h->n && h->v[l].busy_until < h->v[m].busy_until)
      m = l;
    if (l + 1 < h->n && h->v[l + 1].busy_until < h->v[m].busy_until)
      m = l + 1;
    if (m == i)
      return;
    struct lane t = h->v[i];
    h->v[i] = h->v[m];
    h->v[m] = t;
    i = m;
  }
}

static int lanes_push(struct lanes *h, struct lane lane) {
  if (h->n == h->cap) {
    uint32_t c = h->cap > 0 ? h->cap * 2 : 4;
    struct lane *v = realloc(h->v, c * sizeof *v);
    if (v == NULL)
      return -1;
    h->v = v;
    h->cap = c;
  }
  uint32_t i = h->n++;
  while (i > 0 && lane.busy_until < h->v[(i - 1) / 2].busy_until) {
    h->v[i] = h->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->v[i] = lane;
  return 0;
}

static int add_track(struct trace_snapshot *s, size_t *cap, const char *name, uint32_t owner,
                     uint32_t lane) {
  if (s->ntracks == *cap) {
    size_t n = *cap > 0 ? *cap * 2 : 64;
    struct trace_track *t = realloc(s->tracks, n * sizeof *t);
    if (t == NULL)
      return -1;
    s->tracks = t;
    *cap = n;
  }
  s->tracks[s->ntracks] = (struct trace_track){.name = name, .owner = owner, .lane = lane};
  return (int)++s->ntracks;      /* tids start at 1 */
}

int chrome_assign_tracks(struct trace_snapshot *s) {
  size_t n = s->nnodes, track_cap = 0;
  uint64_t *child_busy = calloc(n > 0 ? n : 1, sizeof *child_busy);
  struct lanes *lanes = calloc(n > 0 ? n : 1, sizeof *lanes);   /* by parent */
  uint16_t *depth = calloc(n > 0 ? n : 1, sizeof *depth);
  int rc = ARBOR_ENOMEM;
  free(s->tracks);
  s->tracks = NULL;
  s->ntracks = 0;
  if (child_busy == NULL || lanes == NULL || depth == NULL)
    goto out;

  for (size_t i = 0; i < n; i++) {
    struct trace_node *tn = &s->nodes[i];
    if (tn->parent != UINT32_MAX)
      depth[i] = (uint16_t)(depth[tn->parent] < UNFINISHED_DEPTH ? depth[tn->parent] + 1
                                                                 : UNFINISHED_DEPTH);
    uint64_t start = tn->t[ARBOR_STATE_CREATED];
    /* Nodes still running all end "now"; a parent ends 1 ns after its child, so
     * that a consumer adding ts + dur in floating point (the DevTools engine)
     * never sees the child end past it. */
    uint64_t end = tn->state == ARBOR_STATE_FINISHED ? tn->t[ARBOR_STATE_FINISHED]
                                                     : s->now_ns + UNFINISHED_DEPTH - depth[i];
    if (end < start)
      end = start;
    if (tn->parent == UINT32_MAX) {
      tn->ts0 = start;
      tn->ts1 = end;
      int tid = add_track(s, &track_cap, tn->name, (uint32_t)i, 0);
      if (tid < 0)
        goto out;
      tn->track = (uint32_t)tid;
      continue;
    }
    const struct trace_node *p = &s->nodes[tn->parent];
    if (start < p->ts0)
      start = p->ts0;
    if (end > p->ts1)
      end = p->ts1;
    if (start > end)
      start = end;
    tn->ts0 = start;
    tn->ts1 = end;
    if (start >= child_busy[tn->parent]) {   /* fits on the parent's own track */
      tn->track = p->track;
      child_busy[tn->parent] = end;
      continue;
    }
    struct lanes *h = &lanes[tn->parent];
    if (h->n > 0 && h->v[0].busy_until <= start) {   /* the lane that freed first */
      struct trace_track *t = &s->tracks[h->v[0].track - 1];
      if (strcmp(t->name, tn->name) != 0)
        t->mixed = 1;
      h->v[0].busy_until = end;
      tn->track = h->v[0].track;
      lanes_sift_down(h, 0);
      continue;
    }
    int tid = add_track(s, &track_cap, tn->name, tn->parent, h->n + 1);
    if (tid < 0 || lanes_push(h, (struct lane){.track = (uint32_t)tid, .busy_until = end}) < 0)
      goto out;
    tn->track = (uint32_t)tid;
  }
  rc = (int)s->ntracks;
out:
  if (lanes != NULL)
    for (size_t i = 0; i < n; i++)
      free(lanes[i].v);
  free(child_busy);
  free(lanes);
  free(depth);
  return rc;
}

/* ---------------------------------------------------------------- values */

/* Microseconds since the runtime's start, nanoseconds as three decimals. */
static void micros(struct jw *w, uint64_t ns) {
  char buf[32];
  size_t n = jw_fmt_u64(ns / 1000, buf);
  unsigned frac = (unsigned)(ns % 1000);
  buf[n++] = '.';
  buf[n++] = (char)('0' + frac / 100);
  buf[n++] = (char)('0' + frac / 10 % 10);
  buf[n++] = (char)('0' + frac % 10);
  jw_raw(w, buf, n);
}

static void ts(struct jw *w, const struct trace_snapshot *s, uint64_t mono_ns) {
  micros(w, mono_ns > s->res.mono0_ns ? mono_ns - s->res.mono0_ns : 0);
}

static void common(struct jw *w, const struct trace_snapshot *s, uint32_t tid) {
  jw_key(w, "pid");
  jw_i64(w, s->res.pid);
  jw_key(w, "tid");
  jw_u64(w, tid);
}

static void error_json(struct jw *w, const arbor_error_t *e, int depth) {
  jw_obj_begin(w);
  jw_key(w, "code");
  jw_i64(w, arbor_error_code(e));
  jw_key(w, "name");
  jw_str(w, arbor_err_name(arbor_error_code(e)));
  jw_key(w, "message");
  jw_str(w, arbor_error_message(e));
  if (arbor_error_file(e) != NULL && arbor_error_file(e)[0] != '\0') {
    jw_key(w, "file");
    jw_str(w, arbor_error_file(e));
    jw_key(w, "line");
    jw_i64(w, arbor_error_line(e));
    jw_key(w, "function");
    jw_str(w, arbor_error_function(e));
  }
  if (arbor_error_node_id(e) != 0) {
    jw_key(w, "node");
    jw_u64(w, arbor_error_node_id(e));
  }
  size_t nchild = arbor_error_child_count(e);
  if (depth >= ERROR_DEPTH_MAX) {
    if (arbor_error_cause(e) != NULL || nchild > 0) {
      jw_key(w, "truncated");
      jw_bool(w, 1);
    }
    jw_obj_end(w);
    return;
  }
  if (arbor_error_cause(e) != NULL) {
    jw_key(w, "cause");
    error_json(w, arbor_error_cause(e), depth + 1);
  }
  if (nchild > 0) {
    jw_key(w, "children");
    jw_arr_begin(w);
    for (size_t i = 0; i < nchild && i < ERROR_CHILDREN_MAX; i++)
      error_json(w, arbor_error_child(e, i), depth + 1);
    jw_arr_end(w);
    if (nchild > ERROR_CHILDREN_MAX) {
      jw_key(w, "children_total");
      jw_u64(w, nchild);
    }
  }
  jw_obj_end(w);
}

/* ------------------------------------------------------------- document */

static void metadata(struct jw *w, const struct trace_snapshot *s, uint32_t tid,
                     const char *what, const char *key, const char *text, int64_t num) {
  jw_obj_begin(w);
  jw_key(w, "name");
  jw_str(w, what);
  jw_key(w, "ph");
  jw_str(w, "M");
  common(w, s, tid);
  jw_key(w, "args");
  jw_obj_begin(w);
  jw_key(w, key);
  if (text != NULL)
    jw_str(w, text);
  else
    jw_i64(w, num);
  jw_obj_end(w);
  jw_obj_end(w);
}

void chrome_begin(struct jw *w, const struct trace_snapshot *s) {
  jw_obj_begin(w);
  jw_key(w, "displayTimeUnit");
  jw_str(w, "ms");
  jw_key(w, "otherData");
  jw_obj_begin(w);
  jw_key(w, "producer");
  jw_str(w, "arbor " ARBOR_VERSION_TEXT);
  jw_key(w, "service_name");
  jw_str(w, s->res.service_name);
  jw_key(w, "trace_id");
  jw_str(w, s->res.trace_id);
  jw_key(w, "ts_zero");          /* the wall clock at ts 0 */
  jw_time(w, (int64_t)s->res.mono0_ns + s->res.wall_offset_ns);
  jw_key(w, "nodes");
  jw_u64(w, s->nnodes);
  jw_obj_end(w);
  jw_key(w, "traceEvents");
  jw_arr_begin(w);

  char name[sizeof s->res.service_name + 32];
  snprintf(name, sizeof name, "%s (pid %d)", s->res.service_name, s->res.pid);
  metadata(w, s, 0, "process_name", "name", name, 0);
}

void chrome_track(struct jw *w, const struct trace_snapshot *s, size_t i) {
  const struct trace_track *t = &s->tracks[i];
  const char *text = t->name;
  char name[160];
  if (t->mixed) {
    snprintf(name, sizeof name, "%.120s lane %u", s->nodes[t->owner].name, t->lane);
    text = name;
  }
  metadata(w, s, (uint32_t)i + 1, "thread_name", "name", text, 0);
  metadata(w, s, (uint32_t)i + 1, "thread_sort_index", "sort_index", NULL, (int64_t)i + 1);
}

void chrome_end(struct jw *w) {
  jw_arr_end(w);
  jw_obj_end(w);
}

static void instant_begin(struct jw *w, const struct trace_snapshot *s,
                          const struct trace_node *n, const char *name, const char *cat,
                          uint64_t t) {
  jw_obj_begin(w);
  jw_key(w, "name");
  jw_str(w, name);
  jw_key(w, "cat");
  jw_str(w, cat);
  jw_key(w, "ph");
  jw_str(w, "i");
  jw_key(w, "s");
  jw_str(w, "t");
  jw_key(w, "ts");
  ts(w, s, t);
  common(w, s, n->track);
  jw_key(w, "args");
  jw_obj_begin(w);
  jw_key(w, "node");
  jw_u64(w, n->id);
}

static void instant_end(struct jw *w) {
  jw_obj_end(w);
  jw_obj_end(w);
}

void chrome_node(struct jw *w, const struct trace_snapshot *s, size_t i) {
  const struct trace_node *n = &s->nodes[i];
  const char *kind = arbor_kind_name((arbor_kind_t)n->kind);

  jw_obj_begin(w);
  jw_key(w, "name");
  jw_str(w, n->name);
  jw_key(w, "cat");
  jw_str(w, kind);
  jw_key(w, "ph");
  jw_str(w, "X");
  jw_key(w, "ts");
  ts(w, s, n->ts0);
  jw_key(w, "dur");
  micros(w, n->ts1 - n->ts0);
  common(w, s, n->track);
  jw_key(w, "args");
  jw_obj_begin(w);
  jw_key(w, "id");
  jw_u64(w, n->id);
  jw_key(w, "parent_id");
  jw_u64(w, n->parent_id);
  jw_key(w, "kind");
  jw_str(w, kind);
  jw_key(w, "state");
  jw_str(w, arbor_state_name((arbor_state_t)n->state));
  jw_key(w, "outcome");
  jw_str(w, arbor_outcome_name((arbor_outcome_t)n->outcome));
  if (n->kind == ARBOR_KIND_SERVICE || n->kind == ARBOR_KIND_SUPERVISOR) {
    jw_key(w, "restarts");
    jw_u64(w, n->restarts);
  }
  if (n->cancelled) {
    jw_key(w, "cancelled");
    jw_bool(w, 1);
  }
  if (n->stuck) {
    jw_key(w, "stuck");
    jw_bool(w, 1);
  }
  if (n->state != ARBOR_STATE_FINISHED) {
    jw_key(w, "unfinished");
    jw_bool(w, 1);
  }
  if (n->nattrs > 0) {
    jw_key(w, "attributes");
    jw_obj_begin(w);
    for (uint32_t a = 0; a < n->nattrs; a++) {
      jw_key(w, n->attrs[a].key);
      jw_str(w, n->attrs[a].value);
    }
    jw_obj_end(w);
  }
  if (n->error != NULL) {
    jw_key(w, "error");
    error_json(w, n->error, 0);
  }
  jw_obj_end(w);
  jw_obj_end(w);

  for (int st = ARBOR_STATE_STARTING; st <= ARBOR_STATE_STOPPED; st++) {
    if (n->t[st] == 0)
      continue;
    instant_begin(w, s, n, arbor_state_name((arbor_state_t)st), "state", n->t[st]);
    instant_end(w);
  }
  for (uint32_t e = 0; e < n->nevents; e++) {
    const struct trace_event *ev = &n->events[e];
    instant_begin(w, s, n, arbor_event_type_name(ev->type), "event", ev->time_ns);
    if (ev->error != NULL) {
      jw_key(w, "error");
      error_json(w, ev->error, 0);
    }
    instant_end(w);
  }
  if (n->error != NULL) {
    char name[64];
    snprintf(name, sizeof name, "failed: %s", arbor_err_name(arbor_error_code(n->error)));
    instant_begin(w, s, n, name, "error", arbor_error_time_ns(n->error));
    jw_key(w, "message");
    jw_str(w, arbor_error_message(n->error));
    instant_end(w);
  }
}
