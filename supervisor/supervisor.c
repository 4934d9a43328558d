/* supervisor/supervisor.c - Erlang/OTP supervisors: strategies, restart types,
 * restart intensity, backoff, ordered start and reverse-ordered stop.
 *
 * A supervisor's children are service nodes and nested supervisors, each with a
 * struct arbor__child. Everything the supervisor does comes from one function,
 * pump(), called whenever something changed (a child became ready, ended or
 * finished; a timer fired; a child was added; a restart was asked for). It looks
 * at the children and takes the next step:
 *
 *   1. stops, newest child first, one at a time: every child when the supervisor
 *      stops for good (final: children are cancelled and must FINISH) or stops
 *      its run (nested, for its parent); else the children marked to cycle
 *      (one_for_all, rest_for_one) or no longer wanted;
 *   2. starts, oldest first, one at a time: the next child that wants to run,
 *      unless it is in its backoff delay (one_for_one skips past it, the other
 *      strategies keep their order and wait);
 *   3. readiness: when every child runs, the supervisor's run is ready (STARTED
 *      the first time).
 *
 * A nested supervisor's "run" is its children's: restarting it restarts them all
 * in order; it keeps its id, as a service does. A supervisor that exceeds its
 * restart intensity stops all its children and fails with ARBOR_EINTENSITY
 * caused by the last child's error; under a supervisor, its parent then decides
 * (as for any child's failed run), anywhere else it finishes FAILED and the
 * failure propagates as any node's.
 */
#include <string.h>

#include "internal.h"

#define DEFAULT_INTENSITY 3
#define MAX_INTENSITY 100000
#define DEFAULT_PERIOD_MS 5000
#define DEFAULT_BACKOFF_MS 100
#define DEFAULT_BACKOFF_MAX_MS 30000

const char *arbor_strategy_name(arbor_strategy_t s) {
  switch (s) {
  case ARBOR_ONE_FOR_ONE: return "one_for_one";
  case ARBOR_ONE_FOR_ALL: return "one_for_all";
  case ARBOR_REST_FOR_ONE: return "rest_for_one";
  }
  return "unknown";
}

const char *arbor_restart_name(arbor_restart_t r) {
  switch (r) {
  case ARBOR_PERMANENT: return "permanent";
  case ARBOR_TRANSIENT: return "transient";
  case ARBOR_TEMPORARY: return "temporary";
  }
  return "unknown";
}

const char *arbor_phase_name(arbor_phase_t p) {
  switch (p) {
  case ARBOR_PHASE_IDLE: return "idle";
  case ARBOR_PHASE_STARTING: return "starting";
  case ARBOR_PHASE_RUNNING: return "running";
  case ARBOR_PHASE_STOPPING: return "stopping";
  case ARBOR_PHASE_BACKOFF: return "backoff";
  case ARBOR_PHASE_DONE: return "done";
  }
  return "unknown";
}

static struct arbor__sup *sup_of(arbor_node_t *n) { return n->u.sup; }

static void pump(arbor_node_t *g);
static void sup_final(arbor_node_t *g);

/* ---------------------------------------------------------------- policy */

/* Erlang's intensity: a restart is allowed unless `intensity` restarts already
 * happened within the last period_ms. The ring holds the latest `intensity`. */
static int intensity_allows(struct arbor__sup *s, uint64_t now) {
  uint32_t recent = 0;
  for (uint32_t i = 0; i < s->nrestart_times; i++)
    if (now - s->restart_times[i] < s->period_ms)
      recent++;
  if (recent >= (uint32_t)s->intensity)
    return 0;
  s->restart_times[s->restart_head] = now;
  s->restart_head = (s->restart_head + 1) % (uint32_t)s->intensity;
  if (s->nrestart_times < (uint32_t)s->intensity)
    s->nrestart_times++;
  return 1;
}

static uint64_t rng_next(struct arbor__sup *s) {   /* xorshift64 */
  uint64_t x = s->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return s->rng = x;
}

/* The delay before a child's restart: backoff_ms doubled for every restart in a
 * row, capped at backoff_max_ms, cut by up to 25 % at random unless no_jitter. A
 * run that stayed ready for a whole period (the intensity window) resets the
 * streak. */
uint64_t arbor__backoff_delay(struct arbor__sup *s, struct arbor__child *c, uint64_t now) {
  if (c->ready_at != 0 && now - c->ready_at >= s->period_ms)
    c->streak = 0;
  uint32_t streak = c->streak++;
  if (s->no_backoff)
    return 0;
  uint64_t d = s->backoff_ms;
  for (uint32_t i = 0; i < streak && d < s->backoff_max_ms; i++)
    d *= 2;
  if (d > s->backoff_max_ms)
    d = s->backoff_max_ms;
  if (!s->no_jitter && d > 0)
    d -= rng_next(s) % (d / 4 + 1);
  return d;
}

/* ------------------------------------------------------- child operations */

static void child_start(arbor_node_t *g, arbor_node_t *c);
static void child_stop(arbor_node_t *c);

static void run_start(arbor_node_t *g);

/* Final: not to run again. A service finishes once its incarnation is gone; a
 * supervisor once its children have finished. */
static void child_final(arbor_node_t *c) {
  if (c->kind == ARBOR_KIND_SERVICE)
    arbor__svc_final(c);
  else
    sup_final(c);
}

static void on_timer(uv_timer_t *h) {
  struct arbor__htimer *t = h->data;
  arbor_node_t *g = t->node;
  if (g == NULL)
    return;
  struct arbor__sup *s = sup_of(g);
  if (s->pending_pump) {
    s->pending_pump = 0;
    if (g->state == ARBOR_STATE_CREATED)
      arbor__transition(g, ARBOR_STATE_STARTING);
  }
  pump(g);
}

/* Its run begins: every child is wanted, in order. The very first start waits
 * for the loop, so that the children added right after creation are all there
 * before readiness is judged. */
static void run_start(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  if (s->c.runs > 0) {
    s->c.restarts++;
    arbor__record(g, ARBOR_EVENT_RESTART, s->c.run_error);
  }
  s->c.runs++;
  s->c.ready_at = 0;
  s->c.phase = ARBOR_PHASE_STARTING;
  s->stopping_run = 0;
  s->nrestart_times = s->restart_head = 0;   /* a fresh run, a fresh window */
  arbor_node_t *first = g->first_child;
  for (arbor_node_t *c = first; c != NULL; c = c->next != first ? c->next : NULL) {
    struct arbor__child *cc = arbor__child_of(c);
    if (!arbor__is_finished(c) && cc->phase != ARBOR_PHASE_DONE) {
      cc->want_run = 1;
      cc->cycle = 0;
    }
  }
  if (g->state == ARBOR_STATE_CREATED) {
    s->pending_pump = 1;
    uv_timer_start(&s->c.timer->handle, on_timer, 0, 0);
    return;
  }
  pump(g);
}

/* Its run ends (not for good): stop the children, newest first; then tell the
 * parent (run_stopped). */
static void run_stop(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  s->stopping_run = 1;
  s->c.phase = ARBOR_PHASE_STOPPING;
  pump(g);
}

static void child_start(arbor_node_t *g, arbor_node_t *c) {
  if (c->kind == ARBOR_KIND_SUPERVISOR) {
    run_start(c);
    return;
  }
  struct arbor__child *cc = arbor__child_of(c);
  if (arbor__svc_start(c) < 0) {  /* out of memory: the run failed at once */
    cc->last_failed = 1;
    arbor__child_history_add(cc, 0, g->rt->oom_error);
    arbor__sup_child_ended(g, c, 1, 0);
  }
}

static void child_stop(arbor_node_t *c) {
  if (c->kind == ARBOR_KIND_SERVICE)
    arbor__svc_stop(c);
  else
    run_stop(c);
}

/* ------------------------------------------------------------------ pump */

static void ready(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  s->c.phase = ARBOR_PHASE_RUNNING;
  s->c.ready_at = uv_now(g->rt->loop);
  arbor__child_first_ready(g);
  if (g->parent->kind == ARBOR_KIND_SUPERVISOR)
    arbor__sup_child_ready(g->parent, g);
}

/* Every child has stopped: the run is over (nested supervisors, and manual
 * restarts). */
static void run_stopped(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  s->stopping_run = 0;
  s->c.phase = ARBOR_PHASE_IDLE;
  arbor_error_t *err = s->fail_error;
  s->fail_error = NULL;
  int failed = err != NULL;
  s->c.last_failed = (uint8_t)failed;
  if (failed) {
    arbor__child_history_add(&s->c, 0, err);
    arbor_error_unref(err);
  }
  if (s->c.restart_now && !failed) {
    s->c.restart_now = 0;
    run_start(g);
    return;
  }
  s->c.restart_now = 0;
  if (g->parent->kind == ARBOR_KIND_SUPERVISOR)
    arbor__sup_child_ended(g->parent, g, failed, !failed);
  else
    sup_final(g);
}

/* Stopped for good and every child FINISHED. */
static void ended(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  s->c.phase = ARBOR_PHASE_DONE;
  g->flags |= ARBOR__F_BODY_ENDED;
  if (g->state == ARBOR_STATE_CREATED) {
    arbor__finish(g);
    return;
  }
  arbor_error_t *err = s->fail_error;
  s->fail_error = NULL;
  if (err == NULL && s->c.last_failed && !(g->flags & ARBOR__F_CANCEL))
    err = arbor_error_ref(s->c.run_error);
  if (g->state == ARBOR_STATE_STARTING || g->state == ARBOR_STATE_STARTED)
    arbor__transition(g, ARBOR_STATE_STOPPING);
  if (err != NULL)
    arbor__node_failed(g, err);
  arbor__maybe_finish(g);
}

/* The first sibling c was told to start after (arbor_service_start_after) that
 * is neither STARTED (phase running, and not made not ready by its readiness
 * probe) nor gone for good (done, finished): c must not start yet. NULL: nothing holds it. */
static arbor_node_t *held_by(arbor_node_t *g, const arbor_node_t *c) {
  const struct arbor__child *cc = arbor__child_of((arbor_node_t *)c);
  for (uint32_t i = 0; i < cc->nafter; i++) {
    arbor_node_t *x = arbor_node_find(g->rt, cc->after[i]);
    if (x == NULL || x->parent != g || arbor__is_finished(x))
      continue;
    const struct arbor__child *xc = arbor__child_of(x);
    if ((xc->phase != ARBOR_PHASE_RUNNING && xc->phase != ARBOR_PHASE_DONE) || xc->not_ready)
      return x;                  /* not_ready: its readiness probe failed it (probe.c) */
  }
  return NULL;
}

static int starts_after(const arbor_node_t *c, const arbor_node_t *x) {
  const struct arbor__child *cc = arbor__child_of((arbor_node_t *)c);
  for (uint32_t i = 0; i < cc->nafter; i++)
    if (cc->after[i] == x->id)
      return 1;
  return 0;
}

static void pump_once(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  if (arbor__is_finished(g) || s->pending_pump)
    return;
  if (s->c.phase == ARBOR_PHASE_IDLE && !s->c.final)
    return;                      /* between runs, or not started by its parent yet */
  arbor_node_t *first = g->first_child;

  /* 1. Stops, newest first, one at a time (at once with parallel_stop). */
  int waiting = 0;
  if (first != NULL) {
    for (arbor_node_t *c = first->prev;; c = c->prev) {
      if (!arbor__is_finished(c)) {
        struct arbor__child *cc = arbor__child_of(c);
        if (s->c.final) {
          if (!(c->flags & ARBOR__F_CANCEL))
            arbor__cancel(c);
          if (!arbor__is_finished(c)) {
            if (!s->parallel_stop)
              return;            /* wait until it FINISHED */
            waiting = 1;
          }
        } else {
          if (cc->phase == ARBOR_PHASE_STOPPING)
            return;
          int must_stop = s->stopping_run || !cc->want_run || cc->cycle;
          if (must_stop &&
              (cc->phase == ARBOR_PHASE_STARTING || cc->phase == ARBOR_PHASE_RUNNING)) {
            child_stop(c);
            if (cc->phase == ARBOR_PHASE_STOPPING)
              return;
          }
          if (cc->phase == ARBOR_PHASE_IDLE || cc->phase == ARBOR_PHASE_BACKOFF) {
            cc->cycle = 0;       /* stopped: it starts again below, in order */
            if (s->stopping_run)
              cc->phase = ARBOR_PHASE_IDLE;
          }
        }
      }
      if (c == first)
        break;
    }
  }
  if (s->c.final) {
    if (!waiting)
      ended(g);
    return;
  }
  if (s->stopping_run) {
    run_stopped(g);
    return;
  }

  /* 2. Starts, oldest first, one at a time. */
  uint64_t now = uv_now(g->rt->loop);
  uint64_t wake = UINT64_MAX;
  int all_ready = 1;
  for (arbor_node_t *c = first; c != NULL; c = c->next != first ? c->next : NULL) {
    if (arbor__is_finished(c))
      continue;
    struct arbor__child *cc = arbor__child_of(c);
    if (cc->phase == ARBOR_PHASE_DONE || cc->phase == ARBOR_PHASE_RUNNING)
      continue;
    all_ready = 0;
    if (cc->phase == ARBOR_PHASE_STARTING)
      break;                     /* each STARTED before the next */
    if (!cc->want_run)
      continue;
    if (cc->not_before > now) {
      cc->phase = ARBOR_PHASE_BACKOFF;
      if (cc->not_before < wake)
        wake = cc->not_before;
      if (s->strategy == ARBOR_ONE_FOR_ONE)
        continue;                /* independent children: the next may start */
      break;
    }
    if (held_by(g, c) != NULL)
      continue;                  /* what it starts after is not STARTED (one_for_one
                                    went past it in its backoff): later ones may start */
    child_start(g, c);
    break;                       /* pump runs again when it is ready */
  }
  if (wake != UINT64_MAX)
    uv_timer_start(&s->c.timer->handle, on_timer, wake - now, 0);

  /* 3. Readiness. */
  if (all_ready && s->c.phase == ARBOR_PHASE_STARTING)
    ready(g);
}

/* Why c has not started: the earlier sibling the start loop of pump_once stops
 * at before reaching it (one STARTING, or, for the strategies that keep their
 * order, one in its backoff delay or due to start). NULL when c is not waiting
 * for a sibling: running, stopping, in its own backoff, not wanted, or its
 * supervisor not running. This reads what pump_once decides; keep them alike. */
arbor_node_t *arbor__sup_waiting_for(arbor_node_t *g, const arbor_node_t *c) {
  struct arbor__sup *s = sup_of(g);
  const struct arbor__child *cc = arbor__child_of((arbor_node_t *)c);
  if (arbor__is_finished(g) || arbor__is_finished(c) || s->c.final || s->stopping_run ||
      s->c.phase == ARBOR_PHASE_IDLE || s->c.phase == ARBOR_PHASE_STOPPING ||
      cc->phase != ARBOR_PHASE_IDLE || !cc->want_run)
    return NULL;
  uint64_t now = uv_now(g->rt->loop);
  arbor_node_t *first = g->first_child;
  for (arbor_node_t *x = first; x != NULL && x != c; x = x->next != first ? x->next : NULL) {
    if (arbor__is_finished(x))
      continue;
    struct arbor__child *xc = arbor__child_of(x);
    if (xc->phase == ARBOR_PHASE_DONE || xc->phase == ARBOR_PHASE_RUNNING)
      continue;
    if (xc->phase == ARBOR_PHASE_STARTING)
      return x;
    if (!xc->want_run)
      continue;
    if (xc->not_before > now && s->strategy == ARBOR_ONE_FOR_ONE && !starts_after(c, x))
      continue;                  /* one_for_one starts past a child in backoff */
    if (xc->not_before <= now && held_by(g, x) != NULL)
      continue;                  /* held itself: the start loop goes past it */
    return x;
  }
  return held_by(g, c);
}

int arbor_service_start_after(arbor_node_t *child, arbor_node_t *earlier) {
  if (child == NULL)
    return ARBOR_EINVAL;
  struct arbor__child *cc = arbor__child_of(child);
  if (cc == NULL || child->parent == NULL || child->parent->kind != ARBOR_KIND_SUPERVISOR)
    return ARBOR_EKIND;
  if (earlier == NULL) {
    free(cc->after);
    cc->after = NULL;
    cc->nafter = 0;
    arbor__sup_pump(child->parent);   /* it may be free to start now */
    return 0;
  }
  if (earlier->parent != child->parent || earlier->id >= child->id)
    return ARBOR_EINVAL;         /* siblings start in the order they were added */
  if (starts_after(child, earlier))
    return 0;
  uint64_t *a = realloc(cc->after, (cc->nafter + 1) * sizeof *a);
  if (a == NULL)
    return ARBOR_ENOMEM;
  a[cc->nafter++] = earlier->id;
  cc->after = a;
  return 0;
}

/* Re-entrant calls (a child that finishes inside a cancel we make, say) only ask
 * for another round. */
static void pump(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  if (s->pumping) {
    s->repump = 1;
    return;
  }
  s->pumping = 1;
  do {
    s->repump = 0;
    pump_once(g);
  } while (s->repump);
  s->pumping = 0;
}

void arbor__sup_pump(arbor_node_t *g) {
  if (g != NULL && g->kind == ARBOR_KIND_SUPERVISOR)
    pump(g);
}

/* --------------------------------------------------------- child events */

void arbor__sup_child_added(arbor_node_t *g, arbor_node_t *c) {
  struct arbor__sup *s = sup_of(g);
  struct arbor__child *cc = arbor__child_of(c);
  cc->want_run = !s->c.final && !s->stopping_run;
  pump(g);
}

void arbor__sup_child_ready(arbor_node_t *g, arbor_node_t *c) {
  (void)c;
  pump(g);
}

void arbor__sup_child_finished(arbor_node_t *g, arbor_node_t *c) {
  (void)c;
  pump(g);
  arbor__maybe_finish(g);
}

/* Intensity exceeded: stop every child and fail. */
static void give_up(arbor_node_t *g, arbor_node_t *c, int failed) {
  struct arbor__sup *s = sup_of(g);
  struct arbor__child *cc = arbor__child_of(c);
  arbor_error_t *err = arbor_error_new_at(
      ARBOR_EINTENSITY, failed ? arbor_error_ref(cc->run_error) : NULL, "", 0, "",
      "supervisor %s: restart intensity exceeded (more than %d restarts in %llu ms); last: "
      "%s %s (id %llu) %s",
      g->name, s->intensity, (unsigned long long)s->period_ms,
      arbor_kind_name((arbor_kind_t)c->kind), c->name, (unsigned long long)c->id,
      failed ? "failed" : "exited");
  if (err == NULL)
    err = arbor_error_ref(g->rt->oom_error);
  arbor__error_set_node(err, g->id);
  arbor_error_unref(s->fail_error);
  s->fail_error = err;
  arbor__record(g, ARBOR_EVENT_FAILED, err);
  if (g->parent->kind == ARBOR_KIND_SUPERVISOR && !s->c.final) {
    run_stop(g);                 /* the parent decides once the children stopped */
    return;
  }
  sup_final(g);
}

/* A child's run ended: on its own (requested 0) or because we stopped it. */
void arbor__sup_child_ended(arbor_node_t *g, arbor_node_t *c, int failed, int requested) {
  struct arbor__sup *s = sup_of(g);
  struct arbor__child *cc = arbor__child_of(c);
  if (arbor__is_finished(g))
    return;
  if (s->c.final || s->stopping_run || requested) {
    pump(g);
    return;
  }
  int restart = cc->restart == ARBOR_PERMANENT || (cc->restart == ARBOR_TRANSIENT && failed);
  if (!restart) {
    cc->want_run = 0;
    child_final(c);
    pump(g);
    return;
  }
  uint64_t now = uv_now(g->rt->loop);
  if (!intensity_allows(s, now)) {
    give_up(g, c, failed);
    return;
  }
  uint64_t delay = arbor__backoff_delay(s, cc, now);
  cc->not_before = now + delay;
  cc->last_backoff_ms = delay;
  cc->want_run = 1;
  struct arbor__failure *f = failed ? arbor__child_history_newest(cc) : NULL;
  if (f != NULL) {
    f->backoff_ms = delay;
    f->restarted = 1;
  }
  if (s->strategy != ARBOR_ONE_FOR_ONE) {
    /* Its siblings (all, or those started after it) stop, newest first, and
     * start again with it, in order, after the same delay. */
    arbor_node_t *first = g->first_child;
    int after = 0;
    for (arbor_node_t *x = first; x != NULL; x = x->next != first ? x->next : NULL) {
      if (x == c) {
        after = 1;
        continue;
      }
      struct arbor__child *xc = arbor__child_of(x);
      if (arbor__is_finished(x) || xc->phase == ARBOR_PHASE_DONE || !xc->want_run)
        continue;
      if (s->strategy == ARBOR_ONE_FOR_ALL || after) {
        xc->cycle = 1;
        xc->not_before = cc->not_before;
      }
    }
  }
  pump(g);
}

/* ------------------------------------------------------------- stopping */

static void sup_final(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  if (s->c.final)
    return;
  s->c.final = 1;
  s->c.want_run = 0;
  s->c.restart_now = 0;
  s->pending_pump = 0;
  if (g->state == ARBOR_STATE_STARTING || g->state == ARBOR_STATE_STARTED)
    arbor__transition(g, ARBOR_STATE_STOPPING);
  pump(g);
}

void arbor__sup_cancel(arbor_node_t *g) { sup_final(g); }

int arbor__sup_restart(arbor_node_t *g) {
  struct arbor__sup *s = sup_of(g);
  s->c.restart_now = 1;
  if (s->c.phase == ARBOR_PHASE_STARTING || s->c.phase == ARBOR_PHASE_RUNNING)
    run_stop(g);
  else if (s->c.phase == ARBOR_PHASE_IDLE || s->c.phase == ARBOR_PHASE_BACKOFF) {
    s->c.restart_now = 0;
    s->c.not_before = 0;
    arbor__sup_pump(g->parent);
  }
  return 0;
}

/* ---------------------------------------------------------------- create */

int arbor_supervisor_new(arbor_node_t *parent, const arbor_sup_opts_t *opts,
                         arbor_node_t **out) {
  arbor_sup_opts_t o = opts != NULL ? *opts : (arbor_sup_opts_t){0};
  if (parent == NULL || o.intensity < 0 || o.intensity > MAX_INTENSITY ||
      (unsigned)o.strategy > ARBOR_REST_FOR_ONE || (unsigned)o.restart > ARBOR_TEMPORARY)
    return ARBOR_EINVAL;
  if (parent->kind != ARBOR_KIND_ROOT && parent->kind != ARBOR_KIND_GROUP &&
      parent->kind != ARBOR_KIND_SUPERVISOR && parent->kind != ARBOR_KIND_TASK)
    return ARBOR_EKIND;
  int rc = arbor__parent_check(parent);
  if (rc < 0)
    return rc;
  struct arbor__sup *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ARBOR_ENOMEM;
  s->intensity = o.intensity > 0 ? o.intensity : DEFAULT_INTENSITY;
  s->restart_times = calloc((size_t)s->intensity, sizeof *s->restart_times);
  if (s->restart_times == NULL) {
    free(s);
    return ARBOR_ENOMEM;
  }
  arbor_node_t *g = arbor__node_new(parent, ARBOR_KIND_SUPERVISOR,
                                    o.name != NULL ? o.name : "supervisor", 0);
  if (g == NULL || arbor__htimer_new(g, &s->c.timer) < 0) {
    if (g != NULL) {             /* it exists (and was recorded): it ends, failed */
      g->u.sup = s;
      g->flags |= ARBOR__F_BODY_ENDED;
      arbor__node_failed(g, arbor_error_ref(parent->rt->oom_error));
      arbor__finish(g);
      return ARBOR_ENOMEM;
    }
    free(s->restart_times);
    free(s);
    return ARBOR_ENOMEM;
  }
  g->u.sup = s;
  g->finish = o.finish;
  g->arg = o.arg;
  s->strategy = (uint8_t)o.strategy;
  s->period_ms = o.period_ms > 0 ? o.period_ms : DEFAULT_PERIOD_MS;
  s->backoff_ms = o.backoff_ms > 0 ? o.backoff_ms : DEFAULT_BACKOFF_MS;
  s->backoff_max_ms = o.backoff_max_ms > 0 ? o.backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
  if (s->backoff_max_ms < s->backoff_ms)
    s->backoff_max_ms = s->backoff_ms;
  s->no_backoff = (uint8_t)(o.no_backoff != 0);
  s->no_jitter = (uint8_t)(o.no_jitter != 0);
  s->parallel_stop = (uint8_t)(o.parallel_stop != 0);
  s->rng = (g->id * 0x9E3779B97F4A7C15ull) ^ uv_hrtime() ^ 0x2545F4914F6CDD1Dull;
  if (s->rng == 0)
    s->rng = 1;
  s->c.restart = (uint8_t)o.restart;
  s->c.phase = ARBOR_PHASE_IDLE;
  if (out != NULL)
    *out = g;
  if (parent->kind == ARBOR_KIND_SUPERVISOR)
    arbor__sup_child_added(parent, g);
  else
    run_start(g);
  return 0;
}
