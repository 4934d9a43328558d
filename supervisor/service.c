/* supervisor/service.c - service nodes and their incarnations, the service
 * manager inside bodies (async_service's API), rules 7 and 8.
 *
 * A service node lives from arbor_service_add until it is stopped for good; its
 * id never changes. Each run of its body is a child node, an incarnation: a fiber
 * task (kind TASK) for a fiber service, a fiber running the program (kind
 * PROCESS, procsvc.c) for a process service. The service's lifecycle state
 * follows its first run (STARTING, then STARTED once the first incarnation
 * reported ready) and its final stop (STOPPING, STOPPED, FINISHED); in between,
 * its phase (arbor_phase_t) says where it is: running, stopping an incarnation,
 * waiting for a restart.
 *
 * Who decides what happens when an incarnation ends: under a supervisor, the
 * supervisor (supervisor.c: restart type, strategy, intensity, backoff);
 * anywhere else the service ran once and is done, with its incarnation's outcome.
 *
 * Rule 8's half that lives here: stopping an incarnation arms the service's
 * timer for its shutdown timeout; an incarnation still unfinished when it fires
 * is marked stuck (an event), and a program gets SIGKILL to its process group.
 */
#include <signal.h>
#include <string.h>

#include "internal.h"

#define DEFAULT_SHUTDOWN_TIMEOUT_MS 5000

/* ------------------------------------------------------------------ timers */

static void htimer_closed(uv_handle_t *h) {
  struct arbor__htimer *t = h->data;
  arbor_runtime_t *rt = t->rt;
  free(t);
  arbor__runtime_handle_closed(rt);
}

/* Allocated and initialised before the node exists is not possible (the node is
 * the timer's data), so callers allocate first with node NULL and fill it in:
 * uv_timer_init cannot fail on a live loop. */
int arbor__htimer_new(arbor_node_t *n, struct arbor__htimer **out) {
  struct arbor__htimer *t = calloc(1, sizeof *t);
  if (t == NULL)
    return ARBOR_ENOMEM;
  int rc = uv_timer_init(n->rt->loop, &t->handle);
  ARBOR_ASSERT(rc == 0);
  (void)rc;
  t->handle.data = t;
  t->node = n;
  t->rt = n->rt;
  n->rt->handles_open++;
  *out = t;
  return 0;
}

void arbor__htimer_close(struct arbor__htimer *t) {
  t->node = NULL;
  uv_close((uv_handle_t *)&t->handle, htimer_closed);
}

/* ----------------------------------------------------------- shared parts */

struct arbor__child *arbor__child_of(arbor_node_t *n) {
  if (n == NULL)
    return NULL;
  if (n->kind == ARBOR_KIND_SERVICE)
    return &n->u.svc->c;
  if (n->kind == ARBOR_KIND_SUPERVISOR)
    return &n->u.sup->c;
  return NULL;
}

void arbor__mark_stuck(arbor_node_t *n) {
  if (n->flags & ARBOR__F_STUCK)
    return;
  n->flags |= ARBOR__F_STUCK;
  n->rt->stats.stuck++;
  arbor__record(n, ARBOR_EVENT_STUCK, NULL);
}

static void wake_start_waiters(struct arbor__child *c) {
  struct arbor__waiter *w;
  while ((w = c->start_waiters) != NULL) {
    c->start_waiters = w->next;
    if (w->next != NULL)
      w->next->prev = NULL;
    w->next = w->prev = NULL;
    arbor__fiber_wake(w->cx, 0);
  }
}

/* Its first readiness: the node is STARTED, whoever waits for that wakes. */
void arbor__child_first_ready(arbor_node_t *n) {
  struct arbor__child *c = arbor__child_of(n);
  if (c->ever_started)
    return;
  c->ever_started = 1;
  if (n->state == ARBOR_STATE_STARTING)
    arbor__transition(n, ARBOR_STATE_STARTED);
  wake_start_waiters(c);
}

/* Keeps the failure of a run, newest first, at most ARBOR_SERVICE_HISTORY. */
void arbor__child_history_add(struct arbor__child *c, uint64_t inc_id, arbor_error_t *err) {
  struct arbor__failure *f = &c->hist[c->hist_head];
  arbor_error_unref(f->error);
  *f = (struct arbor__failure){.incarnation_id = inc_id, .time_ns = arbor__now(),
                               .error = arbor_error_ref(err)};
  c->hist_head = (c->hist_head + 1) % ARBOR_SERVICE_HISTORY;
  if (c->nhist < ARBOR_SERVICE_HISTORY)
    c->nhist++;
  arbor_error_unref(c->run_error);
  c->run_error = arbor_error_ref(err);
}

/* The newest kept failure, to note the restart that followed it. */
struct arbor__failure *arbor__child_history_newest(struct arbor__child *c) {
  if (c->nhist == 0)
    return NULL;
  return &c->hist[(c->hist_head + ARBOR_SERVICE_HISTORY - 1) % ARBOR_SERVICE_HISTORY];
}

/* The node is FINISHED: its timer goes, waiters for its start learn it never
 * will. The rest stays readable until the node is freed. */
void arbor__child_node_finished(arbor_node_t *n) {
  struct arbor__child *c = arbor__child_of(n);
  c->phase = ARBOR_PHASE_DONE;
  if (c->timer != NULL) {
    arbor__htimer_close(c->timer);
    c->timer = NULL;
  }
  if (n->kind == ARBOR_KIND_SERVICE && n->u.svc->logfile != NULL) {
    arbor__logfile_close(n->u.svc->logfile);   /* it never runs again: flush, close */
    n->u.svc->logfile = NULL;
  }
  if (n->kind == ARBOR_KIND_SERVICE) {
    arbor__probe_close(n->u.svc->probe[ARBOR_PROBE_LIVENESS]);
    arbor__probe_close(n->u.svc->probe[ARBOR_PROBE_READINESS]);
  }
  wake_start_waiters(c);
}

void arbor__child_free(arbor_node_t *n) {
  struct arbor__child *c = arbor__child_of(n);
  if (c == NULL)
    return;
  for (uint32_t i = 0; i < ARBOR_SERVICE_HISTORY; i++)
    arbor_error_unref(c->hist[i].error);
  arbor_error_unref(c->run_error);
  free(c->after);
  if (c->timer != NULL)          /* the runtime is being freed: never finished */
    arbor__htimer_close(c->timer);
  if (n->kind == ARBOR_KIND_SERVICE) {
    struct arbor__svc *s = n->u.svc;
    if (s->proc != NULL) {
      arbor__memlimit_unwatch(n);   /* a guard: a reaped program is unwatched already */
      arbor__proc_spec_free(s->proc);
      arbor__proc_spec_free(s->next_proc);
      arbor__logring_free(&s->log);
      arbor__logfile_close(s->logfile);
    }
    arbor__probe_free(s->probe[ARBOR_PROBE_LIVENESS]);
    arbor__probe_free(s->probe[ARBOR_PROBE_READINESS]);
    free(s);
  } else {
    struct arbor__sup *s = n->u.sup;
    arbor_error_unref(s->fail_error);
    free(s->restart_times);
    free(s);
  }
}

/* -------------------------------------------------------------- services */

static struct arbor__svc *svc_of(arbor_node_t *n) { return n->u.svc; }

static void on_shutdown_timeout(uv_timer_t *h);

/* Starts a new incarnation. Returns 0, or an error when it could not be spawned
 * (out of memory): the run then counts as failed at once. */
int arbor__svc_start(arbor_node_t *n) {
  struct arbor__svc *s = svc_of(n);
  ARBOR_ASSERT(s->inc == NULL);
  int rc;
  if ((rc = arbor__probe_prepare(s->probe[ARBOR_PROBE_LIVENESS], n)) < 0 ||
      (rc = arbor__probe_prepare(s->probe[ARBOR_PROBE_READINESS], n)) < 0)
    return rc;
  if (s->next_proc != NULL) {    /* arbor_service_update's: no run uses the old one now */
    arbor__proc_spec_free(s->proc);
    s->proc = s->next_proc;
    s->next_proc = NULL;
  }
  if (s->c.runs > 0) {
    s->c.restarts++;
    arbor__record(n, ARBOR_EVENT_RESTART, s->c.run_error);
  }
  s->c.runs++;
  char name[96];
  snprintf(name, sizeof name, "%s#%u", n->name, s->c.runs);
  arbor_fiber_spec_t fs = {.name = name,
                           .fn = s->fiber != NULL ? s->fiber : arbor__process_body,
                           .arg = s->fiber != NULL ? n->arg : (void *)n,
                           .stack_size = s->stack_size};
  rc = arbor__fiber_spawn_kind(n, &fs, s->proc != NULL || s->handshake,
                               s->proc != NULL ? ARBOR_KIND_PROCESS : ARBOR_KIND_TASK,
                               &s->inc);
  if (rc < 0) {
    s->inc = NULL;
    return rc;
  }
  s->c.phase = ARBOR_PHASE_STARTING;
  s->inc_ready = 0;
  s->c.not_ready = 0;
  arbor__probe_start(s->probe[ARBOR_PROBE_LIVENESS]);    /* a run's probes start over */
  arbor__probe_start(s->probe[ARBOR_PROBE_READINESS]);
  if (n->state == ARBOR_STATE_CREATED)
    arbor__transition(n, ARBOR_STATE_STARTING);
  return 0;
}

/* Stops the running incarnation (for a restart or for good); the service's
 * shutdown timeout starts now. */
void arbor__svc_stop(arbor_node_t *n) {
  struct arbor__svc *s = svc_of(n);
  if (s->inc == NULL) {
    if (s->c.phase != ARBOR_PHASE_DONE)
      s->c.phase = ARBOR_PHASE_IDLE;
    return;
  }
  s->c.phase = ARBOR_PHASE_STOPPING;
  arbor__probe_stop(s->probe[ARBOR_PROBE_LIVENESS]);     /* a stopping run is not probed */
  arbor__probe_stop(s->probe[ARBOR_PROBE_READINESS]);
  arbor_node_t *inc = s->inc;
  arbor__cancel(inc);            /* may finish it at once (never ran) */
  if (s->inc == inc && !arbor__is_finished(inc))
    uv_timer_start(&s->c.timer->handle, on_shutdown_timeout, s->shutdown_timeout_ms, 0);
}

/* Rule 8: the incarnation stayed STOPPING past the shutdown timeout. */
static void on_shutdown_timeout(uv_timer_t *h) {
  struct arbor__htimer *t = h->data;
  arbor_node_t *n = t->node;
  if (n == NULL)
    return;
  struct arbor__svc *s = svc_of(n);
  if (s->inc == NULL || arbor__is_finished(s->inc))
    return;
  arbor__mark_stuck(s->inc);
  if (n->state == ARBOR_STATE_STOPPING)
    arbor__mark_stuck(n);
  if (s->proc != NULL)
    arbor__process_kill(n);      /* the process group gets SIGKILL */
}

/* The service is stopped for good and its incarnation is gone: it finishes with
 * the outcome of that last run (FAILED with its chain if it failed). */
static void end_service(arbor_node_t *n) {
  struct arbor__svc *s = svc_of(n);
  s->c.phase = ARBOR_PHASE_DONE;
  n->flags |= ARBOR__F_BODY_ENDED;
  if (n->state == ARBOR_STATE_CREATED) {
    arbor__finish(n);
    return;
  }
  arbor_error_t *err = s->c.last_failed ? s->c.run_error : NULL;
  if (n->state == ARBOR_STATE_STARTING)
    arbor__transition(n, ARBOR_STATE_STOPPING);
  else if (n->state == ARBOR_STATE_STARTED)
    arbor__transition(n, err != NULL ? ARBOR_STATE_STOPPING : ARBOR_STATE_STOPPED);
  if (err != NULL)
    arbor__node_failed(n, arbor_error_ref(err));
  arbor__maybe_finish(n);
}

/* The service (or supervisor) n is not to run again. For a service: once its
 * incarnation is gone it finishes. */
void arbor__svc_final(arbor_node_t *n) {
  struct arbor__svc *s = svc_of(n);
  s->c.final = 1;
  s->c.want_run = 0;
  s->c.restart_now = 0;
  /* Cancelled between runs (in its backoff, say): the cancel ends it, not the
   * failure before, which its history keeps. */
  if (s->inc == NULL && (n->flags & ARBOR__F_CANCEL))
    s->c.last_failed = 0;
  if (s->inc != NULL) {
    if (n->state == ARBOR_STATE_STARTING || n->state == ARBOR_STATE_STARTED)
      arbor__transition(n, ARBOR_STATE_STOPPING);
    if (s->c.phase != ARBOR_PHASE_STOPPING || !(s->inc->flags & ARBOR__F_CANCEL))
      arbor__svc_stop(n);
    return;
  }
  end_service(n);
}

void arbor__svc_cancel(arbor_node_t *n) { arbor__svc_final(n); }

/* The run is ready: its incarnation said so, and its readiness probe passed. */
static void run_ready(arbor_node_t *n, arbor_node_t *inc) {
  struct arbor__svc *s = svc_of(n);
  s->c.phase = ARBOR_PHASE_RUNNING;
  s->c.ready_at = uv_now(n->rt->loop);
  if (s->c.runs > 1 && s->c.last_end_ns != 0)   /* a restart: how long it was down */
    arbor__hist_add(&n->rt->stats.restart_gap, inc->t_entered[ARBOR_STATE_STARTED -
                                                               ARBOR_STATE_STARTING] -
                                                   s->c.last_end_ns);
  arbor__child_first_ready(n);
  if (n->parent->kind == ARBOR_KIND_SUPERVISOR)
    arbor__sup_child_ready(n->parent, n);
}

/* Its incarnation is STARTED. With a readiness probe that has not passed yet the
 * run stays STARTING (and the service too, on its first run): the probe's pass
 * makes it ready (arbor__svc_readiness). */
void arbor__svc_inc_ready(arbor_node_t *n, arbor_node_t *inc) {
  struct arbor__svc *s = svc_of(n);
  if (inc != s->inc || s->c.phase != ARBOR_PHASE_STARTING)
    return;
  s->inc_ready = 1;
  if (arbor__probe_passing(s->probe[ARBOR_PROBE_READINESS]))
    run_ready(n, inc);
}

/* A readiness probe's verdict (probe.c). Passing: a run held in STARTING is
 * ready now; a running one that was not ready is again (a READY event), and the
 * dependents held back by it may start (its supervisor pumps). Failing while it
 * runs: not ready (a NOT_READY event with err); its state stays STARTED, as the
 * lifecycle never goes back, and running dependents are left alone, as in
 * Kubernetes. Takes err. */
void arbor__svc_readiness(arbor_node_t *n, int ready, arbor_error_t *err) {
  struct arbor__svc *s = svc_of(n);
  if (ready && s->c.phase == ARBOR_PHASE_STARTING && s->inc_ready && s->inc != NULL) {
    run_ready(n, s->inc);
  } else if (ready && s->c.not_ready) {
    s->c.not_ready = 0;
    arbor__record(n, ARBOR_EVENT_READY, NULL);
    if (n->parent->kind == ARBOR_KIND_SUPERVISOR)
      arbor__sup_pump(n->parent);
  } else if (!ready && s->c.phase == ARBOR_PHASE_RUNNING && !s->c.not_ready) {
    s->c.not_ready = 1;
    arbor__record(n, ARBOR_EVENT_NOT_READY, err);
  }
  arbor_error_unref(err);
}

void arbor__svc_inc_finished(arbor_node_t *n, arbor_node_t *inc) {
  struct arbor__svc *s = svc_of(n);
  if (inc != s->inc) {           /* not the current one: nothing to decide */
    arbor__maybe_finish(n);
    return;
  }
  s->inc = NULL;
  uv_timer_stop(&s->c.timer->handle);
  arbor__probe_stop(s->probe[ARBOR_PROBE_LIVENESS]);     /* ended on its own: no more probes */
  arbor__probe_stop(s->probe[ARBOR_PROBE_READINESS]);
  s->c.not_ready = 0;
  int requested = s->c.phase == ARBOR_PHASE_STOPPING && !s->c.fail_run;
  int failed = inc->outcome == ARBOR_OUTCOME_FAILED;
  s->c.fail_run = 0;
  s->c.last_failed = (uint8_t)failed;
  s->c.last_inc_id = inc->id;
  s->c.last_end_ns = inc->t_finished;
  if (failed)
    arbor__child_history_add(&s->c, inc->id, inc->error);
  s->c.phase = ARBOR_PHASE_IDLE;
  if (s->c.final) {
    end_service(n);
    return;
  }
  if (s->c.restart_now) {        /* arbor_service_restart: again, at once */
    s->c.restart_now = 0;
    arbor_error_unref(s->c.run_error);
    s->c.run_error = NULL;
    if (arbor__svc_start(n) == 0)
      return;
    failed = 1;                  /* out of memory: the new run failed at once, */
    requested = 0;               /* kept with its error as child_start does */
    s->c.last_failed = 1;
    arbor__child_history_add(&s->c, 0, n->rt->oom_error);
  }
  if (n->parent->kind == ARBOR_KIND_SUPERVISOR) {
    arbor__sup_child_ended(n->parent, n, failed, requested);
    return;
  }
  arbor__svc_final(n);           /* unsupervised: it ran once */
}

/* A memory limit is a program's: a fiber's memory is arbor's own. Refused
 * rather than ignored, so that nobody believes a fiber is limited. */
static int fiber_with_limit(const arbor_service_spec_t *spec) {
  return spec->fiber != NULL && (spec->max_memory > 0 || spec->max_memory_for_ms > 0);
}

/* The spec's probes, validated and copied into out[role]. Errors as
 * arbor__probe_new; nothing is kept then. */
static int probes_new(const arbor_service_spec_t *spec, struct arbor__probe **out) {
  struct arbor__probe *live = NULL, *ready = NULL;
  int rc = 0;
  if (spec->liveness != NULL)
    rc = arbor__probe_new(spec->liveness, ARBOR_PROBE_LIVENESS, &live);
  if (rc == 0 && spec->readiness != NULL)
    rc = arbor__probe_new(spec->readiness, ARBOR_PROBE_READINESS, &ready);
  if (rc < 0) {
    arbor__probe_free(live);
    return rc;
  }
  out[ARBOR_PROBE_LIVENESS] = live;
  out[ARBOR_PROBE_READINESS] = ready;
  return 0;
}

static void probes_free(struct arbor__probe **p) {
  arbor__probe_free(p[ARBOR_PROBE_LIVENESS]);
  arbor__probe_free(p[ARBOR_PROBE_READINESS]);
  p[ARBOR_PROBE_LIVENESS] = p[ARBOR_PROBE_READINESS] = NULL;
}

/* Copies the fiber or process part of a spec into a new service node. */
static int svc_add(arbor_node_t *parent, const arbor_service_spec_t *spec, int daemon,
                   arbor_node_t **out) {
  if (parent == NULL || spec == NULL || (spec->fiber == NULL) == (spec->argv == NULL) ||
      (unsigned)spec->restart > ARBOR_TEMPORARY || fiber_with_limit(spec))
    return ARBOR_EINVAL;
  if (parent->kind != ARBOR_KIND_ROOT && parent->kind != ARBOR_KIND_GROUP &&
      parent->kind != ARBOR_KIND_SUPERVISOR && parent->kind != ARBOR_KIND_TASK)
    return ARBOR_EKIND;
  int rc = arbor__parent_check(parent);
  if (rc < 0)
    return rc;
  arbor_runtime_t *rt = parent->rt;
  struct arbor__svc *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ARBOR_ENOMEM;
  if ((rc = probes_new(spec, s->probe)) < 0) {
    free(s);
    return rc;
  }
  if (spec->argv != NULL) {
    if ((rc = arbor__proc_spec_new(spec, &s->proc)) < 0) {
      probes_free(s->probe);
      free(s);
      return rc;
    }
    if ((rc = arbor__logring_init(&s->log, spec->log_size)) < 0 ||
        (rc = arbor__reaper_start(rt)) < 0) {
      arbor__logring_free(&s->log);
      arbor__proc_spec_free(s->proc);
      probes_free(s->probe);
      free(s);
      return rc;
    }
  }
  arbor_node_t *n = arbor__node_new(parent, ARBOR_KIND_SERVICE,
                                    spec->name != NULL ? spec->name : "service", 0);
  if (n == NULL || arbor__htimer_new(n, &s->c.timer) < 0) {
    if (n != NULL) {
      /* The node exists (its CREATED event too): it ends at once, failed. */
      n->u.svc = s;
      n->flags |= ARBOR__F_BODY_ENDED;
      arbor__node_failed(n, arbor_error_ref(rt->oom_error));
      arbor__finish(n);
      return ARBOR_ENOMEM;
    }
    if (s->proc != NULL) {
      arbor__logring_free(&s->log);
      arbor__proc_spec_free(s->proc);
    }
    probes_free(s->probe);
    free(s);
    return ARBOR_ENOMEM;
  }
  n->u.svc = s;
  n->finish = spec->finish;
  n->arg = spec->arg;
  s->fiber = spec->fiber;
  s->stack_size = spec->stack_size;
  s->handshake = spec->handshake;
  s->shutdown_timeout_ms =
      spec->shutdown_timeout_ms > 0 ? spec->shutdown_timeout_ms : DEFAULT_SHUTDOWN_TIMEOUT_MS;
  s->c.restart = (uint8_t)spec->restart;
  s->c.phase = ARBOR_PHASE_IDLE;
  if (daemon)
    n->flags |= ARBOR__F_DAEMON | ARBOR__F_SVC_TASK;
  if (out != NULL)
    *out = n;
  if (parent->kind == ARBOR_KIND_SUPERVISOR) {
    arbor__sup_child_added(parent, n);
  } else if (arbor__svc_start(n) < 0) {
    s->c.last_failed = 1;
    arbor__child_history_add(&s->c, 0, rt->oom_error);
    arbor__svc_final(n);
  }
  return 0;
}

int arbor_service_add(arbor_node_t *parent, const arbor_service_spec_t *spec,
                      arbor_node_t **out) {
  return svc_add(parent, spec, 0, out);
}

/* The incarnation takes err as its error first, so that however its body ends
 * once cancelled (a program's ARBOR_ECANCELED) its outcome is FAILED with this
 * chain (the first error wins); fail_run then tells svc_inc_finished that the stop
 * it sees was not asked for, so the supervisor counts a failure. */
int arbor_service_fail(arbor_node_t *n, arbor_error_t *err) {
  if (n == NULL || err == NULL) {
    arbor_error_unref(err);
    return ARBOR_EINVAL;
  }
  if (n->kind != ARBOR_KIND_SERVICE) {
    arbor_error_unref(err);
    return ARBOR_EKIND;
  }
  struct arbor__svc *s = svc_of(n);
  if (s->inc == NULL || s->c.final || s->c.restart_now ||
      (s->c.phase != ARBOR_PHASE_STARTING && s->c.phase != ARBOR_PHASE_RUNNING) ||
      arbor__is_finished(s->inc)) {
    arbor_error_unref(err);
    return ARBOR_ESTATE;
  }
  arbor__node_failed(s->inc, err);   /* its parent is the service: nothing more */
  s->c.fail_run = 1;
  arbor__svc_stop(n);
  return 0;
}

int arbor_service_restart(arbor_node_t *n) {
  if (n == NULL)
    return ARBOR_EINVAL;
  struct arbor__child *c = arbor__child_of(n);
  if (c == NULL)
    return ARBOR_EKIND;
  if (arbor__is_finished(n))
    return ARBOR_EFINISHED;
  if (c->final || (n->flags & ARBOR__F_CANCEL) || n->state == ARBOR_STATE_STOPPING ||
      n->state == ARBOR_STATE_CREATED)
    return ARBOR_ESTATE;
  if (n->kind == ARBOR_KIND_SUPERVISOR)
    return arbor__sup_restart(n);
  struct arbor__svc *s = svc_of(n);
  switch (c->phase) {
  case ARBOR_PHASE_STARTING:
  case ARBOR_PHASE_RUNNING:
    c->restart_now = 1;
    arbor__svc_stop(n);
    return 0;
  case ARBOR_PHASE_STOPPING:
    c->restart_now = 1;
    return 0;
  default:                       /* IDLE or BACKOFF, waiting for its supervisor */
    c->not_before = 0;
    c->want_run = 1;
    (void)s;
    arbor__sup_pump(n->parent);
    return 0;
  }
}

int arbor_service_update(arbor_node_t *n, const arbor_service_spec_t *spec) {
  if (n == NULL || spec == NULL || (spec->fiber == NULL) == (spec->argv == NULL) ||
      (unsigned)spec->restart > ARBOR_TEMPORARY || fiber_with_limit(spec))
    return ARBOR_EINVAL;
  if (n->kind != ARBOR_KIND_SERVICE)
    return ARBOR_EKIND;
  if (arbor__is_finished(n))
    return ARBOR_EFINISHED;
  struct arbor__svc *s = svc_of(n);
  if (s->c.final || (n->flags & ARBOR__F_CANCEL) || n->state == ARBOR_STATE_STOPPING)
    return ARBOR_ESTATE;
  if ((spec->argv != NULL) != (s->proc != NULL))
    return ARBOR_EINVAL;         /* a fiber stays a fiber, a program a program */
  struct arbor__proc_spec *ps = NULL;
  struct arbor__probe *probes[2];
  int rc = probes_new(spec, probes);
  if (rc < 0)
    return rc;
  if (spec->argv != NULL) {
    if ((rc = arbor__proc_spec_new(spec, &ps)) < 0) {
      probes_free(probes);
      return rc;
    }
    arbor__proc_spec_free(s->next_proc);
    s->next_proc = ps;           /* the running program keeps reading the old one */
  }
  /* The new probes replace the old at once: the restart below stops this run,
   * and the next one is probed as the new spec says (an attempt of the old ones
   * in flight is abandoned). */
  probes_free(s->probe);
  s->probe[ARBOR_PROBE_LIVENESS] = probes[ARBOR_PROBE_LIVENESS];
  s->probe[ARBOR_PROBE_READINESS] = probes[ARBOR_PROBE_READINESS];
  s->fiber = spec->fiber;
  s->stack_size = spec->stack_size;
  s->handshake = spec->handshake;
  s->shutdown_timeout_ms =
      spec->shutdown_timeout_ms > 0 ? spec->shutdown_timeout_ms : DEFAULT_SHUTDOWN_TIMEOUT_MS;
  s->c.restart = (uint8_t)spec->restart;
  n->finish = spec->finish;
  n->arg = spec->arg;
  if (n->state == ARBOR_STATE_CREATED)
    return 0;                    /* it starts with the new spec */
  return arbor_service_restart(n);
}

/* ----------------------------------------------------- service manager */

/* The incarnation cx runs in: its own node, or the nearest ancestor whose
 * parent is a service. */
static arbor_node_t *incarnation_of(arbor_ctx_t *cx) {
  for (arbor_node_t *n = cx->task; n != NULL && n->parent != NULL; n = n->parent)
    if (n->parent->kind == ARBOR_KIND_SERVICE)
      return n;
  return NULL;
}

static int run_task(arbor_ctx_t *cx, const arbor_fiber_spec_t *spec, int daemon,
                    arbor_node_t **out) {
  if (cx == NULL || spec == NULL || spec->fn == NULL)
    return ARBOR_EINVAL;
  arbor_node_t *inc = incarnation_of(cx);
  if (inc == NULL)
    return ARBOR_EKIND;
  arbor_node_t *t;
  int rc = arbor__fiber_spawn_kind(inc, spec, 0, ARBOR_KIND_TASK, &t);
  if (rc < 0)
    return rc;
  t->flags |= ARBOR__F_SVC_TASK | (daemon ? ARBOR__F_DAEMON : 0);
  svc_of(inc->parent)->tasks_total++;
  if (out != NULL)
    *out = t;
  return 0;
}

int arbor_service_run_task(arbor_ctx_t *cx, const arbor_fiber_spec_t *spec, arbor_node_t **out) {
  return run_task(cx, spec, 0, out);
}

int arbor_service_run_daemon_task(arbor_ctx_t *cx, const arbor_fiber_spec_t *spec,
                                  arbor_node_t **out) {
  return run_task(cx, spec, 1, out);
}

static int run_child_service(arbor_ctx_t *cx, const arbor_service_spec_t *spec, int daemon,
                             arbor_node_t **out) {
  if (cx == NULL)
    return ARBOR_EINVAL;
  arbor_node_t *inc = incarnation_of(cx);
  if (inc == NULL)
    return ARBOR_EKIND;
  arbor_node_t *n;
  int rc = svc_add(inc, spec, daemon, &n);
  if (rc < 0)
    return rc;
  n->flags |= ARBOR__F_SVC_TASK;
  svc_of(inc->parent)->tasks_total++;
  if (out != NULL)
    *out = n;
  return 0;
}

int arbor_service_run_child_service(arbor_ctx_t *cx, const arbor_service_spec_t *spec,
                                    arbor_node_t **out) {
  return run_child_service(cx, spec, 0, out);
}

int arbor_service_run_daemon_child_service(arbor_ctx_t *cx, const arbor_service_spec_t *spec,
                                           arbor_node_t **out) {
  return run_child_service(cx, spec, 1, out);
}

/* A task (or child service) run by a service body finished: count it. The
 * incarnation may have finished before its finish callback runs, but never
 * before its children: inc->parent is the service. */
void arbor__svc_task_finished(arbor_node_t *n) {
  arbor_node_t *inc = n->parent;
  if (inc->parent != NULL && inc->parent->kind == ARBOR_KIND_SERVICE)
    svc_of(inc->parent)->tasks_finished++;
}

/* ---------------------------------------------------------------- rule 7 */

/* May a daemon child's end still fail the task t? Not once t is stopping. */
static int daemon_matters(const arbor_node_t *t) {
  return !arbor__is_finished(t) && !(t->flags & (ARBOR__F_CANCEL | ARBOR__F_BODY_ENDED)) &&
         t->error == NULL &&
         (t->state == ARBOR_STATE_STARTING || t->state == ARBOR_STATE_STARTED);
}

static void fail_for_daemon(arbor_node_t *t, arbor_node_t *d, const arbor_error_t *cause) {
  arbor_error_t *err =
      arbor_error_new_at(ARBOR_EDAEMON, arbor_error_ref((arbor_error_t *)cause), "", 0, "",
                         "daemon task exited unexpectedly: %s %s (id %llu)",
                         arbor_kind_name((arbor_kind_t)d->kind), d->name,
                         (unsigned long long)d->id);
  t->error = err != NULL ? err : arbor_error_ref(t->rt->oom_error);
  arbor__error_set_node(t->error, t->id);
  if (t->t_stop == 0)
    t->t_stop = arbor__now();
  arbor__record(t, ARBOR_EVENT_FAILED, t->error);
  arbor__node_failed(t, NULL);
  arbor__cancel(t);
}

void arbor__daemon_failed(arbor_node_t *t, arbor_node_t *d) {
  if (daemon_matters(t)) {
    fail_for_daemon(t, d, d->error);
    return;
  }
  /* Stopping already: an ordinary child failure (lifecycle.c's rule for tasks). */
  if (t->error == NULL && !arbor__is_finished(t)) {
    t->error = arbor_error_ref(d->error);
    arbor__record(t, ARBOR_EVENT_FAILED, t->error);
    arbor__node_failed(t, NULL);
    arbor__cancel(t);
  }
}

void arbor__daemon_finished(arbor_node_t *t, arbor_node_t *d) {
  if (d->outcome != ARBOR_OUTCOME_FAILED && daemon_matters(t))
    fail_for_daemon(t, d, NULL);
}

/* ------------------------------------------------- from outside: queries */

static int svc_check(const arbor_node_t *n) {
  if (n == NULL)
    return ARBOR_EINVAL;
  return arbor__child_of((arbor_node_t *)n) != NULL ? 0 : ARBOR_EKIND;
}

int arbor_service_is_started(const arbor_node_t *n) {
  return svc_check(n) == 0 && arbor__child_of((arbor_node_t *)n)->ever_started;
}

int arbor_service_is_running(const arbor_node_t *n) {
  return arbor_service_is_started(n) && !arbor__is_finished(n);
}

int arbor_service_is_cancelled(const arbor_node_t *n) {
  return svc_check(n) == 0 && (n->flags & ARBOR__F_CANCEL) != 0;
}

int arbor_service_is_finished(const arbor_node_t *n) {
  return svc_check(n) == 0 && arbor__is_finished(n);
}

int arbor_service_did_error(const arbor_node_t *n) {
  if (svc_check(n) < 0)
    return 0;
  return n->error != NULL || arbor__child_of((arbor_node_t *)n)->nhist > 0;
}

static void start_unhook(arbor_ctx_t *cx, void *arg) {
  arbor_node_t *n = arg;
  struct arbor__child *c = arbor__child_of(n);
  for (struct arbor__waiter *w = c->start_waiters; w != NULL; w = w->next) {
    if (w->cx != cx)
      continue;
    if (w->prev != NULL)
      w->prev->next = w->next;
    else
      c->start_waiters = w->next;
    if (w->next != NULL)
      w->next->prev = w->prev;
    w->next = w->prev = NULL;
    return;
  }
}

int arbor_service_wait_started_at(arbor_ctx_t *cx, arbor_node_t *n, const char *file, int line) {
  int rc = svc_check(n);
  if (rc < 0)
    return rc;
  if ((rc = arbor__checkpoint(cx)) < 0)
    return rc;
  struct arbor__child *c = arbor__child_of(n);
  if (!c->ever_started && !arbor__is_finished(n)) {
    arbor_node_ref(n);
    struct arbor__waiter w = {.cx = cx, .next = c->start_waiters, .prev = NULL};
    if (w.next != NULL)
      w.next->prev = &w;
    c->start_waiters = &w;
    rc = arbor__fiber_park(cx, "service_wait_started", file, line, start_unhook, n);
    int started = c->ever_started;
    int finished = arbor__is_finished(n);
    arbor_error_t *err = n->error;
    int cancelled = n->outcome == ARBOR_OUTCOME_CANCELLED;
    arbor__node_unref(n);        /* n may be gone now */
    if (rc < 0 || started)
      return rc;
    if (finished) {
      int code = err != NULL ? arbor_error_code(err) : cancelled ? ARBOR_ECANCELED : ARBOR_ESTATE;
      return code < 0 ? code : ARBOR_EFAILED;
    }
    return 0;
  }
  if (c->ever_started)
    return 0;
  int code = n->error != NULL ? arbor_error_code(n->error)
             : n->outcome == ARBOR_OUTCOME_CANCELLED ? ARBOR_ECANCELED
                                                     : ARBOR_ESTATE;
  return code < 0 ? code : ARBOR_EFAILED;
}

int arbor_service_stop_at(arbor_ctx_t *cx, arbor_node_t *n, const char *file, int line) {
  int rc = svc_check(n);
  if (rc < 0)
    return rc;
  if ((rc = arbor__checkpoint(cx)) < 0)
    return rc;
  arbor__cancel(n);
  return arbor_wait_at(cx, n, file, line);
}

int arbor_service_info(const arbor_node_t *cn, arbor_service_info_t *info) {
  int rc = svc_check(cn);
  if (rc < 0 || info == NULL)
    return rc < 0 ? rc : ARBOR_EINVAL;
  arbor_node_t *n = (arbor_node_t *)cn;
  struct arbor__child *c = arbor__child_of(n);
  memset(info, 0, sizeof *info);
  info->restart = (arbor_restart_t)c->restart;
  info->phase = (arbor_phase_t)c->phase;
  info->daemon = (n->flags & ARBOR__F_DAEMON) != 0;
  info->restarts = c->restarts;
  info->last_backoff_ms = c->last_backoff_ms;
  info->history = c->nhist;
  if (c->phase == ARBOR_PHASE_BACKOFF) {
    uint64_t now = uv_now(n->rt->loop);
    uint64_t left = c->not_before > now ? c->not_before - now : 0;
    info->next_restart_ns = arbor__now() + left * 1000000u;
  }
  if (n->kind == ARBOR_KIND_SERVICE) {
    struct arbor__svc *s = svc_of(n);
    info->is_process = s->proc != NULL;
    info->incarnation_id = s->inc != NULL ? s->inc->id : c->last_inc_id;
    info->tasks_total = s->tasks_total;
    info->tasks_finished = s->tasks_finished;
    info->pid = s->proc != NULL ? arbor__process_pid(n) : 0;
    info->ready = c->phase == ARBOR_PHASE_RUNNING && !c->not_ready;
  } else {
    struct arbor__sup *s = n->u.sup;
    info->strategy = (arbor_strategy_t)s->strategy;
    info->intensity = s->intensity;
    info->period_ms = s->period_ms;
  }
  arbor_node_t *w = n->parent != NULL && n->parent->kind == ARBOR_KIND_SUPERVISOR
                        ? arbor__sup_waiting_for(n->parent, n)
                        : NULL;
  info->waiting_for = w != NULL ? w->id : 0;
  return 0;
}

int arbor_service_failure(const arbor_node_t *cn, size_t i, arbor_service_failure_t *out) {
  int rc = svc_check(cn);
  if (rc < 0 || out == NULL)
    return rc < 0 ? rc : ARBOR_EINVAL;
  struct arbor__child *c = arbor__child_of((arbor_node_t *)cn);
  if (i >= c->nhist)
    return ARBOR_ENOENT;
  const struct arbor__failure *f =
      &c->hist[(c->hist_head + 2 * ARBOR_SERVICE_HISTORY - 1 - i) % ARBOR_SERVICE_HISTORY];
  out->incarnation_id = f->incarnation_id;
  out->time_ns = f->time_ns;
  out->backoff_ms = f->backoff_ms;
  out->restarted = f->restarted;
  out->error = f->error;
  return 0;
}

int arbor_node_is_stuck(const arbor_node_t *n) {
  return n != NULL && (n->flags & ARBOR__F_STUCK) != 0;
}
