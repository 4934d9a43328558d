/* supervisor/group.c - task groups (nurseries): rules 1 and 2.
 *
 * A group has no code of its own. Its "body" lasts from creation until it is joined
 * (or until it is cancelled or a child fails, which end it too). It then finishes
 * as soon as every child has. The first child failure cancels every sibling; the
 * group then fails with an error group holding each child error in the order the
 * children failed. A cancelled child contributes nothing: cancellation is not
 * failure.
 */
#include "internal.h"

int arbor_group_new(arbor_node_t *parent, const arbor_group_opts_t *opts, arbor_node_t **out) {
  if (parent == NULL)
    return ARBOR_EINVAL;
  if (parent->kind != ARBOR_KIND_ROOT && parent->kind != ARBOR_KIND_GROUP &&
      parent->kind != ARBOR_KIND_TASK)
    return ARBOR_EKIND;
  int rc = arbor__parent_check(parent);
  if (rc < 0)
    return rc;
  const char *name = opts != NULL && opts->name != NULL ? opts->name : "group";
  arbor_node_t *g = arbor__node_new(parent, ARBOR_KIND_GROUP, name, 0);
  if (g == NULL)
    return ARBOR_ENOMEM;
  arbor__transition(g, ARBOR_STATE_STARTED);
  if (out != NULL)
    *out = g;
  return 0;
}

int arbor_group_join(arbor_node_t *g, arbor_finish_cb cb, void *arg) {
  if (g == NULL)
    return ARBOR_EINVAL;
  if (g->kind != ARBOR_KIND_GROUP)
    return ARBOR_EKIND;
  if (g->flags & ARBOR__F_JOINED)
    return ARBOR_EALREADY;
  g->flags |= ARBOR__F_JOINED;
  g->finish = cb;
  g->arg = arg;
  if (arbor__is_finished(g)) {
    /* It finished by itself (cancelled or failed, children done) before the join:
     * the callback still comes, from the loop. */
    if (cb != NULL) {
      /* This push is beyond the slots reserved per unfinished node: reserve for
       * those again, or a later finish could find the queue full. */
      arbor_runtime_t *rt = g->rt;
      if (arbor__queue_reserve(&rt->finq, rt->unfinished + 1) < 0 ||
          arbor__queue_push(&rt->finq, g) < 0) {
        g->flags &= (uint16_t)~ARBOR__F_JOINED;
        g->finish = NULL;
        return ARBOR_ENOMEM;
      }
      arbor__runtime_wake(g->rt);
    }
    return 0;
  }
  if (!(g->flags & ARBOR__F_BODY_ENDED)) {
    g->flags |= ARBOR__F_BODY_ENDED;
    arbor__transition(g, ARBOR_STATE_STOPPED);
  }
  arbor__maybe_finish(g);
  return 0;
}

/* Ends the group's body early and winds its children down. */
static void stop(arbor_node_t *g) {
  g->flags |= ARBOR__F_BODY_ENDED;
  if (g->state == ARBOR_STATE_STARTED)
    arbor__transition(g, ARBOR_STATE_STOPPING);
  arbor__cancel_children(g);
  arbor__maybe_finish(g);
}

void arbor__group_cancel(arbor_node_t *g) { stop(g); }

/* Rule 2: keep the child's error, in order, and cancel the siblings. */
void arbor__group_child_failed(arbor_node_t *g, arbor_node_t *child) {
  struct arbor__group *gr = &g->u.group;
  if (gr->nerrors == gr->cap) {
    uint32_t cap = gr->cap ? gr->cap * 2 : 4;
    arbor_error_t **v = realloc(gr->errors, cap * sizeof *v);
    if (v == NULL) {
      /* Keep the failure even when its detail cannot be kept: the group still
       * fails (with the errors it has, or out of memory). */
      if (g->error == NULL) {
        g->error = arbor_error_ref(g->rt->oom_error);
        arbor__record(g, ARBOR_EVENT_FAILED, g->error);
      }
      stop(g);
      return;
    }
    gr->errors = v;
    gr->cap = cap;
  }
  gr->errors[gr->nerrors++] = arbor_error_ref(child->error);
  if (g->t_stop == 0)
    g->t_stop = arbor__now();
  stop(g);
}

arbor_error_t *arbor__group_error(arbor_node_t *g) {
  arbor_error_t *e = arbor__error_group_new(g, g->u.group.errors, g->u.group.nerrors);
  return e != NULL ? e : arbor_error_ref(g->rt->oom_error);
}
