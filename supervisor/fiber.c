/* supervisor/fiber.c - fiber tasks: plain sequential bodies on their own stacks.
 *
 * A fiber is a callback task underneath: its data holds the fiber (arbor_ctx_t),
 * its start switches onto the fiber's stack, and its cancel hook wakes the fiber if
 * it is parked. So fibers share every rule of the tree with callback tasks: the
 * lifecycle, owned handles, failure propagation, retention.
 *
 * Who runs where: the loop's stack (rt->main_ctx) is the only place a fiber is
 * switched to; a fiber only ever switches back to it. Wake-ups that may happen on a
 * fiber's stack (a cancel hook runs inside whatever call spreads the cancellation)
 * are queued in rt->fibq and resumed by the runtime's drain; the timer behind
 * arbor_sleep resumes directly, as its callback runs on the loop's stack.
 *
 * Checkpoints are level-triggered (rule 4): once cancellation reached the fiber's
 * task, every checkpoint returns ARBOR_ECANCELED at once, and keeps doing so.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

/* ASan must be told about every switch, or it takes the new stack for a buffer
 * overflow of the old one. Debian installs <sanitizer/common_interface_defs.h> only
 * in each compiler's own directory, so the two functions are declared here. */
#if defined(__SANITIZE_ADDRESS__)
#define ARBOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARBOR_ASAN 1
#endif
#endif
#ifdef ARBOR_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#define ASAN_START(save, bottom, size) __sanitizer_start_switch_fiber((save), (bottom), (size))
#define ASAN_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber((save), (bottom), (size))
#else
#define ASAN_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define ASAN_FINISH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif

/* valgrind must know every stack, or it reports the first switch as a huge stack
 * change. The client requests are no-ops outside valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define ARBOR_VALGRIND 1
#endif
#endif
#ifndef ARBOR_VALGRIND
#define VALGRIND_STACK_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

static struct arbor_ctx_s *fiber_of(arbor_node_t *task) {
  return (struct arbor_ctx_s *)arbor__task_data(task);
}

static void fiber_finished(struct arbor_ctx_s *f);
static void end_park(struct arbor_ctx_s *f, int rc);

/* Runs f from the loop's stack until it parks or returns. */
static void resume(struct arbor_ctx_s *f) {
  arbor_runtime_t *rt = f->task->rt;
  struct arbor__stacks *s = &rt->stacks;
  void *fake = NULL;
  ARBOR_ASSERT(rt->current == NULL);
  rt->current = f;
  arbor__overflow_enter(f);      /* the SIGSEGV handler's idea of who is running */
  ASAN_START(&fake, arbor__stack_lo(s, &f->stack), arbor__stack_usable(s, &f->stack));
  arbor__ctx_switch(&rt->main_ctx, &f->ctx);
  ASAN_FINISH(fake, NULL, NULL);
  arbor__overflow_enter(NULL);
  rt->current = NULL;
  if (f->finished)
    fiber_finished(f);
}

/* From the fiber: back to the loop until something resumes it. */
static void switch_out(struct arbor_ctx_s *f, const char *what) {
  arbor_runtime_t *rt = f->task->rt;
  f->wait_what = what;
  f->wait_since = arbor__now();
  ASAN_START(&f->asan_fake, rt->main_stack_bottom, rt->main_stack_size);
  arbor__ctx_switch(&f->ctx, &rt->main_ctx);
  ASAN_FINISH(f->asan_fake, NULL, NULL);
  f->wait_what = NULL;
}

static void fiber_entry(void *p) {
  struct arbor_ctx_s *f = p;
  arbor_runtime_t *rt = f->task->rt;
  /* The first switch in: learn the loop's stack for the switches back. */
  ASAN_FINISH(NULL, &rt->main_stack_bottom, &rt->main_stack_size);
  f->rc = f->fn(f, f->arg);
  f->finished = 1;
  ASAN_START(NULL, rt->main_stack_bottom, rt->main_stack_size);   /* NULL: for good */
  arbor__ctx_switch(&f->ctx, &rt->main_ctx);
  ARBOR_ASSERT(!"a finished fiber was resumed");
}

/* The fiber overflowed its stack (overflow.c's handler found the fault in its
 * guard page and returned here instead of into the fault, on the top of the
 * same stack: the frames there belong to the dead body, and nothing will read
 * them again). Out of the signal handler already: sigreturn restored the signal
 * mask. Ends the body as fiber_entry does, with ARBOR_ESTACK. A park it was
 * entering is undone first (its unhook unlinks a waiter record that lives on
 * the dead stack); what else pointed into that stack stays harmless because the
 * stack stays mapped and is never reused (fiber_finished). */
__attribute__((no_sanitize_address)) _Noreturn void arbor__overflow_recover(
    struct arbor_ctx_s *f) {
  arbor_runtime_t *rt = f->task->rt;
  if (f->parked) {
    if (f->unpark != NULL)
      f->unpark(f, f->unpark_arg);
    arbor__timer_cancel(f->task);
    end_park(f, ARBOR_ESTACK);
  }
  f->overflowed = 1;
  f->rc = ARBOR_ESTACK;
  f->finished = 1;
  ASAN_START(NULL, rt->main_stack_bottom, rt->main_stack_size);   /* for good */
  arbor__ctx_switch(&f->ctx, &rt->main_ctx);
  ARBOR_ASSERT(!"an overflowed fiber was resumed");
  abort();
}

/* On the loop's stack, once fn has returned: the stack goes back, the body ends. */
static void fiber_finished(struct arbor_ctx_s *f) {
  arbor_node_t *task = f->task;
  arbor_error_t *err = NULL;
  int failed = f->rc < 0;
  if (f->overflowed) {
    /* Its open scopes lived on the dead stack: none is read, none is closed. */
    f->scope = NULL;
    struct arbor__stacks *s = &task->rt->stacks;
    err = arbor_error_new_at(ARBOR_ESTACK, NULL, "", 0, "",
                             "stack overflow in fiber %" PRIu64 " %s (stack %zu bytes)",
                             task->id, task->name, arbor__stack_usable(s, &f->stack));
  } else if (f->scope != NULL) {
    /* Scopes must nest LIFO within the body: returning past an open one skipped
     * its exit, so whatever it was meant to catch went astray. The scope itself
     * lived in a frame that is gone: only the copy of its site is read. */
    failed = 1;
    err = arbor_error_new_at(ARBOR_ESTATE, NULL, f->scope_file, f->scope_line, "",
                             "fiber %s returned inside the cancel scope entered at %s:%d",
                             task->name, f->scope_file, f->scope_line);
    f->scope = NULL;
  } else if (f->rc == ARBOR_ECANCELED && (task->flags & ARBOR__F_CANCEL)) {
    /* Cancelled, not failed (end_body would drop the error): making one only
     * risked running out of memory, which turned the cancellation into a failure. */
    failed = 0;
  } else if (failed && f->fail_error != NULL) {
    err = arbor_error_ref(f->fail_error);        /* the body's own chain */
  } else if (f->rc == ARBOR_ETIMEDOUT && f->timeout_error != NULL) {
    err = arbor_error_ref(f->timeout_error);     /* names the scope that expired */
  } else if (failed) {
    err = arbor_error_new_at(f->rc, NULL, "", 0, "", "fiber %s returned %s", task->name,
                             arbor_strerror(f->rc));
  }
  if (err == NULL && failed)
    err = arbor_error_ref(task->rt->oom_error);
  arbor_error_unref(f->timeout_error);
  f->timeout_error = NULL;
  arbor_error_unref(f->fail_error);
  f->fail_error = NULL;
  VALGRIND_STACK_DEREGISTER(f->valgrind_id);
  if (f->overflowed) {
    /* Quarantined, not pooled: a waiter record or a buffer on it that something
     * still points to must stay mapped and never become another fiber's frame.
     * Its slab (or mapping) goes at the runtime's close. */
    f->stack.map = NULL;
    task->rt->stats.fiber_stack_overflows++;
  } else {
    arbor__stack_put(&task->rt->stacks, &f->stack);   /* last: nothing on it is read */
  }
  arbor__task_end(task, err);
}

/* The task's start: take a stack and run the fiber up to its first checkpoint. */
static int fiber_start(arbor_node_t *task, void *arg) {
  (void)arg;
  struct arbor_ctx_s *f = fiber_of(task);
  struct arbor__stacks *s = &task->rt->stacks;
  /* Only programs that run fibers get arbor's SIGSEGV handler; before the first
   * stack, so the alternate signal stack does not sit right under a guard page. */
  arbor__overflow_install();
  int rc = arbor__stack_get(s, f->stack_size, &f->stack);
  if (rc < 0)
    return rc;
  char *lo = arbor__stack_lo(s, &f->stack);
  size_t size = arbor__stack_usable(s, &f->stack);
  f->valgrind_id = VALGRIND_STACK_REGISTER(lo, lo + size);
  arbor__ctx_make(&f->ctx, lo, size, fiber_entry, f);
  resume(f);
  return 0;
}

/* Ends f's park: it will return rc. The caller resumes it, now or from the queue. */
static void end_park(struct arbor_ctx_s *f, int rc) {
  f->parked = 0;
  f->unpark = NULL;
  f->wake_rc = rc;
}

/* Queues a fiber to be resumed by the drain with rc. Safe on any stack. The timer
 * its park armed (sleep's end, a deadline) must not fire after this wake-up. */
static void wake_later(struct arbor_ctx_s *f, int rc) {
  arbor_runtime_t *rt = f->task->rt;
  if (f->parked)
    arbor__timer_cancel(f->task);
  end_park(f, rc);
  int pushed = arbor__queue_push(&rt->fibq, f->task);   /* reserved at spawn */
  ARBOR_ASSERT(pushed == 0);
  arbor__runtime_wake(rt);
}

/* The task's cancel hook (rule 4): a parked fiber wakes with ARBOR_ECANCELED; a
 * running or queued one finds the cancellation at its next checkpoint. */
void arbor__fiber_abandon(arbor_ctx_t *f) {
  if (!f->parked)
    return;
  if (f->unpark != NULL)
    f->unpark(f, f->unpark_arg);
  wake_later(f, ARBOR_ECANCELED);
}

void arbor__fiber_interrupt(arbor_ctx_t *f) {
  if (!f->parked || !arbor__fiber_cancelled(f))
    return;                      /* running, queued, or shielded (rule 6) */
  if (f->unpark != NULL)
    f->unpark(f, f->unpark_arg);
  wake_later(f, ARBOR_ECANCELED);
}

static void fiber_cancel(arbor_node_t *task, void *arg) {
  (void)arg;
  arbor__fiber_interrupt(fiber_of(task));
}

void arbor__fibers_drain(arbor_runtime_t *rt) {
  size_t n = rt->fibq.len - rt->fibq.head;
  while (n-- > 0) {
    arbor_node_t *task = rt->fibq.items[rt->fibq.head++];
    struct arbor_ctx_s *f = fiber_of(task);
    if (!f->finished && f->stack.map != NULL)
      resume(f);
    arbor__node_unref(task);
  }
}

static int spawn(arbor_node_t *parent, const arbor_fiber_spec_t *spec, int handshake,
                 arbor_node_t **out) {
  if (parent == NULL || spec == NULL || spec->fn == NULL)
    return ARBOR_EINVAL;
  if (parent->kind != ARBOR_KIND_ROOT && parent->kind != ARBOR_KIND_GROUP)
    return ARBOR_EKIND;
  return arbor__fiber_spawn_kind(parent, spec, handshake, ARBOR_KIND_TASK, out);
}

int arbor__fiber_spawn_kind(arbor_node_t *parent, const arbor_fiber_spec_t *spec, int handshake,
                            arbor_kind_t kind, arbor_node_t **out) {
  if (parent == NULL || spec == NULL || spec->fn == NULL)
    return ARBOR_EINVAL;
  arbor_runtime_t *rt = parent->rt;
  /* One resume slot per fiber, reserved now, so a wake-up can never fail. */
  if (arbor__queue_reserve(&rt->fibq, rt->unfinished + 1) < 0)
    return ARBOR_ENOMEM;
  arbor_task_spec_t ts = {.name = spec->name != NULL ? spec->name : "fiber",
                          .start = fiber_start,
                          .cancel = fiber_cancel,
                          .finish = spec->finish,
                          .arg = spec->arg,
                          .data_size = sizeof(struct arbor_ctx_s),
                          .handshake = handshake};
  arbor_node_t *task;
  int rc = arbor__task_spawn(parent, &ts, kind, &task);
  if (rc < 0)
    return rc;
  task->flags |= ARBOR__F_FIBER;
  struct arbor_ctx_s *f = fiber_of(task);
  f->task = task;
  f->wake_at = UINT64_MAX;
  f->fn = spec->fn;
  f->arg = spec->arg;
  f->stack_size = spec->stack_size;
  if (out != NULL)
    *out = task;
  return 0;
}

int arbor_fiber_spawn(arbor_node_t *parent, const arbor_fiber_spec_t *spec, arbor_node_t **out) {
  return spawn(parent, spec, 0, out);
}

arbor_node_t *arbor_ctx_node(arbor_ctx_t *cx) { return cx != NULL ? cx->task : NULL; }

int arbor_fiber_fail_error(arbor_ctx_t *cx, arbor_error_t *err) {
  if (cx == NULL) {
    arbor_error_unref(err);
    return ARBOR_EINVAL;
  }
  if (err == NULL)
    return ARBOR_ENOMEM;
  arbor__error_set_node(err, cx->task->id);
  arbor_error_unref(cx->fail_error);
  cx->fail_error = err;
  int code = arbor_error_code(err);
  return code < 0 ? code : ARBOR_EFAILED;
}

/* ----------------------------------------------------- readiness handshake */

/* The child finished: a starter still waiting learns it never became ready. */
void arbor__fiber_node_finished(arbor_node_t *n) {
  struct arbor_ctx_s *f = fiber_of(n);
  arbor_ctx_t *starter = f->starter;
  if (starter == NULL)
    return;
  f->starter = NULL;
  int rc = n->error != NULL ? arbor_error_code(n->error)
           : n->outcome == ARBOR_OUTCOME_CANCELLED ? ARBOR_ECANCELED
                                                   : ARBOR_ESTATE;
  arbor__fiber_wake(starter, rc < 0 ? rc : ARBOR_EFAILED);
}

int arbor_fiber_started(arbor_ctx_t *cx, void *value) {
  if (cx == NULL)
    return ARBOR_EINVAL;
  if (cx->task->rt->current != cx)
    return ARBOR_ESTATE;
  if (cx->task->state != ARBOR_STATE_STARTING)
    return ARBOR_ESTATE;
  arbor__transition(cx->task, ARBOR_STATE_STARTED);
  arbor_ctx_t *starter = cx->starter;
  if (starter != NULL) {
    cx->starter = NULL;
    starter->start_value = value;
    arbor__fiber_wake(starter, 0);
  }
  return 0;
}

struct start_hook {
  arbor_node_t *child;
};

/* The starter was cancelled while it waited: nobody awaits the child's readiness
 * any more, and a child half started on the starter's behalf is cancelled too. */
static void start_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  struct start_hook *h = arg;
  fiber_of(h->child)->starter = NULL;
  arbor__cancel(h->child);
}

int arbor_fiber_start_at(arbor_ctx_t *cx, arbor_node_t *parent, const arbor_fiber_spec_t *spec,
                         void **value, arbor_node_t **out, const char *file, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  arbor_node_t *child;
  if ((rc = spawn(parent, spec, 1, &child)) < 0)
    return rc;
  fiber_of(child)->starter = cx;
  cx->start_value = NULL;
  arbor_node_ref(child);         /* valid across the wait, whatever happens to it */
  struct start_hook hook = {child};
  rc = arbor__fiber_park(cx, "fiber_start", file, line, start_unhook, &hook);
  if (rc == 0 && value != NULL)
    *value = cx->start_value;
  /* A child that finished and left retention while this fiber waited to run is
   * freed by the unref below: hand out no pointer to it. */
  if (out != NULL)
    *out = (child->flags & ARBOR__F_EVICTED) ? NULL : child;
  arbor__node_unref(child);
  return rc;
}

int arbor__checkpoint(arbor_ctx_t *cx) {
  if (cx == NULL)
    return ARBOR_EINVAL;
  if (cx->task->rt->current != cx)
    return ARBOR_ESTATE;         /* called from the loop or another fiber */
  if (arbor__fiber_cancelled(cx))
    return ARBOR_ECANCELED;
  return 0;
}

/* The parked fiber's timer: its sleep ended or a deadline passed. Runs on the
 * loop's stack, so it resumes the fiber directly. */
static void on_fiber_timer(arbor_node_t *task, void *arg);

static void arm_timer(struct arbor_ctx_s *f) {
  uint64_t at = arbor__effective_deadline(f);
  if (f->wake_at < at)
    at = f->wake_at;
  if (at == UINT64_MAX)
    return;
  uint64_t now = uv_now(f->task->rt->loop);
  int rc = arbor__task_after(f->task, at > now ? at - now : 0, on_fiber_timer);
  ARBOR_ASSERT(rc == 0);   /* its slot was reserved with the node (node.c) */
  (void)rc;
}

static void on_fiber_timer(arbor_node_t *task, void *arg) {
  (void)arg;
  struct arbor_ctx_s *f = fiber_of(task);
  if (!f->parked)
    return;
  int rc;
  if (arbor__fiber_cancelled(f)) {           /* a deadline expired */
    if (f->unpark != NULL)
      f->unpark(f, f->unpark_arg);
    rc = ARBOR_ECANCELED;
  } else if (uv_now(task->rt->loop) >= f->wake_at) {
    rc = 0;                                  /* the sleep is over */
  } else {
    arm_timer(f);                            /* early (a deadline moved): again */
    return;
  }
  end_park(f, rc);
  resume(f);                     /* a timer callback runs on the loop's stack */
}

static int park_until(arbor_ctx_t *cx, const char *what, const char *file, int line,
                      void (*unhook)(arbor_ctx_t *cx, void *arg), void *arg,
                      uint64_t wake_at) {
  ARBOR_ASSERT(cx->task->rt->current == cx && !cx->parked);
  cx->parked = 1;
  cx->unpark = unhook;
  cx->unpark_arg = arg;
  cx->wait_file = file;
  cx->wait_line = line;
  cx->wake_at = wake_at;
  arm_timer(cx);
  switch_out(cx, what);
  cx->wake_at = UINT64_MAX;
  return cx->wake_rc;
}

int arbor__fiber_park(arbor_ctx_t *cx, const char *what, const char *file, int line,
                      void (*unhook)(arbor_ctx_t *cx, void *arg), void *arg) {
  return park_until(cx, what, file, line, unhook, arg, UINT64_MAX);
}

void arbor__fiber_wake(arbor_ctx_t *cx, int rc) {
  if (cx->parked)
    wake_later(cx, rc);
}

int arbor_yield_at(arbor_ctx_t *cx, const char *file, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  cx->wait_file = file;
  cx->wait_line = line;
  wake_later(cx, 0);             /* back of the queue: everyone ready runs first */
  switch_out(cx, "yield");
  return arbor__fiber_cancelled(cx) ? ARBOR_ECANCELED : 0;
}

int arbor_sleep_at(arbor_ctx_t *cx, uint64_t ms, const char *file, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  uint64_t now = uv_now(cx->task->rt->loop);
  uint64_t at = ms > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ms;
  return park_until(cx, "sleep", file, line, NULL, NULL, at);
}

/* ------------------------------------------------------------- snapshots */

/* The lowest byte of the stack anyone wrote: stacks start zero-filled (fresh
 * mmap), and a fiber's frames grow down from the top. Pages the process never
 * touched are not resident, so mincore lets the scan skip them without faulting
 * them in. */
static size_t high_water(const struct arbor__stacks *s, const struct arbor__stack *st) {
  const unsigned char *lo = arbor__stack_lo(s, st);
  size_t size = arbor__stack_usable(s, st);
  /* The scan reads below the parked fiber's stack pointer on purpose; tell
   * memcheck, which otherwise takes it for a read of dead stack. */
  VALGRIND_MAKE_MEM_DEFINED(lo, size);
  for (size_t off = 0; off < size; off += s->page) {
    unsigned char resident = 1;
    if (mincore((void *)(lo + off), s->page, &resident) == 0 && !(resident & 1))
      continue;
    for (size_t i = 0; i < s->page; i++)
      if (lo[off + i] != 0)
        return size - (off + i);
  }
  return 0;
}

int arbor_node_fiber_info(const arbor_node_t *node, arbor_fiber_info_t *info) {
  if (node == NULL || info == NULL)
    return ARBOR_EINVAL;
  if (!arbor__has_body(node) || !(node->flags & ARBOR__F_FIBER))
    return ARBOR_EKIND;
  const struct arbor_ctx_s *f = arbor__task_data((arbor_node_t *)node);
  const struct arbor__stacks *s = &node->rt->stacks;
  memset(info, 0, sizeof *info);
  if (f->parked || f->wait_what != NULL) {
    info->wait_what = f->wait_what;
    info->wait_file = f->wait_file;
    info->wait_line = f->wait_line;
    info->wait_since_ns = f->wait_since;
  }
  if (f->stack.map != NULL) {
    info->stack_size = arbor__stack_usable(s, &f->stack);
    info->stack_high_water = high_water(s, &f->stack);
  }
  return 0;
}
