/* supervisor/task.c - callback tasks: a start function, an optional cancel hook,
 * libuv handles the task owns, and explicit done / fail calls.
 *
 * A callback task has no stack of its own, so its "body" is the span from its start
 * callback to its arbor_task_done / arbor_task_fail call. When the body ends, arbor
 * closes the handles the task owns; the task is FINISHED once they are closed and
 * its children (groups) have finished (rule 1).
 */
#include <string.h>

#include "internal.h"

int arbor_task_spawn(arbor_node_t *parent, const arbor_task_spec_t *spec, arbor_node_t **out) {
  if (parent == NULL || spec == NULL || spec->start == NULL)
    return ARBOR_EINVAL;
  if (parent->kind != ARBOR_KIND_ROOT && parent->kind != ARBOR_KIND_GROUP)
    return ARBOR_EKIND;
  return arbor__task_spawn(parent, spec, ARBOR_KIND_TASK, out);
}

/* arbor_task_spawn without the parent's kind check: services spawn their
 * incarnations (kind TASK or PROCESS) under service nodes, and the tasks a
 * service body runs under the incarnation. */
int arbor__task_spawn(arbor_node_t *parent, const arbor_task_spec_t *spec, arbor_kind_t kind,
                      arbor_node_t **out) {
  int rc = arbor__parent_check(parent);
  if (rc < 0)
    return rc;
  arbor_runtime_t *rt = parent->rt;
  /* Reserve the run-queue slot first: once the node exists (and its CREATED event
   * is recorded) nothing may fail. */
  if (arbor__queue_reserve(&rt->runq, 1) < 0)
    return ARBOR_ENOMEM;
  arbor_node_t *n = arbor__node_new(parent, kind, spec->name != NULL ? spec->name : "task",
                                    spec->data_size);
  if (n == NULL)
    return ARBOR_ENOMEM;
  n->u.task.start = spec->start;
  n->u.task.cancel = spec->cancel;
  n->u.task.cap = 1;
  n->finish = spec->finish;
  n->arg = spec->arg;
  if (spec->handshake)
    n->flags |= ARBOR__F_HANDSHAKE;
  rc = arbor__queue_push(&rt->runq, n);
  ARBOR_ASSERT(rc == 0);
  arbor__runtime_wake(rt);
  if (out != NULL)
    *out = n;
  return 0;
}

static uv_handle_t **handles(struct arbor__task *t) {
  return t->cap == 1 ? &t->h.one : t->h.many;
}

static void on_handle_closed(uv_handle_t *h) {
  arbor_node_t *n = h->data;
  ARBOR_ASSERT(n->closing > 0);
  n->closing--;
  arbor__maybe_finish(n);
}

/* Closes every owned handle. A handle the caller closed itself (against the
 * contract) is skipped rather than closed twice, which libuv would abort on. */
static void close_owned(arbor_node_t *n) {
  struct arbor__task *t = &n->u.task;
  uv_handle_t **v = handles(t);
  for (uint16_t i = 0; i < t->nhandles; i++) {
    uv_handle_t *h = v[i];
    if (uv_is_closing(h))
      continue;
    h->data = n;
    uv_close(h, on_handle_closed);
    n->closing++;
  }
  t->nhandles = 0;
}

int arbor__task_can_finish(const arbor_node_t *n) { return n->closing == 0; }

/* The body ended, successfully (err NULL) or not. */
static void end_body(arbor_node_t *n, arbor_error_t *err) {
  /* A cancelled body that ends with ARBOR_ECANCELED (what every checkpoint returns
   * once cancelled) has been cancelled, not failed: rule 2's "cancellation is not
   * failure" must hold for bodies that pass the code on, as anyio's does. */
  if (err != NULL && (n->flags & ARBOR__F_CANCEL) && arbor_error_code(err) == ARBOR_ECANCELED) {
    arbor_error_unref(err);
    err = NULL;
  }
  n->flags |= ARBOR__F_BODY_ENDED;
  arbor__timer_cancel(n);
  if (n->state == ARBOR_STATE_STARTING) {
    /* Readiness was never reported: that is a failure of its own unless the body
     * failed anyway or was cancelled. */
    if (err == NULL && !(n->flags & ARBOR__F_CANCEL))
      err = arbor_error_new_at(ARBOR_ESTATE, NULL, "", 0, "",
                               "task %s ended before it reported started", n->name);
    arbor__transition(n, ARBOR_STATE_STOPPING);
  }
  if (n->state == ARBOR_STATE_STARTED || n->state == ARBOR_STATE_STOPPING)
    arbor__transition(n, ARBOR_STATE_STOPPED);
  if (err != NULL)
    arbor__node_failed(n, err);
  /* A failed or cancelled body takes its groups with it; so does the end of a
   * service's body (an incarnation): the service is done with the tasks it ran,
   * as async_service's manager cancels them when run() returns. */
  if (err != NULL || (n->flags & ARBOR__F_CANCEL) || n->parent->kind == ARBOR_KIND_SERVICE)
    arbor__cancel_children(n);
  close_owned(n);
  arbor__maybe_finish(n);
}

void arbor__task_end(arbor_node_t *n, arbor_error_t *err) { end_body(n, err); }

/* Runs a task's start (from the runtime's drain). */
void arbor__task_run(arbor_node_t *n) {
  if (n->state != ARBOR_STATE_CREATED)
    return;                      /* cancelled while queued: already FINISHED */
  arbor__transition(n, (n->flags & ARBOR__F_HANDSHAKE) ? ARBOR_STATE_STARTING
                                                       : ARBOR_STATE_STARTED);
  n->flags |= ARBOR__F_IN_START;
  int rc = n->u.task.start(n, n->arg);
  n->flags &= (uint16_t)~ARBOR__F_IN_START;
  if (rc < 0 && !(n->flags & ARBOR__F_BODY_ENDED)) {
    arbor_error_t *err = arbor_error_new_at(rc, NULL, "", 0, "", "task %s: start failed: %s",
                                            n->name, arbor_strerror(rc));
    end_body(n, err != NULL ? err : arbor_error_ref(n->rt->oom_error));
  }
}

/* Cancellation reached the task (rule 3/4). */
void arbor__task_cancel(arbor_node_t *n) {
  switch (n->state) {
  case ARBOR_STATE_CREATED:      /* never ran: finishes at once, start is never called */
    arbor__finish(n);
    return;
  case ARBOR_STATE_STARTING:
  case ARBOR_STATE_STARTED:
    arbor__transition(n, ARBOR_STATE_STOPPING);
    arbor__cancel_children(n);
    n->flags |= ARBOR__F_CANCEL_HOOK;
    if (n->u.task.cancel != NULL)
      n->u.task.cancel(n, n->arg);   /* must end the body; until then: STOPPING */
    else
      end_body(n, NULL);
    return;
  default:                       /* body ended already: only the children are left */
    arbor__cancel_children(n);
    return;
  }
}

/* Shutdown gives up on a task whose body never ended (see arbor__abandon). */
void arbor__task_abandon(arbor_node_t *n) {
  if (n->state == ARBOR_STATE_CREATED) {
    arbor__cancel(n);
    return;
  }
  if (n->flags & ARBOR__F_FIBER) {
    /* A fiber's body is its stack: it can only end by returning. Wake it with
     * ECANCELED wherever it waits (the loop is empty, so nothing else will); the
     * give-up is recorded as its failure first, as for a callback task. */
    struct arbor_ctx_s *f = arbor__task_data(n);
    if (f->parked) {
      arbor_error_t *err = arbor_error_new_at(ARBOR_EDEADLK, NULL, "", 0, "",
                                              "fiber %s abandoned in %s: nothing left in "
                                              "the loop to end it", n->name,
                                              f->wait_what != NULL ? f->wait_what : "?");
      arbor__node_failed(n, err != NULL ? err : arbor_error_ref(n->rt->oom_error));
    }
    arbor__fiber_abandon(f);
    return;
  }
  arbor_error_t *err = arbor_error_new_at(ARBOR_EDEADLK, NULL, "", 0, "",
                                          "task %s abandoned in %s: nothing left in the "
                                          "loop to end it", n->name,
                                          arbor_state_name((arbor_state_t)n->state));
  end_body(n, err != NULL ? err : arbor_error_ref(n->rt->oom_error));
}

static int check_running(arbor_node_t *n) {
  if (n == NULL)
    return ARBOR_EINVAL;
  if (!arbor__has_body(n))
    return ARBOR_EKIND;
  if (n->state == ARBOR_STATE_CREATED || (n->flags & ARBOR__F_BODY_ENDED))
    return ARBOR_ESTATE;
  return 0;
}

/* A fiber's body ends by returning from its function, never by these calls. */
static int check_callback_body(arbor_node_t *n) {
  int rc = check_running(n);
  if (rc == 0 && (n->flags & ARBOR__F_FIBER))
    return ARBOR_EKIND;
  return rc;
}

int arbor_task_done(arbor_node_t *n) {
  int rc = check_callback_body(n);
  if (rc < 0)
    return rc;
  end_body(n, NULL);
  return 0;
}

int arbor_task_fail_error(arbor_node_t *n, arbor_error_t *err) {
  int rc = check_callback_body(n);
  if (rc < 0) {
    arbor_error_unref(err);
    return rc;
  }
  /* NULL means making the error ran out of memory: fail with the preallocated one
   * rather than lose the failure. */
  end_body(n, err != NULL ? err : arbor_error_ref(n->rt->oom_error));
  return 0;
}

int arbor_task_started(arbor_node_t *n) {
  if (n == NULL)
    return ARBOR_EINVAL;
  /* A fiber reports readiness with arbor_fiber_started, which also wakes the
   * fiber waiting for it; this call would leave that one waiting. */
  if (!arbor__has_body(n) || (n->flags & ARBOR__F_FIBER))
    return ARBOR_EKIND;
  if (n->state != ARBOR_STATE_STARTING)
    return ARBOR_ESTATE;
  arbor__transition(n, ARBOR_STATE_STARTED);
  return 0;
}

static int find_handle(struct arbor__task *t, const uv_handle_t *h) {
  uv_handle_t **v = handles(t);
  for (uint16_t i = 0; i < t->nhandles; i++)
    if (v[i] == h)
      return i;
  return -1;
}

int arbor_task_own(arbor_node_t *n, uv_handle_t *h) {
  if (h == NULL)
    return ARBOR_EINVAL;
  int rc = check_running(n);
  if (rc < 0)
    return rc;
  struct arbor__task *t = &n->u.task;
  if (find_handle(t, h) >= 0)
    return ARBOR_EALREADY;
  if (t->nhandles == t->cap) {
    if (t->cap == UINT16_MAX)
      return ARBOR_ENOSPC;
    uint16_t cap = t->cap < UINT16_MAX / 2 ? (uint16_t)(t->cap * 2) : UINT16_MAX;
    uv_handle_t **v = malloc(cap * sizeof *v);
    if (v == NULL)
      return ARBOR_ENOMEM;
    memcpy(v, handles(t), t->nhandles * sizeof *v);
    if (t->cap > 1)
      free(t->h.many);
    t->h.many = v;
    t->cap = cap;
  }
  handles(t)[t->nhandles++] = h;
  return 0;
}

int arbor_task_disown(arbor_node_t *n, uv_handle_t *h) {
  if (n == NULL || h == NULL)
    return ARBOR_EINVAL;
  if (!arbor__has_body(n))
    return ARBOR_EKIND;
  struct arbor__task *t = &n->u.task;
  int i = find_handle(t, h);
  if (i < 0)
    return ARBOR_ENOENT;
  uv_handle_t **v = handles(t);
  v[i] = v[--t->nhandles];
  return 0;
}

void *arbor__task_data(arbor_node_t *n) {
  return n->u.task.data_off != 0 ? (char *)n + n->u.task.data_off : NULL;
}

void *arbor_task_data(arbor_node_t *n) {
  if (n == NULL || !arbor__has_body(n) || (n->flags & ARBOR__F_FIBER))
    return NULL;                 /* a fiber's data is the fiber itself */
  return arbor__task_data(n);
}

void *arbor_task_arg(const arbor_node_t *n) {
  return n != NULL && arbor__has_body(n) ? n->arg : NULL;
}
