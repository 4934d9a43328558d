/* supervisor/lifecycle.c - the state machine, failure propagation and cancellation.
 *
 *   CREATED -> STARTING -> STARTED -> STOPPING -> STOPPED -> FINISHED
 *   shortcuts: STARTED -> STOPPED, CREATED -> FINISHED, STARTING -> STOPPING
 *
 * Every change goes through arbor__transition, which refuses anything else with an
 * always-on assert (an illegal transition is a bug in arbor, not bad input) and
 * records one STATE event (rule 9).
 */
#include "internal.h"

#define S(x) (1u << ARBOR_STATE_##x)
static const unsigned legal_next[ARBOR_STATE_COUNT] = {
    [ARBOR_STATE_CREATED] = S(STARTING) | S(STARTED) | S(FINISHED),
    [ARBOR_STATE_STARTING] = S(STARTED) | S(STOPPING),
    [ARBOR_STATE_STARTED] = S(STOPPING) | S(STOPPED),
    [ARBOR_STATE_STOPPING] = S(STOPPED),
    [ARBOR_STATE_STOPPED] = S(FINISHED),
    [ARBOR_STATE_FINISHED] = 0,
};
#undef S

void arbor__record(arbor_node_t *n, arbor_event_type_t type, const arbor_error_t *err) {
  arbor__recorder_add(&n->rt->rec, arbor__now(), n->id, n->parent != NULL ? n->parent->id : 0,
                      type, n->kind, n->state, n->state, (arbor_error_t *)err);
}

void arbor__transition(arbor_node_t *n, arbor_state_t to) {
  arbor_state_t from = (arbor_state_t)n->state;
  ARBOR_ASSERT((legal_next[from] & (1u << to)) != 0);
  uint64_t now = arbor__now();
  if (from == ARBOR_STATE_CREATED && to != ARBOR_STATE_FINISHED)
    n->t_started = now;
  if ((to == ARBOR_STATE_STOPPING || to == ARBOR_STATE_STOPPED) && n->t_stop == 0 &&
      (n->flags & ARBOR__F_CANCEL || n->error != NULL))
    n->t_stop = now;
  if (to == ARBOR_STATE_FINISHED)
    n->t_finished = now;
  else if (to != ARBOR_STATE_CREATED)
    n->t_entered[to - ARBOR_STATE_STARTING] = now;
  n->rt->stats.nodes[n->kind][from]--;
  n->rt->stats.nodes[n->kind][to]++;
  n->state = (uint8_t)to;
  arbor__recorder_add(&n->rt->rec, now, n->id, n->parent != NULL ? n->parent->id : 0,
                      ARBOR_EVENT_STATE, n->kind, from, to, NULL);
  /* An incarnation's readiness is its service's (service.c). */
  if (to == ARBOR_STATE_STARTED && n->parent != NULL && n->parent->kind == ARBOR_KIND_SERVICE)
    arbor__svc_inc_ready(n->parent, n);
}

static int body_ended(const arbor_node_t *n) { return (n->flags & ARBOR__F_BODY_ENDED) != 0; }

/* The parent learns that a child is FINISHED. Services and supervisors decide
 * what comes next themselves (restart, the next child to stop ...). */
static void child_finished(arbor_node_t *parent, arbor_node_t *child) {
  ARBOR_ASSERT(parent->live_children > 0);
  parent->live_children--;
  if (child->flags & ARBOR__F_SVC_TASK)
    arbor__svc_task_finished(child);
  switch (parent->kind) {
  case ARBOR_KIND_ROOT:
    if (parent->live_children == 0)
      arbor__runtime_tree_changed(parent->rt);
    return;
  case ARBOR_KIND_SERVICE:
    arbor__svc_inc_finished(parent, child);
    return;
  case ARBOR_KIND_SUPERVISOR:
    arbor__sup_child_finished(parent, child);
    return;
  default:
    if (child->flags & ARBOR__F_DAEMON)
      arbor__daemon_finished(parent, child);   /* rule 7 */
    arbor__maybe_finish(parent);
    return;
  }
}

/* Makes n FINISHED now: sets its outcome, queues its finish callback, retains it
 * and tells its parent. Callers have checked rule 1 (no live child, no handle
 * still closing). */
void arbor__finish(arbor_node_t *n) {
  ARBOR_ASSERT(n->live_children == 0);
  n->flags |= ARBOR__F_BODY_ENDED;
  n->outcome = n->error != NULL                ? ARBOR_OUTCOME_FAILED
               : (n->flags & ARBOR__F_CANCEL) ? ARBOR_OUTCOME_CANCELLED
                                              : ARBOR_OUTCOME_OK;
  arbor__transition(n, ARBOR_STATE_FINISHED);
  arbor_stats_t *st = &n->rt->stats;
  st->finished[n->kind][n->outcome]++;
  if (n->kind == ARBOR_KIND_TASK || n->kind == ARBOR_KIND_PROCESS)
    arbor__hist_add(&st->task_lifetime, n->t_finished - n->t_created);
  if (n->flags & ARBOR__F_STUCK)
    st->stuck--;
  if (n->extra != NULL && n->extra->waiters != NULL)
    arbor__wait_node_finished(n);
  if (n->flags & ARBOR__F_FIBER)
    arbor__fiber_node_finished(n);
  if (n->finish != NULL) {
    int rc = arbor__queue_push(&n->rt->finq, n);   /* reserved at creation */
    ARBOR_ASSERT(rc == 0);
    arbor__runtime_wake(n->rt);
  }
  if (n->kind == ARBOR_KIND_SERVICE || n->kind == ARBOR_KIND_SUPERVISOR)
    arbor__child_node_finished(n);
  arbor__retain(n);
  /* A group's failure becomes final only now (its error group is complete); a
   * task's was passed up when it failed. */
  if (n->kind == ARBOR_KIND_GROUP && n->error != NULL)
    arbor__node_failed(n, NULL);
  child_finished(n->parent, n);
}

/* Moves a node on as far as it can go: a node whose body ended goes from STOPPING
 * to STOPPED once its children are done, and a STOPPED node with no live child and
 * no handle still closing goes to FINISHED (rule 1). */
void arbor__maybe_finish(arbor_node_t *n) {
  if (n->kind == ARBOR_KIND_ROOT || !body_ended(n) || n->live_children > 0)
    return;
  if (n->state == ARBOR_STATE_STOPPING)
    arbor__transition(n, ARBOR_STATE_STOPPED);
  if (n->state != ARBOR_STATE_STOPPED)
    return;
  if (arbor__has_body(n) && !arbor__task_can_finish(n))
    return;
  if (n->kind == ARBOR_KIND_GROUP && n->u.group.nerrors > 0 && n->error == NULL) {
    n->error = arbor__group_error(n);
    arbor__record(n, ARBOR_EVENT_FAILED, n->error);
  }
  arbor__finish(n);
}

/* Records that n failed and passes the failure to its parent (rule 2). err, when
 * not NULL, is a reference the node takes as its error (the first error wins; a
 * later one is dropped, the first already explains the failure). */
void arbor__node_failed(arbor_node_t *n, arbor_error_t *err) {
  if (err != NULL) {
    if (n->error != NULL) {
      arbor_error_unref(err);
      return;
    }
    arbor__error_set_node(err, n->id);
    n->error = err;
    if (n->t_stop == 0)
      n->t_stop = arbor__now();
    arbor__record(n, ARBOR_EVENT_FAILED, err);
  }
  arbor_node_t *p = n->parent;
  switch (p->kind) {
  case ARBOR_KIND_GROUP:
    arbor__group_child_failed(p, n);
    break;
  case ARBOR_KIND_TASK:
    if (n->flags & ARBOR__F_DAEMON) {
      arbor__daemon_failed(p, n);   /* rule 7, with n's chain as the cause */
      break;
    }
    /* A task that owns a failed group fails with the group's error (as an exception
     * leaves a nursery and the task body in Trio) unless it failed already. */
    if (p->error == NULL && !arbor__is_finished(p)) {
      p->error = arbor_error_ref(n->error);
      arbor__record(p, ARBOR_EVENT_FAILED, p->error);
      arbor__node_failed(p, NULL);
      arbor__cancel(p);
    }
    break;
  case ARBOR_KIND_ROOT: {
    /* The root is no group: a top-level failure does not cancel the other
     * top-level nodes. It is kept for arbor_run's exit status. */
    arbor_runtime_t *rt = n->rt;
    rt->top_failures++;
    if (rt->first_failure == NULL)
      rt->first_failure = arbor_error_ref(n->error);
    break;
  }
  default:
    break;
  }
}

/* Cancels every child of n. Children are never unlinked during an API call (see
 * internal.h), and a cancelled parent takes no new children, so the list is stable
 * while we walk it. */
void arbor__cancel_children(arbor_node_t *n) {
  arbor_node_t *c = n->first_child;
  if (c == NULL)
    return;
  do {
    arbor_node_t *next = c->next;
    /* A child that failed is winding down already; a CANCEL on it would only add
     * noise to its events. */
    if (!arbor__is_finished(c) && c->error == NULL)
      arbor__cancel(c);
    c = next;
  } while (c != n->first_child);
}

/* Internal cancel: idempotent; returns 0 or ARBOR_EFINISHED. */
int arbor__cancel(arbor_node_t *n) {
  if (arbor__is_finished(n))
    return ARBOR_EFINISHED;
  if (n->flags & ARBOR__F_CANCEL)
    return 0;
  n->flags |= ARBOR__F_CANCEL;
  if (n->t_stop == 0)
    n->t_stop = arbor__now();
  arbor__record(n, ARBOR_EVENT_CANCEL, NULL);
  switch (n->kind) {
  case ARBOR_KIND_TASK:
  case ARBOR_KIND_PROCESS:
    arbor__task_cancel(n);
    break;
  case ARBOR_KIND_GROUP:
    arbor__group_cancel(n);
    break;
  case ARBOR_KIND_SERVICE:
    arbor__svc_cancel(n);
    break;
  case ARBOR_KIND_SUPERVISOR:
    arbor__sup_cancel(n);
    break;
  default:
    arbor__cancel_children(n);
    break;
  }
  return 0;
}

int arbor_node_cancel(arbor_node_t *n) {
  if (n == NULL)
    return ARBOR_EINVAL;
  if (n->kind == ARBOR_KIND_ROOT)
    return ARBOR_EKIND;
  return arbor__cancel(n);
}

/* Ends, with an error saying so, the body of every task under n that is still
 * running. Only for a loop with nothing left in it: no callback can ever end these
 * tasks, so waiting would hang forever. Everything else follows the normal paths:
 * owned handles close, failures propagate, groups finish after their children. */
void arbor__abandon(arbor_node_t *n) {
  arbor_node_t *first = n->first_child;
  for (arbor_node_t *c = first; c != NULL;) {
    arbor_node_t *next = c->next != first ? c->next : NULL;
    if (!arbor__is_finished(c))
      arbor__abandon(c);
    c = next;
  }
  if (arbor__has_body(n) && !arbor__is_finished(n) && !(n->flags & ARBOR__F_BODY_ENDED))
    arbor__task_abandon(n);
}
