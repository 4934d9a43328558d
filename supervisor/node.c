/* supervisor/node.c - the node table: allocation, ids, links, references,
 * retention of FINISHED nodes, accessors and attributes. */
#include <string.h>

#include "internal.h"

uint64_t arbor__now(void) { return uv_hrtime(); }

static size_t align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Allocates a CREATED node under parent (NULL only for the root), links it as the
 * last child, registers its id and records its CREATED event. One allocation holds
 * the node, its name and data_size bytes of zeroed task data. NULL when out of
 * memory (nothing changed). */
arbor_node_t *arbor__node_new(arbor_node_t *parent, arbor_kind_t kind, const char *name,
                              size_t data_size) {
  arbor_runtime_t *rt = parent != NULL ? parent->rt : NULL;
  size_t nlen = strlen(name);
  size_t data_off = align_up(offsetof(arbor_node_t, name) + nlen + 1, alignof(max_align_t));
  if (data_size > SIZE_MAX - data_off)
    return NULL;
  size_t size = data_size > 0 ? data_off + data_size : offsetof(arbor_node_t, name) + nlen + 1;
  /* Reserve this node's retention and finish-callback slots now, so that finishing
   * can never fail, and its timer slot, so that a fiber's sleep or deadline can
   * always be armed. */
  if (rt != NULL && (arbor__queue_reserve(&rt->retainq, rt->unfinished + 1) < 0 ||
                     arbor__queue_reserve(&rt->finq, rt->unfinished + 1) < 0 ||
                     arbor__timers_reserve(rt, rt->unfinished + 1) < 0))
    return NULL;
  arbor_node_t *n = malloc(size);
  if (n == NULL)
    return NULL;
  /* Only the header is cleared: the name is written below and the data part, which
   * may be large, is cleared on its own. */
  memset(n, 0, offsetof(arbor_node_t, name));
  memcpy(n->name, name, nlen + 1);
  if (data_size > 0) {
    if (data_off > UINT16_MAX) {     /* names are short; a huge one gets no data */
      free(n);
      return NULL;
    }
    n->u.task.data_off = (uint16_t)data_off;
    memset((char *)n + data_off, 0, data_size);
  }
  n->kind = (uint8_t)kind;
  n->state = ARBOR_STATE_CREATED;
  n->outcome = ARBOR_OUTCOME_NONE;
  if (parent == NULL)
    return n;                    /* the root: the runtime finishes setting it up */

  n->rt = rt;
  n->id = rt->next_id;
  if (arbor__idmap_put(&rt->ids, n) < 0) {
    free(n);
    return NULL;
  }
  rt->next_id++;
  rt->unfinished++;
  rt->stats.created[kind]++;
  rt->stats.nodes[kind][ARBOR_STATE_CREATED]++;
  n->t_created = arbor__now();
  n->parent = parent;
  parent->refs++;
  if (parent->first_child == NULL) {
    parent->first_child = n;
    n->next = n->prev = n;
  } else {
    arbor_node_t *first = parent->first_child, *last = first->prev;
    n->prev = last;
    n->next = first;
    last->next = n;
    first->prev = n;
  }
  parent->nchildren++;
  parent->live_children++;
  parent->children_total++;
  arbor__recorder_add(&rt->rec, n->t_created, n->id, parent->id, ARBOR_EVENT_CREATED, kind,
                      ARBOR_STATE_CREATED, ARBOR_STATE_CREATED, NULL);
  return n;
}

static void unlink_child(arbor_node_t *n) {
  arbor_node_t *p = n->parent;
  if (n->next == n) {
    p->first_child = NULL;
  } else {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    if (p->first_child == n)
      p->first_child = n->next;
  }
  n->next = n->prev = NULL;
  p->nchildren--;
}

/* Frees the node's own memory and drops its reference on its parent. Only for
 * evicted nodes (or everything, when the runtime is freed). */
void arbor__node_free(arbor_node_t *n) {
  arbor_node_t *parent = n->parent;
  arbor_error_unref(n->error);
  if (n->extra != NULL) {
    for (uint32_t i = 0; i < n->extra->nattrs; i++) {
      free(n->extra->attrs[i].key);
      free(n->extra->attrs[i].value);
    }
    free(n->extra);
  }
  if (arbor__has_body(n) && n->u.task.cap > 1)
    free(n->u.task.h.many);
  if (n->kind == ARBOR_KIND_SERVICE || n->kind == ARBOR_KIND_SUPERVISOR)
    arbor__child_free(n);
  if (n->kind == ARBOR_KIND_GROUP) {
    for (uint32_t i = 0; i < n->u.group.nerrors; i++)
      arbor_error_unref(n->u.group.errors[i]);
    free(n->u.group.errors);
  }
  int freeing = n->rt != NULL && n->rt->freeing;
  free(n);
  if (parent != NULL && !freeing)
    arbor__node_unref(parent);
}

static void zombie_remove(arbor_runtime_t *rt, arbor_node_t *n) {
  if (n->prev != NULL)
    n->prev->next = n->next;
  else
    rt->zombies = n->next;
  if (n->next != NULL)
    n->next->prev = n->prev;
}

void arbor__node_unref(arbor_node_t *n) {
  ARBOR_ASSERT(n->refs > 0);
  if (--n->refs == 0 && (n->flags & ARBOR__F_EVICTED)) {
    zombie_remove(n->rt, n);
    arbor__node_free(n);
  }
}

/* Takes a FINISHED node out of the tree and the id map; frees it unless referenced,
 * else parks it on the zombie list (its sibling links are free now). */
static void evict(arbor_node_t *n) {
  arbor_runtime_t *rt = n->rt;
  n->flags = (uint16_t)((n->flags & ~ARBOR__F_RETAINED) | ARBOR__F_EVICTED);
  rt->stats.nodes[n->kind][ARBOR_STATE_FINISHED]--;
  rt->stats.evicted++;
  unlink_child(n);
  arbor__idmap_del(&rt->ids, n->id);
  if (n->refs == 0) {
    arbor__node_free(n);
    return;
  }
  n->prev = NULL;
  n->next = rt->zombies;
  if (rt->zombies != NULL)
    rt->zombies->prev = n;
  rt->zombies = n;
}

/* Appends a FINISHED node to the retention FIFO (its slot was reserved when it was
 * created). Eviction waits for the loop (arbor__retention_trim from the drain), so
 * no node is freed inside an API call. */
void arbor__retain(arbor_node_t *n) {
  arbor_runtime_t *rt = n->rt;
  struct arbor__queue *q = &rt->retainq;
  ARBOR_ASSERT(q->len < q->cap && rt->unfinished > 0);
  rt->unfinished--;
  n->flags |= ARBOR__F_RETAINED;
  q->items[q->len++] = n;
  if (q->len - q->head > rt->retain_max)
    arbor__runtime_wake(rt);
}

/* Evicts the oldest retained nodes until at most `keep` remain. Children finish
 * before their parents (rule 1), so the FIFO evicts a child before its parent. */
void arbor__retention_trim(arbor_runtime_t *rt, size_t keep) {
  struct arbor__queue *q = &rt->retainq;
  while (q->len - q->head > keep)
    evict(q->items[q->head++]);
}

/* Checks that parent may take a new child now. */
int arbor__parent_check(arbor_node_t *parent) {
  if (parent == NULL)
    return ARBOR_EINVAL;
  if (parent->rt->closing)
    return ARBOR_ECLOSING;
  if (parent->state == ARBOR_STATE_FINISHED)
    return ARBOR_EFINISHED;
  /* A cancelled or failing parent is winding down: a new child would only be
   * cancelled at once. */
  if ((parent->flags & ARBOR__F_CANCEL) || parent->state == ARBOR_STATE_STOPPING ||
      (parent->kind == ARBOR_KIND_GROUP && (parent->u.group.nerrors > 0 || parent->error)))
    return ARBOR_ECANCELED;
  /* A task takes children only while its body runs: not before its start (a
   * CREATED node can only finish directly, so it must not have children), not
   * after its body ended. */
  if (parent->kind == ARBOR_KIND_TASK &&
      (parent->state == ARBOR_STATE_CREATED || (parent->flags & ARBOR__F_BODY_ENDED)))
    return ARBOR_ESTATE;
  return 0;
}

/* ------------------------------------------------------------ accessors */

uint64_t arbor_node_id(const arbor_node_t *n) { return n != NULL ? n->id : 0; }
const char *arbor_node_name(const arbor_node_t *n) { return n != NULL ? n->name : ""; }
arbor_kind_t arbor_node_kind(const arbor_node_t *n) { return (arbor_kind_t)n->kind; }
arbor_state_t arbor_node_state(const arbor_node_t *n) { return (arbor_state_t)n->state; }
arbor_outcome_t arbor_node_outcome(const arbor_node_t *n) { return (arbor_outcome_t)n->outcome; }
arbor_node_t *arbor_node_parent(const arbor_node_t *n) { return n != NULL ? n->parent : NULL; }
arbor_runtime_t *arbor_node_runtime(const arbor_node_t *n) { return n != NULL ? n->rt : NULL; }
const arbor_error_t *arbor_node_error(const arbor_node_t *n) { return n != NULL ? n->error : NULL; }
int arbor_node_is_finished(const arbor_node_t *n) { return n != NULL && arbor__is_finished(n); }
int arbor_node_is_cancelled(const arbor_node_t *n) {
  return n != NULL && (n->flags & ARBOR__F_CANCEL) != 0;
}

void arbor_node_info(const arbor_node_t *n, arbor_node_info_t *info) {
  if (n == NULL || info == NULL)
    return;
  memset(info, 0, sizeof *info);
  info->id = n->id;
  info->parent_id = n->parent != NULL ? n->parent->id : 0;
  info->kind = (arbor_kind_t)n->kind;
  info->state = (arbor_state_t)n->state;
  info->outcome = (arbor_outcome_t)n->outcome;
  info->cancel_requested = (n->flags & ARBOR__F_CANCEL) != 0;
  info->created_ns = n->t_created;
  info->started_ns = n->t_started;
  info->stop_requested_ns = n->t_stop;
  info->finished_ns = n->t_finished;
  info->created_wall_ns = n->rt->wall0_ns + (int64_t)(n->t_created - n->rt->mono0_ns);
  info->children = n->nchildren;
  info->live_children = n->live_children;
  info->children_total = n->children_total;
  struct arbor__child *c = arbor__child_of((arbor_node_t *)n);
  info->restarts = c != NULL ? c->restarts : 0;
  info->stuck = (n->flags & ARBOR__F_STUCK) != 0;
  info->attributes = n->extra != NULL ? n->extra->nattrs : 0;
}

arbor_node_t *arbor_node_ref(arbor_node_t *n) {
  if (n != NULL)
    n->refs++;
  return n;
}

void arbor_node_unref(arbor_node_t *n) {
  if (n != NULL)
    arbor__node_unref(n);
}

/* ----------------------------------------------------------- attributes */

static struct arbor__attr *attr_find(const arbor_node_t *n, const char *key) {
  if (n->extra == NULL)
    return NULL;
  for (uint32_t i = 0; i < n->extra->nattrs; i++)
    if (strcmp(n->extra->attrs[i].key, key) == 0)
      return &n->extra->attrs[i];
  return NULL;
}

int arbor_node_attr_set(arbor_node_t *n, const char *key, const char *value) {
  if (n == NULL || key == NULL || value == NULL || key[0] == '\0' ||
      strlen(key) > ARBOR_ATTR_KEY_MAX || strlen(value) > ARBOR_ATTR_VALUE_MAX)
    return ARBOR_EINVAL;
  struct arbor__attr *a = attr_find(n, key);
  char *v = strdup(value);
  if (v == NULL)
    return ARBOR_ENOMEM;
  if (a != NULL) {
    free(a->value);
    a->value = v;
    return 0;
  }
  if (n->extra != NULL && n->extra->nattrs == ARBOR_ATTRS_MAX) {
    free(v);
    return ARBOR_ENOSPC;
  }
  char *k = strdup(key);
  if (k == NULL) {
    free(v);
    return ARBOR_ENOMEM;
  }
  if (n->extra == NULL && (n->extra = calloc(1, sizeof *n->extra)) == NULL) {
    free(k);
    free(v);
    return ARBOR_ENOMEM;
  }
  n->extra->attrs[n->extra->nattrs++] = (struct arbor__attr){k, v};
  return 0;
}

const char *arbor_node_attr_get(const arbor_node_t *n, const char *key) {
  if (n == NULL || key == NULL)
    return NULL;
  const struct arbor__attr *a = attr_find(n, key);
  return a != NULL ? a->value : NULL;
}

int arbor_node_attr_at(const arbor_node_t *n, size_t i, const char **key, const char **value) {
  if (n == NULL)
    return ARBOR_EINVAL;
  if (n->extra == NULL || i >= n->extra->nattrs)
    return ARBOR_ENOENT;
  if (key != NULL)
    *key = n->extra->attrs[i].key;
  if (value != NULL)
    *value = n->extra->attrs[i].value;
  return 0;
}
