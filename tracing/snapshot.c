/* tracing/snapshot.c - the tree and the ring's extra events copied into flat
 * arrays at one point in time (trace.h says why a copy), and the resource that
 * names who produced the trace.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extension.h"
#include "trace.h"

/* ------------------------------------------------------------- resource */

/* splitmix64: spreads a few identifying numbers into ids that look random and
 * are the same for every export of one runtime (a file written at shutdown and
 * the spans pushed earlier must share the trace id). */
static uint64_t mix(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void hex64(char *out, uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--, v >>= 4)
    out[i] = digits[v & 15];
}

void trace_resource_init(struct trace_resource *res, arbor_runtime_t *rt,
                         const char *service_name) {
  memset(res, 0, sizeof *res);
  arbor_node_info_t root;
  arbor_node_info(arbor_root(rt), &root);
  res->mono0_ns = root.created_ns;
  res->wall_offset_ns = arbor__wall_ns(rt, 0);
  res->pid = (int)getpid();

  /* The runtime's start on both clocks, its pid and address: unique per run. */
  uint64_t st = (uint64_t)res->wall_offset_ns ^ ((uint64_t)res->pid << 32) ^ res->mono0_ns ^
                (uint64_t)(uintptr_t)rt;
  hex64(res->trace_id, mix(&st));
  hex64(res->trace_id + 16, mix(&st));
  res->trace_id[32] = '\0';

  /* A version 4 UUID's text: 8-4-4-4-12 hex, version nibble 4, variant 10xx. */
  char h[32];
  hex64(h, mix(&st));
  hex64(h + 16, mix(&st));
  h[12] = '4';
  h[16] = "89ab"[h[16] % 4];
  char *o = res->instance_id;
  for (int i = 0; i < 32; i++) {
    if (i == 8 || i == 12 || i == 16 || i == 20)
      *o++ = '-';
    *o++ = h[i];
  }
  *o = '\0';

  if (gethostname(res->host_name, sizeof res->host_name - 1) != 0)
    strcpy(res->host_name, "localhost");
  res->host_name[sizeof res->host_name - 1] = '\0';
  snprintf(res->executable, sizeof res->executable, "%s", program_invocation_short_name);

  /* service.name: the caller's, else the root's "service.name" attribute, else
   * what OpenTelemetry SDKs default to, "unknown_service:" + the executable. */
  const char *root_name = arbor_node_attr_get(arbor_root(rt), "service.name");
  if (service_name != NULL && service_name[0] != '\0')
    snprintf(res->service_name, sizeof res->service_name, "%s", service_name);
  else if (root_name != NULL && root_name[0] != '\0')
    snprintf(res->service_name, sizeof res->service_name, "%s", root_name);
  else
    snprintf(res->service_name, sizeof res->service_name, "unknown_service:%s", res->executable);
}

/* --------------------------------------------------------------- nodes */

void trace_node_fill(struct trace_node *tn, arbor_node_t *node, struct trace_attr *attrs) {
  arbor_node_info_t info;
  arbor_node_info(node, &info);
  memset(tn, 0, sizeof *tn);
  tn->id = info.id;
  tn->parent_id = info.parent_id;
  arbor_node_state_times(node, tn->t);
  tn->stop_requested_ns = info.stop_requested_ns;
  tn->name = arbor_node_name(node);
  tn->error = arbor_node_error(node);
  uint32_t n = 0;
  for (size_t i = 0; i < ARBOR_ATTRS_MAX; i++) {
    if (arbor_node_attr_at(node, i, &attrs[n].key, &attrs[n].value) < 0)
      break;
    n++;
  }
  tn->attrs = attrs;
  tn->nattrs = n;
  tn->restarts = info.restarts;
  tn->parent = UINT32_MAX;
  tn->kind = (uint8_t)info.kind;
  tn->state = (uint8_t)info.state;
  tn->outcome = (uint8_t)info.outcome;
  tn->cancelled = (uint8_t)(info.cancel_requested != 0);
  tn->stuck = (uint8_t)(info.stuck != 0);
}

/* ------------------------------------------------------------ snapshot */

#define BLOCK_SIZE (64 * 1024)

/* A copy of s in the snapshot's arena, or NULL when out of memory. */
static const char *arena_strdup(struct trace_snapshot *s, const char *str) {
  size_t len = strlen(str) + 1;
  if (s->nblocks == 0 || len > BLOCK_SIZE - s->block_used) {
    char **blocks = realloc(s->blocks, (s->nblocks + 1) * sizeof *blocks);
    if (blocks == NULL)
      return NULL;
    s->blocks = blocks;
    size_t size = len > BLOCK_SIZE ? len : BLOCK_SIZE;
    if ((blocks[s->nblocks] = malloc(size)) == NULL)
      return NULL;
    /* A string too big for a block gets one of its own; the current block
     * (now second to last) stays in use only if it was not full. */
    if (len > BLOCK_SIZE) {
      memcpy(blocks[s->nblocks], str, len);
      char *out = blocks[s->nblocks];
      if (s->nblocks > 0) {      /* keep filling the previous block afterwards */
        char *last = blocks[s->nblocks - 1];
        blocks[s->nblocks - 1] = out;
        blocks[s->nblocks] = last;
      } else {
        s->block_used = BLOCK_SIZE;   /* the only block is this string's */
      }
      s->nblocks++;
      return out;
    }
    s->nblocks++;
    s->block_used = 0;
  }
  char *out = s->blocks[s->nblocks - 1] + s->block_used;
  memcpy(out, str, len);
  s->block_used += len;
  return out;
}

struct walk {
  struct trace_snapshot *s;
  size_t cap, attr_cap;
  uint32_t *stack;               /* index of the last node seen at each depth */
  size_t stack_cap;
  int failed;
};

static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return 0;
  size_t n = *cap > 0 ? *cap * 2 : 256;
  while (n < need)
    n *= 2;
  void *q = realloc(*p, n * size);
  if (q == NULL)
    return -1;
  *p = q;
  *cap = n;
  return 0;
}

static int visit(arbor_node_t *node, int depth, void *arg) {
  struct walk *wk = arg;
  struct trace_snapshot *s = wk->s;
  if (grow((void **)&s->nodes, &wk->cap, s->nnodes + 1, sizeof *s->nodes) < 0 ||
      grow((void **)&wk->stack, &wk->stack_cap, (size_t)depth + 1, sizeof *wk->stack) < 0 ||
      grow((void **)&s->attrs, &wk->attr_cap, s->nattrs + ARBOR_ATTRS_MAX, sizeof *s->attrs) < 0)
    return wk->failed = -1;

  struct trace_node *tn = &s->nodes[s->nnodes];
  trace_node_fill(tn, node, s->attrs + s->nattrs);
  tn->parent = depth > 0 ? wk->stack[depth - 1] : UINT32_MAX;
  wk->stack[depth] = (uint32_t)s->nnodes;
  /* attrs may move as the array grows: an index until the walk is over */
  tn->attr_first = (uint32_t)s->nattrs;
  tn->attrs = NULL;
  s->nattrs += tn->nattrs;
  s->nnodes++;                   /* counted now: the free releases its error */
  if (tn->error != NULL)
    tn->error = arbor_error_ref((arbor_error_t *)tn->error);
  if ((tn->name = arena_strdup(s, tn->name)) == NULL)
    return wk->failed = -1;
  for (uint32_t i = 0; i < tn->nattrs; i++) {
    struct trace_attr *a = &s->attrs[tn->attr_first + i];
    if ((a->key = arena_strdup(s, a->key)) == NULL ||
        (a->value = arena_strdup(s, a->value)) == NULL)
      return wk->failed = -1;
  }
  return 0;
}

/* Open addressing from node id to its index, for grouping the ring's events. */
static uint32_t *index_map(const struct trace_snapshot *s, size_t *mask) {
  size_t cap = 16;
  while (cap < s->nnodes * 2)
    cap <<= 1;
  uint32_t *map = malloc(cap * sizeof *map);
  if (map == NULL)
    return NULL;
  memset(map, 0xff, cap * sizeof *map);
  for (size_t i = 0; i < s->nnodes; i++) {
    size_t h = (size_t)(s->nodes[i].id * 0x9E3779B97F4A7C15ull) & (cap - 1);
    while (map[h] != UINT32_MAX)
      h = (h + 1) & (cap - 1);
    map[h] = (uint32_t)i;
  }
  *mask = cap - 1;
  return map;
}

static uint32_t index_of(const struct trace_snapshot *s, const uint32_t *map, size_t mask,
                         uint64_t id) {
  size_t h = (size_t)(id * 0x9E3779B97F4A7C15ull) & mask;
  while (map[h] != UINT32_MAX) {
    if (s->nodes[map[h]].id == id)
      return map[h];
    h = (h + 1) & mask;
  }
  return UINT32_MAX;
}

/* The events that are not state changes (those are the node's times) and say
 * something a trace reader looks for: a cancel, restart, deadline or stuck
 * node, and a service's health: a failed probe attempt, not ready, ready. */
static int wanted(arbor_event_type_t t) {
  return t == ARBOR_EVENT_CANCEL || t == ARBOR_EVENT_RESTART || t == ARBOR_EVENT_DEADLINE ||
         t == ARBOR_EVENT_STUCK || t == ARBOR_EVENT_PROBE_FAILED ||
         t == ARBOR_EVENT_NOT_READY || t == ARBOR_EVENT_READY;
}

/* The ring's wanted events of the snapshot's nodes, grouped by node (a
 * counting sort), each node's oldest first. */
static int take_events(struct trace_snapshot *s, arbor_runtime_t *rt) {
  arbor_events_stats_t st;
  arbor_events_stats(rt, &st);
  size_t in_ring = (size_t)(st.recorded + 1 - st.first_seq);
  if (in_ring == 0 || s->nnodes == 0)
    return 0;
  arbor_event_t *ev = malloc(in_ring * sizeof *ev);
  uint32_t *owner = malloc(in_ring * sizeof *owner);
  uint32_t *count = calloc(s->nnodes + 1, sizeof *count);
  size_t mask = 0;
  uint32_t *map = index_map(s, &mask);
  int rc = ARBOR_ENOMEM;
  if (ev == NULL || owner == NULL || count == NULL || map == NULL)
    goto out;
  uint64_t cursor = st.first_seq;
  int n = arbor_events_read(rt, &cursor, ev, in_ring, NULL);
  size_t kept = 0;
  for (int i = 0; i < n; i++) {
    uint32_t at = wanted(ev[i].type) ? index_of(s, map, mask, ev[i].node_id) : UINT32_MAX;
    owner[i] = at;
    if (at != UINT32_MAX) {
      count[at + 1]++;
      kept++;
    }
  }
  rc = 0;
  if (kept == 0)
    goto out;
  if ((s->events = malloc(kept * sizeof *s->events)) == NULL) {
    rc = ARBOR_ENOMEM;
    goto out;
  }
  for (size_t i = 1; i <= s->nnodes; i++)   /* count[i]: where node i's events start */
    count[i] += count[i - 1];
  for (size_t i = 0; i < s->nnodes; i++) {
    s->nodes[i].events = s->events + count[i];
    s->nodes[i].nevents = count[i + 1] - count[i];
  }
  for (int i = 0; i < n; i++) {
    if (owner[i] == UINT32_MAX)
      continue;
    struct trace_event *te = &s->events[count[owner[i]]++];
    te->time_ns = ev[i].time_ns;
    te->node_id = ev[i].node_id;
    te->type = ev[i].type;
    te->error = ev[i].error != NULL ? arbor_error_ref((arbor_error_t *)ev[i].error) : NULL;
  }
  s->nevents = kept;
out:
  free(ev);
  free(owner);
  free(count);
  free(map);
  return rc;
}

static void attrs_link(struct trace_snapshot *s) {
  for (size_t i = 0; i < s->nnodes; i++)
    s->nodes[i].attrs = s->nodes[i].nattrs > 0 ? s->attrs + s->nodes[i].attr_first : NULL;
}

int trace_snapshot_take(struct trace_snapshot *s, arbor_node_t *root, const char *service_name) {
  memset(s, 0, sizeof *s);
  arbor_runtime_t *rt = arbor_node_runtime(root);
  trace_resource_init(&s->res, rt, service_name);
  s->now_ns = uv_hrtime();
  struct walk wk = {.s = s};
  arbor_tree_walk(root, -1, visit, &wk);
  free(wk.stack);
  if (wk.failed || take_events(s, rt) < 0) {
    trace_snapshot_free(s);
    return ARBOR_ENOMEM;
  }
  attrs_link(s);
  return 0;
}

void trace_snapshot_free(struct trace_snapshot *s) {
  for (size_t i = 0; i < s->nnodes; i++)
    arbor_error_unref((arbor_error_t *)s->nodes[i].error);
  for (size_t i = 0; i < s->nevents; i++)
    arbor_error_unref(s->events[i].error);
  for (size_t i = 0; i < s->nblocks; i++)
    free(s->blocks[i]);
  free(s->blocks);
  free(s->nodes);
  free(s->attrs);
  free(s->events);
  free(s->tracks);
  memset(s, 0, sizeof *s);
}
