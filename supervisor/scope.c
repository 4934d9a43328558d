/* supervisor/scope.c - cancel scopes: deadlines (rule 5) and shields (rule 6).
 *
 * A fiber's open scopes form a stack (cx->scope is the innermost; each links to
 * its parent). Whether a checkpoint sees cancellation is decided here, walking from
 * the innermost scope out: a cancelled scope says yes; a shield stops the walk
 * (nothing from further out reaches in); past every scope, the task's own
 * cancellation decides. Deadlines are checked lazily, at checkpoints and when the
 * fiber's timer fires (fiber.c arms it for the effective deadline while parked).
 */
#include "internal.h"

uint64_t arbor_now_ms(arbor_runtime_t *rt) { return rt != NULL ? uv_now(rt->loop) : 0; }

/* Marks every scope whose deadline has passed as cancelled, and records the expiry
 * (rule 9). A fail-mode expiry keeps a timeout error for the fiber's return. */
static void expire(arbor_ctx_t *cx, uint64_t now) {
  int kept = 0;
  for (arbor_scope_t *s = cx->scope; s != NULL; s = s->parent_) {
    if (s->cancelled_ || s->deadline_ > now)
      continue;
    s->cancelled_ = s->expired_ = 1;
    arbor_error_t *err = NULL;
    /* The newest expiry names the scope a later ETIMEDOUT comes from (the
     * innermost one, when several expire in one pass). */
    if (s->fail_ && !kept) {
      err = arbor_error_new_at(ARBOR_ETIMEDOUT, NULL, s->file_, s->line_, "",
                               "fiber %s: deadline of the scope entered at %s:%d expired",
                               cx->task->name, s->file_, s->line_);
      arbor_error_unref(cx->timeout_error);
      cx->timeout_error = err;
      kept = 1;
    }
    arbor__record(cx->task, ARBOR_EVENT_DEADLINE, err);
  }
}

int arbor__fiber_cancelled(arbor_ctx_t *cx) {
  if (cx->scope != NULL)
    expire(cx, uv_now(cx->task->rt->loop));
  for (arbor_scope_t *s = cx->scope; s != NULL; s = s->parent_) {
    if (s->cancelled_)
      return 1;
    if (s->shield_)
      return 0;
  }
  return (cx->task->flags & ARBOR__F_CANCEL) != 0;
}

uint64_t arbor__effective_deadline(const arbor_ctx_t *cx) {
  uint64_t d = UINT64_MAX;
  for (const arbor_scope_t *s = cx->scope; s != NULL; s = s->parent_) {
    if (s->deadline_ < d)
      d = s->deadline_;
    if (s->shield_)
      break;
  }
  return d;
}

uint64_t arbor_current_effective_deadline(arbor_ctx_t *cx) {
  return cx != NULL ? arbor__effective_deadline(cx) : UINT64_MAX;
}

/* now + ms, saturating: a huge relative deadline means "never", not the past. */
static uint64_t after(uint64_t now, uint64_t ms) {
  return ms > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ms;
}

int arbor_scope_enter_at(arbor_ctx_t *cx, arbor_scope_t *s, const arbor_scope_opts_t *opts,
                         const char *file, int line) {
  if (cx == NULL || s == NULL)
    return ARBOR_EINVAL;
  if (cx->task->rt->current != cx)
    return ARBOR_ESTATE;
  uint64_t now = uv_now(cx->task->rt->loop);
  uint64_t deadline = UINT64_MAX;
  int fail = 0, set = 0;
  if (opts != NULL) {
    if (opts->move_on_after_ms)
      set++, deadline = after(now, opts->move_on_after_ms);
    if (opts->fail_after_ms)
      set++, fail = 1, deadline = after(now, opts->fail_after_ms);
    if (opts->move_on_at_ms)
      set++, deadline = opts->move_on_at_ms;
    if (opts->fail_at_ms)
      set++, fail = 1, deadline = opts->fail_at_ms;
    if (set > 1)
      return ARBOR_EINVAL;
  }
  /* Entering a scope that is open already would link it to itself: every walk of
   * the chain would loop. Only the live chain is read (s may be uninitialised). */
  for (arbor_scope_t *p = cx->scope; p != NULL; p = p->parent_)
    if (p == s)
      return ARBOR_EALREADY;
  *s = (arbor_scope_t){.parent_ = cx->scope, .cx_ = cx, .deadline_ = deadline,
                       .rt_ = cx->task->rt, .id_ = cx->task->id,
                       .file_ = file, .line_ = line,
                       .shield_ = opts != NULL && opts->shield, .fail_ = (unsigned char)fail};
  cx->scope = s;
  cx->scope_file = file;
  cx->scope_line = line;
  return 0;
}

int arbor_scope_exit(arbor_ctx_t *cx, arbor_scope_t *s) {
  if (cx == NULL || s == NULL)
    return ARBOR_EINVAL;
  if (cx->scope != s || cx->task->rt->current != cx)
    return ARBOR_ESTATE;         /* scopes nest LIFO, on their own fiber */
  expire(cx, uv_now(cx->task->rt->loop));
  cx->scope = s->parent_;
  cx->scope_file = s->parent_ != NULL ? s->parent_->file_ : NULL;   /* alive: outer */
  cx->scope_line = s->parent_ != NULL ? s->parent_->line_ : 0;
  s->cx_ = NULL;
  return s->expired_ && s->fail_ ? ARBOR_ETIMEDOUT : 0;
}

int arbor_scope_cancel(arbor_scope_t *s) {
  if (s == NULL)
    return ARBOR_EINVAL;
  if (s->cx_ == NULL)
    return ARBOR_ESTATE;         /* not open */
  /* A fiber that returned inside the scope (misuse, reported as its failure) left
   * cx_ set in a dead frame, and its node may be freed: find the fiber by id and
   * check that the scope is still on its chain before touching anything. */
  arbor_node_t *n = arbor_node_find(s->rt_, s->id_);
  if (n == NULL || (n->flags & ARBOR__F_BODY_ENDED))
    return ARBOR_ESTATE;
  int open = 0;
  for (arbor_scope_t *p = ((arbor_ctx_t *)arbor__task_data(n))->scope; p != NULL; p = p->parent_)
    open |= p == s;
  if (!open)
    return ARBOR_ESTATE;
  if (!s->cancelled_) {
    s->cancelled_ = 1;
    arbor__fiber_interrupt(s->cx_);
  }
  return 0;
}

int arbor_scope_cancelled_caught(const arbor_scope_t *s) { return s != NULL && s->cancelled_; }
