/* supervisor/runtime.c - the runtime: its loop handles, the deferred work queues,
 * closing, and arbor_run.
 *
 * arbor never calls a user callback from inside an API call, and never frees a
 * node inside one. Both kinds of work are queued and done by arbor__runtime_drain,
 * which a uv_idle_t runs while anything is queued (an active idle handle also keeps
 * the loop from blocking in poll). When nothing is queued the idle handle is
 * stopped, so an idle runtime costs no wake-ups.
 */
#include <signal.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---------------------------------------------------------------- queues */

int arbor__queue_reserve(struct arbor__queue *q, size_t extra) {
  if (q->head > 0 && q->head == q->len)
    q->head = q->len = 0;
  if (q->len + extra <= q->cap)
    return 0;
  if (q->head > 0) {             /* slide the live part down before growing */
    memmove(q->items, q->items + q->head, (q->len - q->head) * sizeof *q->items);
    q->len -= q->head;
    q->head = 0;
    if (q->len + extra <= q->cap)
      return 0;
  }
  size_t cap = q->cap ? q->cap * 2 : 64;
  while (cap < q->len + extra)
    cap *= 2;
  arbor_node_t **v = realloc(q->items, cap * sizeof *v);
  if (v == NULL)
    return ARBOR_ENOMEM;
  q->items = v;
  q->cap = cap;
  return 0;
}

/* Appends node, taking a reference. Returns 0 or ARBOR_ENOMEM. */
int arbor__queue_push(struct arbor__queue *q, arbor_node_t *node) {
  if (arbor__queue_reserve(q, 1) < 0)
    return ARBOR_ENOMEM;
  q->items[q->len++] = node;
  node->refs++;
  return 0;
}

void arbor__queue_free(struct arbor__queue *q) {
  free(q->items);
  memset(q, 0, sizeof *q);
}

static size_t queue_size(const struct arbor__queue *q) { return q->len - q->head; }

/* ----------------------------------------------------------------- drain */

static void drain(arbor_runtime_t *rt);
static void on_idle(uv_idle_t *idle) { drain(idle->data); }

void arbor__runtime_wake(arbor_runtime_t *rt) {
  if (!uv_is_active((uv_handle_t *)&rt->idle) && !uv_is_closing((uv_handle_t *)&rt->idle))
    uv_idle_start(&rt->idle, on_idle);
}

void arbor__runtime_tree_changed(arbor_runtime_t *rt) {
  if (rt->closing || rt->running)
    arbor__runtime_wake(rt);
}

static void close_handles(arbor_runtime_t *rt);
static int failure_code(const arbor_runtime_t *rt);

/* Starts the tasks spawned since the last pass, runs due finish callbacks, trims
 * retention and moves a closing runtime on. Work queued by the callbacks it runs
 * waits for the next pass, so one busy tree cannot starve the loop. */
static void drain(arbor_runtime_t *rt) {
  size_t n = queue_size(&rt->runq);
  while (n-- > 0) {
    arbor_node_t *task = rt->runq.items[rt->runq.head++];
    arbor__task_run(task);
    arbor__node_unref(task);
  }
  arbor__fibers_drain(rt);
  n = queue_size(&rt->finq);
  while (n-- > 0) {
    arbor_node_t *node = rt->finq.items[rt->finq.head++];
    node->finish(node, node->arg);
    arbor__node_unref(node);
  }
  if (!rt->closing)
    arbor__retention_trim(rt, rt->retain_max);
  arbor__timers_rearm(rt);

  int idle = queue_size(&rt->runq) == 0 && queue_size(&rt->finq) == 0 &&
             queue_size(&rt->fibq) == 0;
  if (!idle)
    return;
  uv_idle_stop(&rt->idle);
  if (rt->root->live_children > 0)
    return;
  if (rt->closing == 1) {
    arbor_node_t *root = rt->root;
    rt->closing = 2;             /* every node is FINISHED: close our handles */
    root->flags |= ARBOR__F_BODY_ENDED;
    arbor__transition(root, ARBOR_STATE_STOPPED);
    root->outcome = rt->first_failure != NULL ? ARBOR_OUTCOME_FAILED : ARBOR_OUTCOME_OK;
    arbor__transition(root, ARBOR_STATE_FINISHED);
    close_handles(rt);
  } else if (rt->running) {
    uv_stop(rt->loop);           /* arbor_run: the tree is empty */
  }
}

/* --------------------------------------------------------------- runtime */

int arbor_runtime_new(arbor_runtime_t **out, uv_loop_t *loop, const arbor_runtime_opts_t *opts) {
  if (out == NULL || loop == NULL)
    return ARBOR_EINVAL;
  arbor_runtime_t *rt = calloc(1, sizeof *rt);
  if (rt == NULL)
    return ARBOR_ENOMEM;
  rt->loop = loop;
  rt->retain_max = opts != NULL && opts->retain_finished > 0 ? opts->retain_finished : 1024;
  rt->no_signals = opts != NULL && opts->no_signals;
  rt->memory_scan = opts != NULL && opts->memory_scan;
  rt->shutdown_timeout_ms =
      opts != NULL && opts->shutdown_timeout_ms > 0 ? opts->shutdown_timeout_ms : 10000;
  arbor__stacks_init(&rt->stacks,
                     opts != NULL && opts->fiber_stack_size > 0 ? opts->fiber_stack_size
                                                                : 64 * 1024,
                     opts != NULL && opts->fiber_stack_pool > 0 ? opts->fiber_stack_pool : 64);
  rt->next_id = 1;
  if (opts != NULL && opts->exec_helper != NULL &&
      (rt->exec_helper = strdup(opts->exec_helper)) == NULL) {
    free(rt);
    return ARBOR_ENOMEM;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rt->mono0_ns = uv_hrtime();
  rt->wall0_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;

  int rc = ARBOR_ENOMEM;
  rt->oom_error = arbor_error_new_at(ARBOR_ENOMEM, NULL, "", 0, "",
                                     "out of memory while recording a failure");
  if (rt->oom_error == NULL)
    goto fail;
  if ((rc = arbor__idmap_init(&rt->ids)) < 0)
    goto fail_oom;
  if ((rc = arbor__recorder_init(&rt->rec, opts != NULL ? opts->event_capacity : 0)) < 0)
    goto fail_ids;
  rt->rec.off = opts != NULL && opts->no_events;
  rc = ARBOR_ENOMEM;
  arbor_node_t *root = arbor__node_new(NULL, ARBOR_KIND_ROOT, "root", 0);
  if (root == NULL)
    goto fail_rec;
  root->rt = rt;
  root->id = rt->next_id++;
  root->t_created = uv_hrtime();
  rt->stats.created[ARBOR_KIND_ROOT]++;
  rt->stats.nodes[ARBOR_KIND_ROOT][ARBOR_STATE_CREATED]++;
  if (arbor__idmap_put(&rt->ids, root) < 0)
    goto fail_root;
  rt->root = root;
  /* Neither init can fail (libuv returns 0 for both); were that to change, a
   * handle half made here would need closing through the loop before rt is freed. */
  rc = uv_idle_init(loop, &rt->idle);
  ARBOR_ASSERT(rc == 0);
  rc = arbor__timers_init(rt);
  ARBOR_ASSERT(rc == 0);
  rt->idle.data = rt;
  rt->handles_open = 2;
  arbor__recorder_add(&rt->rec, root->t_created, root->id, 0, ARBOR_EVENT_CREATED,
                      ARBOR_KIND_ROOT, ARBOR_STATE_CREATED, ARBOR_STATE_CREATED, NULL);
  arbor__transition(root, ARBOR_STATE_STARTED);
  *out = rt;
  return 0;

fail_root:
  free(root);
fail_rec:
  arbor__recorder_free(&rt->rec);
fail_ids:
  arbor__idmap_free(&rt->ids);
fail_oom:
  arbor_error_unref(rt->oom_error);
fail:
  free(rt->exec_helper);
  free(rt);
  return rc;
}

uv_loop_t *arbor_runtime_loop(const arbor_runtime_t *rt) { return rt != NULL ? rt->loop : NULL; }
arbor_node_t *arbor_root(arbor_runtime_t *rt) { return rt != NULL ? rt->root : NULL; }

/* Frees every node and the runtime once all handles are closed. */
static void free_all(arbor_runtime_t *rt) {
  arbor_runtime_close_cb cb = rt->close_cb;
  void *arg = rt->close_arg;
  struct arbor__run *run = rt->run;
  if (run != NULL) {             /* inside arbor_run: hand it the result, stop the loop */
    run->freed = 1;
    run->failure = failure_code(rt);
    uv_stop(rt->loop);
  }
  rt->freeing = 1;
  arbor__retention_trim(rt, 0);
  /* Evicted nodes a caller still references die with the runtime (documented). */
  while (rt->zombies != NULL) {
    arbor_node_t *z = rt->zombies;
    rt->zombies = z->next;
    arbor__node_free(z);
  }
  arbor__node_free(rt->root);
  arbor__queue_free(&rt->runq);
  arbor__queue_free(&rt->finq);
  arbor__queue_free(&rt->retainq);
  arbor__queue_free(&rt->fibq);
  arbor__stacks_free(&rt->stacks);
  arbor__timers_free(rt);
  arbor__idmap_free(&rt->ids);
  arbor__recorder_free(&rt->rec);
  arbor_error_unref(rt->oom_error);
  arbor_error_unref(rt->first_failure);
  free(rt->exec_helper);
  if (cb != NULL)
    cb(rt, arg);
  free(rt);
}

void arbor__runtime_handle_closed(arbor_runtime_t *rt) {
  if (--rt->handles_open == 0)
    free_all(rt);
}

static void on_handle_closed(uv_handle_t *h) { arbor__runtime_handle_closed(h->data); }

void arbor__owner_hold(struct arbor__owner *o) {
  o->held++;
  o->rt->handles_open++;
}

void arbor__owner_release(struct arbor__owner *o) {
  arbor_runtime_t *rt = o->rt;
  if (--o->held == 0)
    free(o);                     /* the record, whose first member o is */
  arbor__runtime_handle_closed(rt);
}

static void owner_closed(uv_handle_t *h) { arbor__owner_release(h->data); }

void arbor__owner_adopt(struct arbor__owner *o, uv_handle_t *h) {
  h->data = o;
  arbor__owner_hold(o);
}

void arbor__owner_close(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, owner_closed);
}

static void close_handles(arbor_runtime_t *rt) {
  uv_close((uv_handle_t *)&rt->idle, on_handle_closed);
  arbor__timers_close(rt, on_handle_closed);
  if (rt->signals_on) {
    uv_close((uv_handle_t *)&rt->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&rt->sigterm, on_handle_closed);
  }
  if (rt->shutdown_timer != NULL) {
    arbor__htimer_close(rt->shutdown_timer);
    rt->shutdown_timer = NULL;
  }
  if (rt->reaper != NULL)
    arbor__reaper_close(rt);
  struct arbor__closer *c;
  while ((c = rt->closers) != NULL) {
    arbor__runtime_remove_closer(rt, c);
    c->close(c);
  }
}

/* ------------------------------------------------------------- extension.h */

void arbor__runtime_add_closer(arbor_runtime_t *rt, struct arbor__closer *c) {
  c->prev = NULL;
  c->next = rt->closers;
  if (c->next != NULL)
    c->next->prev = c;
  rt->closers = c;
}

void arbor__runtime_remove_closer(arbor_runtime_t *rt, struct arbor__closer *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else if (rt->closers == c)
    rt->closers = c->next;
  else
    return;                      /* not linked */
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

void arbor__runtime_hold(arbor_runtime_t *rt) { rt->handles_open++; }
void arbor__runtime_release(arbor_runtime_t *rt) { arbor__runtime_handle_closed(rt); }
int arbor__runtime_closing(const arbor_runtime_t *rt) { return rt->closing != 0; }

int64_t arbor__wall_ns(const arbor_runtime_t *rt, uint64_t mono_ns) {
  return rt->wall0_ns + ((int64_t)mono_ns - (int64_t)rt->mono0_ns);
}

void arbor__runtime_set_otlp(arbor_runtime_t *rt, arbor_otlp_t *otlp) { rt->otlp = otlp; }
arbor_otlp_t *arbor__runtime_otlp(const arbor_runtime_t *rt) { return rt->otlp; }

void arbor__events_subscribe(arbor_runtime_t *rt, struct arbor__events_sub *sub) {
  sub->armed = 0;
  sub->prev = NULL;
  sub->next = rt->rec.subs;
  if (sub->next != NULL)
    sub->next->prev = sub;
  rt->rec.subs = sub;
}

void arbor__events_unsubscribe(arbor_runtime_t *rt, struct arbor__events_sub *sub) {
  if (sub->armed) {
    sub->armed = 0;
    rt->rec.armed--;
  }
  if (sub->prev != NULL)
    sub->prev->next = sub->next;
  else if (rt->rec.subs == sub)
    rt->rec.subs = sub->next;
  if (sub->next != NULL)
    sub->next->prev = sub->prev;
  sub->next = sub->prev = NULL;
}

void arbor__events_arm(arbor_runtime_t *rt, struct arbor__events_sub *sub) {
  if (!sub->armed) {
    sub->armed = 1;
    rt->rec.armed++;
  }
}

/* ------------------------------------------------------------- shutdown */

/* Cancels the top-level nodes, newest first: the reverse of their start order
 * (a supervisor then stops its own children in reverse order, one by one). The
 * children list does not change during the walk (internal.h). */
static void cancel_top_reverse(arbor_runtime_t *rt) {
  arbor_node_t *first = rt->root->first_child;
  if (first == NULL)
    return;
  arbor_node_t *c = first->prev;
  for (;;) {
    arbor_node_t *prev = c->prev;
    if (!arbor__is_finished(c) && c->error == NULL)
      arbor__cancel(c);
    if (c == first)
      break;
    c = prev;
  }
}

static int mark_unfinished(arbor_node_t *n, int depth, void *arg) {
  (void)depth;
  (void)arg;
  if (n->kind == ARBOR_KIND_ROOT || arbor__is_finished(n))
    return 0;
  arbor__mark_stuck(n);
  if (n->kind == ARBOR_KIND_SERVICE && n->u.svc->proc != NULL)
    arbor__process_kill(n);
  return 0;
}

/* The grace period is over (or an immediate shutdown): rule 8's give-up. Every
 * node still unfinished is stuck; process groups get SIGKILL; task bodies that
 * still run end FAILED (ARBOR_EDEADLK) or, for fibers, are woken with
 * ARBOR_ECANCELED wherever they wait, shields included. A fiber that waits again
 * is given up on again on the next tick. */
static void give_up(arbor_runtime_t *rt) {
  if (rt->root->live_children == 0)
    return;
  rt->shutdown = 2;
  rt->gave_up = 1;
  if (rt->run != NULL)
    rt->run->gave_up = 1;
  arbor_tree_walk(rt->root, -1, mark_unfinished, NULL);
  arbor__abandon(rt->root);
  arbor__runtime_wake(rt);
}

#define GIVE_UP_AGAIN_MS 100

static void on_shutdown_timer(uv_timer_t *h) {
  struct arbor__htimer *t = h->data;
  arbor_runtime_t *rt = t->rt;
  give_up(rt);
  /* Until the tree is empty: a fiber that parks again (in a loop inside a
   * shield, say) is woken again. */
  if (rt->root->live_children > 0)
    uv_timer_start(h, on_shutdown_timer, GIVE_UP_AGAIN_MS, 0);
}

/* Arms the grace period. The timer does not keep the loop alive: with nothing
 * else in the loop, arbor_run gives up at once instead (see there). */
static int arm_shutdown_timer(arbor_runtime_t *rt) {
  if (rt->shutdown_timer == NULL) {
    int rc = arbor__htimer_new(rt->root, &rt->shutdown_timer);
    if (rc < 0)
      return rc;
    uv_unref((uv_handle_t *)&rt->shutdown_timer->handle);
  }
  uv_timer_start(&rt->shutdown_timer->handle, on_shutdown_timer, rt->shutdown_timeout_ms, 0);
  return 0;
}

int arbor_shutdown(arbor_runtime_t *rt, int immediate) {
  if (rt == NULL)
    return ARBOR_EINVAL;
  if (rt->shutdown == 2 || (rt->shutdown == 1 && !immediate))
    return ARBOR_EALREADY;
  if (rt->shutdown == 0) {
    rt->shutdown = 1;
    cancel_top_reverse(rt);
    if (!immediate && arm_shutdown_timer(rt) < 0)
      immediate = 1;             /* no timer, no grace: better now than never */
  }
  if (immediate)
    give_up(rt);
  rt->shutdown = immediate ? 2 : 1;
  arbor__runtime_wake(rt);
  return 0;
}

int arbor_runtime_close(arbor_runtime_t *rt, arbor_runtime_close_cb cb, void *arg) {
  if (rt == NULL)
    return ARBOR_EINVAL;
  if (rt->closing)
    return ARBOR_EALREADY;
  rt->closing = 1;
  rt->close_cb = cb;
  rt->close_arg = arg;
  arbor_node_t *root = rt->root;
  root->flags |= ARBOR__F_CANCEL;
  root->t_stop = arbor__now();
  arbor__transition(root, ARBOR_STATE_STOPPING);
  if (rt->shutdown == 0 && root->live_children > 0) {
    rt->shutdown = 1;
    (void)arm_shutdown_timer(rt);   /* without it, only an empty loop gives up */
  }
  cancel_top_reverse(rt);
  arbor__runtime_wake(rt);       /* the drain finishes the close from the loop */
  return 0;
}

/* ------------------------------------------------------------ arbor_run */

/* The first SIGINT/SIGTERM shuts down gracefully, a second one at once. */
static void on_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  arbor_runtime_t *rt = sig->data;
  (void)arbor_shutdown(rt, rt->shutdown != 0);
}

static int start_signals(arbor_runtime_t *rt) {
  int rc;
  if ((rc = uv_signal_init(rt->loop, &rt->sigint)) < 0)
    return rc;
  if ((rc = uv_signal_init(rt->loop, &rt->sigterm)) < 0) {
    uv_close((uv_handle_t *)&rt->sigint, NULL);
    return rc;
  }
  rt->sigint.data = rt->sigterm.data = rt;
  rt->signals_on = 1;
  rt->handles_open += 2;
  uv_signal_start(&rt->sigint, on_signal, SIGINT);
  uv_signal_start(&rt->sigterm, on_signal, SIGTERM);
  /* A write to a peer that reset the connection raises SIGPIPE, which would kill
   * the whole supervisor for one dead client: arbor_run's program gets EPIPE
   * from the write instead. */
  signal(SIGPIPE, SIG_IGN);
  /* A signal watcher alone must not keep the loop running. */
  uv_unref((uv_handle_t *)&rt->sigint);
  uv_unref((uv_handle_t *)&rt->sigterm);
  return 0;
}

/* The first top-level failure as arbor_run's result. */
static int failure_code(const arbor_runtime_t *rt) {
  if (rt->first_failure == NULL)
    return 0;
  int code = arbor_error_code(rt->first_failure);
  return code < 0 ? code : ARBOR_EFAILED;
}

int arbor_run(arbor_runtime_t *rt) {
  if (rt == NULL)
    return ARBOR_EINVAL;
  if (rt->closing)
    return ARBOR_ECLOSING;
  uv_loop_t *loop = rt->loop;
  /* A callback may close the runtime while we run the loop; free_all then tells us
   * through `run` (on our stack) and we never touch rt again. */
  struct arbor__run run = {0};
  rt->run = &run;
  if (!rt->no_signals && !rt->signals_on)
    (void)start_signals(rt);     /* without signal handling arbor_run still works */
  rt->running = 1;
  arbor__runtime_wake(rt);       /* an already empty tree stops at the first pass */
  int alive = uv_run(loop, UV_RUN_DEFAULT);
  int rc = 0;
  if (!run.freed) {
    rt->running = 0;
    /* uv_run returned 0 (nothing left in the loop) with nodes still waiting:
     * nothing can ever wake them; say so instead of hanging. A uv_stop from
     * elsewhere (alive != 0) just ends the run. */
    if (alive == 0 && rt->root->live_children > 0)
      rc = ARBOR_EDEADLK;
    if (!rt->closing)
      arbor_runtime_close(rt, NULL, NULL);
  }
  while (!run.freed) {
    /* uv_run returning 0 with the close unfinished means a node (say, a task whose
     * cancel hook never ends it) waits with nothing in the loop to wake it. Rule 8:
     * shutdown gives up on it with an error rather than hang. */
    if (uv_run(loop, UV_RUN_DEFAULT) == 0 && !run.freed) {
      arbor__abandon(rt->root);
      if (rc == 0)
        rc = ARBOR_EDEADLK;
    }
  }
  if (rc == 0 && run.gave_up)
    rc = ARBOR_EDEADLK;
  return rc != 0 ? rc : run.failure;
}

/* ----------------------------------------------------------------- events */

void arbor_events_stats(const arbor_runtime_t *rt, arbor_events_stats_t *stats) {
  if (rt == NULL || stats == NULL)
    return;
  arbor__recorder_stats(&rt->rec, stats);
}

int arbor_events_read(const arbor_runtime_t *rt, uint64_t *cursor, arbor_event_t *out,
                      size_t max, uint64_t *missed) {
  if (rt == NULL || cursor == NULL || (out == NULL && max > 0))
    return ARBOR_EINVAL;
  if (max > INT32_MAX)
    max = INT32_MAX;
  return arbor__recorder_read(&rt->rec, cursor, out, max, missed);
}
