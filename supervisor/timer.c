/* supervisor/timer.c - arbor_task_after: the runtime's own timers.
 *
 * One uv_timer_t serves every task timer. Pending timers live in a binary min-heap
 * of (deadline, seq, node) entries; the uv timer is armed for the earliest. Why not
 * a uv_timer_t per task: a handle is 152 bytes and libuv's timer heap links through
 * the handles, so each sift touches a different cache line of a different task. An
 * entry here is 24 bytes and sifting stays within one array. Timers armed in order
 * with the same deadline (a fan-out of zero timeouts) append without sifting.
 */
#include "internal.h"

static int entry_less(const struct arbor__timer_entry *a, const struct arbor__timer_entry *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(struct arbor__timers *t, size_t i, struct arbor__timer_entry e) {
  t->heap[i] = e;
  e.node->u.task.timer_slot = (uint32_t)i + 1;
}

static void sift_up(struct arbor__timers *t, size_t i) {
  struct arbor__timer_entry e = t->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!entry_less(&e, &t->heap[parent]))
      break;
    place(t, i, t->heap[parent]);
    i = parent;
  }
  place(t, i, e);
}

static void sift_down(struct arbor__timers *t, size_t i) {
  struct arbor__timer_entry e = t->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= t->len)
      break;
    if (c + 1 < t->len && entry_less(&t->heap[c + 1], &t->heap[c]))
      c++;
    if (!entry_less(&t->heap[c], &e))
      break;
    place(t, i, t->heap[c]);
    i = c;
  }
  place(t, i, e);
}

/* Removes heap entry i and clears its node's slot. */
static void heap_remove(struct arbor__timers *t, size_t i) {
  t->heap[i].node->u.task.timer_slot = 0;
  t->len--;
  if (i == t->len)
    return;
  place(t, i, t->heap[t->len]);
  if (i > 0 && entry_less(&t->heap[i], &t->heap[(i - 1) / 2]))
    sift_up(t, i);
  else
    sift_down(t, i);
}

static void on_uv_timer(uv_timer_t *handle);

/* Arms (or stops) the uv timer for the earliest entry. */
static void rearm(arbor_runtime_t *rt) {
  struct arbor__timers *t = &rt->timers;
  t->rearm_pending = 0;
  if (t->len == 0) {
    uv_timer_stop(&t->handle);
    return;
  }
  uint64_t now = uv_now(rt->loop);
  uint64_t first = t->heap[0].deadline;
  uv_timer_start(&t->handle, on_uv_timer, first > now ? first - now : 0, 0);
}

void arbor__timers_rearm(arbor_runtime_t *rt) {
  if (rt->timers.rearm_pending)
    rearm(rt);
}

/* Fires every entry due at the loop time the callback runs with. Entries armed by
 * the callbacks it runs, even with timeout 0, wait for a later loop pass. Why the
 * detour through the drain: libuv 1.44 runs a timer re-armed with timeout 0 from
 * its own callback again in the same pass, so a task that keeps re-arming would
 * starve the loop. The drain runs in the idle phase, after this pass's timers. */
static void on_uv_timer(uv_timer_t *handle) {
  arbor_runtime_t *rt = handle->data;
  struct arbor__timers *t = &rt->timers;
  uint64_t now = uv_now(rt->loop);
  uint64_t last_seq = t->seq;
  t->firing = 1;
  while (t->len > 0 && t->heap[0].deadline <= now && t->heap[0].seq <= last_seq) {
    arbor_node_t *n = t->heap[0].node;
    heap_remove(t, 0);
    n->u.task.timer_cb(n, n->arg);
  }
  t->firing = 0;
  if (t->len > 0 && t->heap[0].deadline <= now) {
    t->rearm_pending = 1;
    arbor__runtime_wake(rt);
  } else {
    rearm(rt);
  }
}

int arbor__timers_init(arbor_runtime_t *rt) {
  int rc = uv_timer_init(rt->loop, &rt->timers.handle);
  rt->timers.handle.data = rt;
  return rc;
}

void arbor__timers_close(arbor_runtime_t *rt, uv_close_cb cb) {
  uv_close((uv_handle_t *)&rt->timers.handle, cb);
}

void arbor__timers_free(arbor_runtime_t *rt) {
  free(rt->timers.heap);
  rt->timers.heap = NULL;
}

/* Drops the task's pending timer, if any (its body ended). */
void arbor__timer_cancel(arbor_node_t *n) {
  if (n->u.task.timer_slot == 0)
    return;
  struct arbor__timers *t = &n->rt->timers;
  heap_remove(t, n->u.task.timer_slot - 1);
  /* With a later entry left, the uv timer may fire early for nothing and re-arm
   * itself: cheaper than moving it in libuv's heap on every cancel. With none left
   * it must stop, or a cancelled 1-hour timer would keep the loop alive. */
  if (t->len == 0)
    uv_timer_stop(&t->handle);
}

int arbor_task_after(arbor_node_t *n, uint64_t timeout, arbor_task_timer_cb cb) {
  if (n == NULL || cb == NULL)
    return ARBOR_EINVAL;
  /* A fiber's timer belongs to its checkpoints (arbor_sleep). */
  if (!arbor__has_body(n) || (n->flags & ARBOR__F_FIBER))
    return ARBOR_EKIND;
  if (n->state == ARBOR_STATE_CREATED || (n->flags & ARBOR__F_BODY_ENDED))
    return ARBOR_ESTATE;
  return arbor__task_after(n, timeout, cb);
}

/* Grows the heap to hold at least n entries (doubling). ARBOR_ENOMEM leaves it
 * as it was. */
static int heap_grow(struct arbor__timers *t, size_t n) {
  if (n <= t->cap)
    return 0;
  size_t cap = t->cap ? t->cap : 64;
  while (cap < n)
    cap *= 2;
  struct arbor__timer_entry *v = realloc(t->heap, cap * sizeof *v);
  if (v == NULL)
    return ARBOR_ENOMEM;
  t->heap = v;
  t->cap = cap;
  return 0;
}

/* A node holds at most one entry, and only while unfinished; node.c calls this
 * for each new node with rt->unfinished + 1, so arming a timer never needs memory.
 * That matters for a fiber: a sleep or a deadline whose timer could not be armed
 * would park it for good. */
int arbor__timers_reserve(arbor_runtime_t *rt, size_t n) { return heap_grow(&rt->timers, n); }

int arbor__task_after(arbor_node_t *n, uint64_t timeout, arbor_task_timer_cb cb) {
  arbor_runtime_t *rt = n->rt;
  struct arbor__timers *t = &rt->timers;
  if (n->u.task.timer_slot == 0 && t->len == t->cap && heap_grow(t, t->len + 1) < 0)
    return ARBOR_ENOMEM;         /* not for a node of this runtime (reserved) */
  if (n->u.task.timer_slot != 0)
    heap_remove(t, n->u.task.timer_slot - 1);
  uint64_t now = uv_now(rt->loop);
  uint64_t deadline = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
  n->u.task.timer_cb = cb;
  size_t i = t->len++;
  place(t, i, (struct arbor__timer_entry){deadline, ++t->seq, n});
  sift_up(t, i);
  if (t->heap[0].node == n && !t->firing)   /* a new earliest: move the uv timer */
    rearm(rt);
  return 0;
}

int arbor_task_after_stop(arbor_node_t *n) {
  if (n == NULL)
    return ARBOR_EINVAL;
  if (!arbor__has_body(n) || (n->flags & ARBOR__F_FIBER))
    return ARBOR_EKIND;
  if (n->u.task.timer_slot == 0)
    return ARBOR_ENOENT;
  arbor__timer_cancel(n);
  return 0;
}
