/* supervisor/wait.c - arbor_wait: a fiber waits for any node to finish.
 *
 * Waiters are records on the waiting fibers' stacks, linked into the node's extra
 * part while they wait; the node's finish (lifecycle.c) wakes them all, and a
 * waiter that is cancelled first unlinks itself (the unhook), so no record is
 * touched after its fiber moved on.
 */
#include "internal.h"

static void unlink_waiter(arbor_node_t *node, struct arbor__waiter *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    node->extra->waiters = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  w->next = w->prev = NULL;
}

struct wait_hook {
  arbor_node_t *node;
  struct arbor__waiter *w;
};

static void wait_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  struct wait_hook *h = arg;
  unlink_waiter(h->node, h->w);
}

void arbor__wait_node_finished(arbor_node_t *node) {
  struct arbor__waiter *w;
  while ((w = node->extra->waiters) != NULL) {
    unlink_waiter(node, w);
    arbor__fiber_wake(w->cx, 0);
  }
}

int arbor_wait_at(arbor_ctx_t *cx, arbor_node_t *node, const char *file, int line) {
  if (node == NULL)
    return ARBOR_EINVAL;
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  if (node == cx->task)
    return ARBOR_EDEADLK;        /* a fiber cannot outlive itself */
  if (arbor__is_finished(node))
    return 0;
  if (node->extra == NULL && (node->extra = calloc(1, sizeof *node->extra)) == NULL)
    return ARBOR_ENOMEM;
  /* The node must stay valid while we wait, even if it finishes and is evicted
   * before this fiber runs again. */
  arbor_node_ref(node);
  struct arbor__waiter w = {.cx = cx, .next = node->extra->waiters, .prev = NULL};
  if (w.next != NULL)
    w.next->prev = &w;
  node->extra->waiters = &w;
  struct wait_hook hook = {node, &w};
  rc = arbor__fiber_park(cx, "wait", file, line, wait_unhook, &hook);
  arbor__node_unref(node);
  return rc;
}
