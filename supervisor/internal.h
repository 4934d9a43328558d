/* supervisor/internal.h - what the core's files share. Not installed.
 *
 * Ownership in one paragraph: the runtime owns every node. A node is freed only
 * from the loop (arbor__runtime_drain), never inside an API call, so any pointer a
 * caller or an internal loop holds stays valid for the whole call. The one
 * exception is arbor_node_unref of an evicted node: the caller's last use of it. A node is freed
 * once it is FINISHED, out of the retention FIFO (evicted) and unreferenced;
 * references come from callers (arbor_node_ref), from each child (a child holds its
 * parent, so no freed node has a live child) and from queued callbacks.
 */
#ifndef ARBOR_SUPERVISOR_INTERNAL_H
#define ARBOR_SUPERVISOR_INTERNAL_H

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>

#include "arbor.h"
#include "extension.h"
#include "recorder.h"
#include "switch.h"

/* Always-on assert for broken invariants (programming errors inside arbor), like
 * libdill's dill_assert: independent of NDEBUG, prints where, aborts. */
#define ARBOR_ASSERT(cond)                                                             \
  do {                                                                                 \
    if (__builtin_expect(!(cond), 0))                                                  \
      arbor__assert_fail(#cond, __FILE__, __LINE__, __func__);                         \
  } while (0)
void arbor__assert_fail(const char *expr, const char *file, int line, const char *func)
    __attribute__((noreturn));

#define ARBOR_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Formats a message into msg (when msg is not NULL and msglen > 0) and returns
 * rc: how the checks that explain a refusal in words (runas.c, envfile.c) say
 * what was wrong and return the code in one statement. */
int arbor__say(char *msg, size_t msglen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ nodes */

enum {
  ARBOR__F_CANCEL = 1u << 0,      /* cancellation reached the node */
  ARBOR__F_BODY_ENDED = 1u << 1,  /* task: done/fail; group: joined, or stopping */
  ARBOR__F_JOINED = 1u << 2,      /* group: arbor_group_join was called */
  ARBOR__F_HANDSHAKE = 1u << 3,   /* task: starts in STARTING */
  ARBOR__F_RETAINED = 1u << 4,    /* in the retention FIFO */
  ARBOR__F_EVICTED = 1u << 5,     /* out of the tree and the id map; freed at refs 0 */
  ARBOR__F_IN_START = 1u << 6,    /* task: its start callback is running */
  ARBOR__F_CANCEL_HOOK = 1u << 7, /* task: its cancel hook has been called */
  ARBOR__F_FIBER = 1u << 8,       /* task: its body is a fiber (fiber.c) */
  ARBOR__F_STUCK = 1u << 9,       /* rule 8: STOPPING past its shutdown timeout */
  ARBOR__F_DAEMON = 1u << 10,     /* rule 7: a daemon task or daemon child service */
  ARBOR__F_SVC_TASK = 1u << 11,   /* run by a service's body: counts in its stats */
};

struct arbor__attr {
  char *key;
  char *value;
};

/* Rarely needed parts, allocated on first use to keep the hot node small. */
/* A fiber parked in arbor_wait on a node; the record lives on its stack, linked
 * while it waits (wait.c). */
struct arbor__waiter {
  arbor_ctx_t *cx;
  struct arbor__waiter *next, *prev;
};

struct arbor__extra {
  struct arbor__attr attrs[ARBOR_ATTRS_MAX];
  uint32_t nattrs;
  struct arbor__waiter *waiters;   /* fibers waiting for this node to finish */
};

struct arbor__task {
  arbor_task_start_cb start;
  arbor_task_cancel_cb cancel;
  arbor_task_timer_cb timer_cb;  /* the pending arbor_task_after, if timer_slot > 0 */
  union {                  /* owned handles: inline while there is at most one */
    uv_handle_t *one;
    uv_handle_t **many;
  } h;
  uint16_t nhandles;
  uint16_t cap;            /* 1: h.one is used; more: h.many */
  uint16_t data_off;       /* spec.data_size bytes at this offset, or 0 */
  uint16_t pad_;
  uint32_t timer_slot;     /* 1 + index in the runtime's timer heap; 0: none */
};

struct arbor__group {
  arbor_error_t **errors;  /* children's errors in the order they failed */
  uint32_t nerrors;
  uint32_t cap;
};

/* ------------------------------------------------------------ supervision
 *
 * Service and supervisor nodes keep their id across restarts: they do not finish
 * between runs. What they share as a supervisor's children is struct
 * arbor__child (supervisor.c drives it); a service adds its body and its
 * incarnation (service.c), a process service its program (procsvc.c). */

/* A timer of a service or supervisor node: heap-allocated so that it can outlive
 * the node while its close is pending; counted in rt->handles_open. */
struct arbor__htimer {
  uv_timer_t handle;
  arbor_node_t *node;            /* NULL once closing */
  arbor_runtime_t *rt;
};

struct arbor__failure {
  uint64_t incarnation_id;
  uint64_t time_ns;
  uint64_t backoff_ms;
  int restarted;
  arbor_error_t *error;          /* a reference; NULL for a normal exit */
};

struct arbor__child {
  uint8_t phase;                 /* arbor_phase_t */
  uint8_t restart;               /* arbor_restart_t */
  uint8_t want_run;              /* its supervisor wants it running */
  uint8_t final;                 /* stopping for good: it finishes once stopped */
  uint8_t restart_now;           /* arbor_service_restart: start again once stopped */
  uint8_t ever_started;          /* it reached STARTED once */
  uint8_t cycle;                 /* one_for_all / rest_for_one: stop, then start again */
  uint8_t last_failed;           /* its last run ended FAILED (run_error says how) */
  uint8_t fail_run;              /* service: arbor_service_fail stops its run: its end
                                    is a failure, not a requested stop */
  uint32_t runs;                 /* runs begun; every one after the first is a restart */
  uint32_t restarts;
  uint32_t streak;               /* restarts in a row without a long run: backoff exponent */
  uint64_t not_before;           /* loop ms before which it must not start (backoff) */
  uint64_t last_backoff_ms;
  uint64_t ready_at;             /* loop ms its current run became ready */
  arbor_error_t *run_error;      /* how its last run failed (a reference), or NULL */
  struct arbor__failure hist[ARBOR_SERVICE_HISTORY];  /* a ring, newest at hist_head-1 */
  uint32_t nhist, hist_head;
  struct arbor__htimer *timer;   /* supervisor: backoff; service: shutdown timeout */
  uint64_t last_inc_id;          /* service: its last incarnation's id */
  uint64_t last_end_ns;          /* service: when its last incarnation FINISHED */
  struct arbor__waiter *start_waiters;   /* fibers in arbor_service_wait_started */
  uint8_t not_ready;             /* service: its readiness probe failed it while it
                                    ran; its dependents wait (probe.c) */
  uint64_t *after;               /* ids of earlier siblings it starts only after
                                    (arbor_service_start_after); malloc'd */
  uint32_t nafter;
};

struct arbor__logring {          /* bytes of output, a ring; offsets are absolute */
  char *buf;
  size_t cap;
  uint64_t end;                  /* bytes ever written */
};

struct arbor__proc_spec;         /* procsvc.c: argv, env, cwd ... copied */
struct arbor__proc;              /* procsvc.c: the running program */
struct arbor__logfile;           /* logfile.c: a log file and its writer */

/* procstat.c: the sample a process service's cpu_percent is measured from. */
struct arbor__usage_ref {
  uint64_t inc_id;               /* the run it was taken in; 0: none yet */
  int pid;
  uint64_t cpu_ns, at_ns;        /* the reference: CPU used, when (arbor__now) */
  double percent;                /* the latest figure, for samples under 1 s apart */
};

/* memlimit.c: a process service's memory limit while its program runs, and
 * what the readings saw. */
struct arbor__memwatch {
  uint64_t max_bytes, for_ms;    /* the running program's limit */
  int pid;                       /* the program read */
  uint32_t slot;                 /* 1 + its index in the runtime's list; 0: not watched */
  uint32_t processes;            /* of the latest reading */
  uint64_t rss_bytes, sampled_ns;
  uint64_t over_since_ns;        /* the first of the unbroken readings over it; 0: none */
  uint64_t readings;             /* of this run */
  uint64_t exceeded;             /* runs the limit failed, over the service's life */
};

struct arbor__svc {
  struct arbor__child c;
  arbor_fiber_fn fiber;          /* NULL for a process service */
  size_t stack_size;
  uint64_t shutdown_timeout_ms;
  int handshake;
  arbor_node_t *inc;             /* the current incarnation (referenced), or NULL */
  uint64_t tasks_total, tasks_finished;
  struct arbor__proc_spec *proc; /* process service: its spec */
  struct arbor__proc_spec *next_proc;   /* arbor_service_update's, from the next run on */
  struct arbor__proc *running;   /* process service: the live program, or NULL */
  struct arbor__logring log;     /* process service: stdout + stderr */
  struct arbor__logfile *logfile;   /* process service: its log file, or NULL */
  struct arbor__usage_ref usage; /* process service: cpu_percent's reference */
  struct arbor__memwatch mem;    /* process service: its memory limit (memlimit.c) */
  struct arbor__probe *probe[2]; /* liveness, readiness (arbor_probe_role_t), or NULL */
  uint8_t inc_ready;             /* its incarnation reported ready; the readiness probe
                                    may still hold its run in STARTING */
};

struct arbor__sup {
  struct arbor__child c;
  uint8_t strategy;              /* arbor_strategy_t */
  uint8_t no_jitter;
  uint8_t pending_pump;          /* the first start is queued on the timer */
  uint8_t no_backoff;
  uint8_t parallel_stop;         /* final stop: every child at once */
  uint8_t pumping, repump;       /* pump() is running / must run once more */
  uint8_t stopping_run;          /* its run is ending: stop every child (not for good) */
  int intensity;
  uint64_t period_ms, backoff_ms, backoff_max_ms;
  uint64_t *restart_times;       /* loop ms of the latest intensity+1 restarts, a ring */
  uint32_t nrestart_times, restart_head;
  arbor_error_t *fail_error;     /* intensity exceeded: the run ends with it */
  uint64_t rng;                  /* xorshift state for the jitter */
};

struct arbor_node_s {
  uint64_t id;
  arbor_runtime_t *rt;
  arbor_node_t *parent;
  /* Children form a circular doubly-linked list in creation order:
   * first_child->prev is the last child. */
  arbor_node_t *first_child;
  arbor_node_t *next;            /* siblings; after eviction: the zombie list */
  arbor_node_t *prev;
  arbor_error_t *error;          /* set once; the chain of a FAILED node */
  struct arbor__extra *extra;
  arbor_finish_cb finish;
  void *arg;
  uint64_t t_created, t_started, t_stop, t_finished;
  uint64_t t_entered[4];         /* when it entered STARTING .. STOPPED (stats.c) */
  uint64_t children_total;
  uint32_t nchildren;            /* linked children (live + retained) */
  uint32_t live_children;        /* children not FINISHED */
  uint32_t refs;
  uint32_t closing;              /* task: owned handles whose close callback is pending */
  uint16_t flags;
  uint8_t kind, state, outcome;
  union {
    struct arbor__task task;     /* TASK and PROCESS */
    struct arbor__group group;
    struct arbor__svc *svc;      /* SERVICE */
    struct arbor__sup *sup;      /* SUPERVISOR */
  } u;
  char name[];                   /* NUL-terminated; task data follows, aligned */
};

/* A FIFO of node pointers (run queue, finish callbacks), a growable array; holds a
 * reference on each node it contains. */
struct arbor__queue {
  arbor_node_t **items;
  size_t head, len, cap;
};

/* The runtime's timers: one uv_timer_t for every arbor_task_after of every task, a
 * binary min-heap of entries ordered by (deadline, seq). Entries carry their keys so
 * that sifting compares within the array and does not touch the nodes. */
struct arbor__timer_entry {
  uint64_t deadline;         /* loop time, ms */
  uint64_t seq;              /* arming order: equal deadlines fire first-armed first */
  arbor_node_t *node;
};

struct arbor__timers {
  struct arbor__timer_entry *heap;
  size_t len, cap;
  uint64_t seq;
  int firing;                /* inside the uv timer's callback */
  int rearm_pending;         /* the drain must re-arm the uv timer */
  uv_timer_t handle;
};

struct arbor__idmap {
  arbor_node_t **slots;      /* open addressing, linear probing; NULL = empty */
  size_t mask;               /* capacity - 1 (capacity is 2^k) */
  size_t count;
};

/* A fiber's stack: an mmap'd region whose lowest page is a PROT_NONE guard. */
struct arbor__stack {
  void *map;                     /* NULL: none; else the guard page's address */
  size_t map_size;               /* guard page included */
  struct arbor__slab *slab;      /* the slab it was cut from; NULL: mapped alone */
};

/* Stacks of the runtime's default size are cut from slabs of ARBOR__SLAB_STACKS
 * (stack.c says why). */
#define ARBOR__SLAB_STACKS 64
struct arbor__slab {
  struct arbor__slab *next, *prev;       /* slabs with a free stack (most recent first) */
  struct arbor__slab *next_all;          /* every slab */
  char *base;
  uint64_t guarded;                      /* bit i: unit i's guard page is set up */
  uint16_t nfree;
  uint16_t free[ARBOR__SLAB_STACKS];     /* free unit indices, a LIFO */
  int listed;
};

struct arbor__stacks {
  struct arbor__slab *partial;   /* slabs with a free unit */
  struct arbor__slab *all;
  size_t free_units;             /* free default-size stacks, in every slab */
  size_t max;                    /* free stacks kept for reuse beyond a slab's worth */
  size_t default_size;           /* usable bytes, a multiple of the page size */
  size_t unit;                   /* default_size + the guard page */
  size_t page;
};

/* A fiber. It lives in its task node's data (arbor_ctx_t is this struct). */
struct arbor_ctx_s {
  arbor__ctx_t ctx;
  arbor_node_t *task;
  arbor_fiber_fn fn;
  void *arg;
  struct arbor__stack stack;
  size_t stack_size;             /* usable bytes wanted */
  void *asan_fake;               /* ASan's fake stack while switched out */
  unsigned valgrind_id;
  int rc;                        /* what fn returned */
  int wake_rc;                   /* what the parked checkpoint returns */
  uint8_t parked;                /* switched out at a checkpoint, wake-up not queued */
  uint8_t finished;              /* fn returned */
  uint8_t overflowed;            /* ended by a stack overflow (overflow.c): its stack
                                    is dead, never resumed, never reused */
  void (*unpark)(arbor_ctx_t *cx, void *arg);   /* see arbor__fiber_park */
  void *unpark_arg;
  arbor_scope_t *scope;          /* innermost open cancel scope, or NULL */
  const char *scope_file;        /* where the innermost open scope was entered: kept */
  int scope_line;                /* here so that a return past it needs no dead frame */
  uint64_t wake_at;              /* loop ms a parked sleep ends; UINT64_MAX: none */
  arbor_error_t *timeout_error;  /* the chain of an expired fail-mode deadline */
  arbor_error_t *fail_error;     /* kept by arbor_fiber_fail_error for the return */
  arbor_ctx_t *starter;          /* a fiber parked in arbor_fiber_start for this one */
  void *start_value;             /* as a starter: the value the child reported */
  const char *wait_what;         /* the checkpoint it waits in, or NULL */
  const char *wait_file;
  int wait_line;
  uint64_t wait_since;
};

/* arbor_run's state, on its stack: survives the runtime being freed under it. */
struct arbor__run {
  int freed;
  int failure;                   /* arbor_run's result from the first top-level failure */
  int gave_up;                   /* shutdown gave up on nodes: ARBOR_EDEADLK */
};

struct arbor_runtime_s {
  uv_loop_t *loop;
  arbor_node_t *root;
  uint64_t next_id;
  uint64_t mono0_ns;             /* uv_hrtime() and wall clock read together at start */
  int64_t wall0_ns;
  struct arbor__idmap ids;
  struct arbor__recorder rec;
  struct arbor__queue runq;      /* CREATED tasks waiting for their start */
  struct arbor__queue finq;      /* FINISHED nodes whose finish callback is due */
  struct arbor__queue retainq;   /* retained FINISHED nodes, oldest first */
  size_t retain_max;
  size_t unfinished;             /* nodes not FINISHED: each has a retainq slot reserved */
  arbor_node_t *zombies;         /* evicted nodes still referenced (next/prev links) */
  uv_idle_t idle;                /* runs arbor__runtime_drain while work is queued */
  struct arbor__timers timers;
  struct arbor__queue fibq;      /* fibers to resume from the loop */
  struct arbor__stacks stacks;
  arbor__ctx_t main_ctx;         /* the loop's side of every fiber switch */
  struct arbor_ctx_s *current;   /* the fiber running now, or NULL: the loop's stack */
  const void *main_stack_bottom; /* for ASan's switch annotations */
  size_t main_stack_size;
  uv_signal_t sigint, sigterm;
  int signals_on;
  int no_signals;
  int closing;
  int running;                   /* inside arbor_run: stop the loop when the tree empties */
  struct arbor__run *run;        /* set inside arbor_run */
  int handles_open;              /* internal handles not yet closed */
  int freeing;                   /* tearing down: node_free leaves parents alone */
  arbor_error_t *oom_error;      /* preallocated: the error when making one failed */
  arbor_runtime_close_cb close_cb;
  void *close_arg;
  arbor_error_t *first_failure;  /* first failure of a top-level node */
  uint64_t top_failures;
  uint64_t shutdown_timeout_ms;
  int shutdown;                  /* 1: graceful shutdown begun; 2: gave up (immediate) */
  int gave_up;                   /* shutdown gave up on a node: arbor_run's EDEADLK */
  struct arbor__htimer *shutdown_timer;
  struct arbor__reaper *reaper;  /* procsvc.c: SIGCHLD watcher, once a process service exists */
  char *exec_helper;             /* arbor_runtime_opts_t's, copied; NULL: the installed one */
  struct arbor__memlimit *memlimit;   /* memlimit.c: once a limited program ran */
  int memory_scan;               /* arbor_runtime_opts_t's: memlimit.c scans /proc */
  struct arbor__closer *closers; /* other modules' handles to close (extension.h) */
  arbor_stats_t stats;           /* stats.c; the event counts live in rec */
  arbor_otlp_t *otlp;            /* its OTLP exporter, or NULL (extension.h) */
};

/* stats.c */
void arbor__hist_add(arbor_histogram_t *h, uint64_t ns);

/* node.c */
arbor_node_t *arbor__node_new(arbor_node_t *parent, arbor_kind_t kind, const char *name,
                              size_t data_size);
void arbor__node_unref(arbor_node_t *node);
void arbor__node_free(arbor_node_t *node);
int arbor__parent_check(arbor_node_t *parent);
void arbor__retain(arbor_node_t *node);
void arbor__retention_trim(arbor_runtime_t *rt, size_t keep);
uint64_t arbor__now(void);

/* idmap.c */
int arbor__idmap_init(struct arbor__idmap *m);
void arbor__idmap_free(struct arbor__idmap *m);
int arbor__idmap_put(struct arbor__idmap *m, arbor_node_t *node);
arbor_node_t *arbor__idmap_get(const struct arbor__idmap *m, uint64_t id);
void arbor__idmap_del(struct arbor__idmap *m, uint64_t id);

/* lifecycle.c */
void arbor__transition(arbor_node_t *node, arbor_state_t to);
void arbor__record(arbor_node_t *node, arbor_event_type_t type, const arbor_error_t *err);
void arbor__maybe_finish(arbor_node_t *node);
void arbor__finish(arbor_node_t *node);
void arbor__node_failed(arbor_node_t *node, arbor_error_t *err);
void arbor__cancel_children(arbor_node_t *node);
int arbor__cancel(arbor_node_t *node);
void arbor__abandon(arbor_node_t *node);

/* timer.c */
int arbor__timers_init(arbor_runtime_t *rt);
void arbor__timers_free(arbor_runtime_t *rt);
void arbor__timers_close(arbor_runtime_t *rt, uv_close_cb cb);
void arbor__timer_cancel(arbor_node_t *task);
void arbor__timers_rearm(arbor_runtime_t *rt);

/* stack.c */
void arbor__stacks_init(struct arbor__stacks *s, size_t default_size, size_t max);
int arbor__stack_get(struct arbor__stacks *s, size_t size, struct arbor__stack *out);
void arbor__stack_put(struct arbor__stacks *s, struct arbor__stack *st);
void arbor__stacks_free(struct arbor__stacks *s);
void *arbor__stack_lo(const struct arbor__stacks *s, const struct arbor__stack *st);
size_t arbor__stack_usable(const struct arbor__stacks *s, const struct arbor__stack *st);

/* fiber.c: what every checkpoint (channels, streams, thread-pool work) builds on.
 *
 * A checkpoint is:
 *     int rc = arbor__checkpoint(cx);          // 0, ARBOR_ESTATE or ARBOR_ECANCELED
 *     if (rc < 0) return rc;
 *     ...hook cx up to whatever will wake it (a wait list, a libuv request)...
 *     rc = arbor__fiber_park(cx, "channel_recv", file, line, unhook, arg);
 *     ...rc is what the waker passed to arbor__fiber_wake, or ARBOR_ECANCELED...
 * State the wake-up needs (a waiter record, a uv_req_t) must not live on the
 * fiber's stack if anything can touch it after the fiber stopped waiting: allocate
 * it with the object, or make unhook make it unreachable. */

/* 0 when cx may block now: called on cx's own fiber (else ARBOR_ESTATE, and
 * ARBOR_EINVAL for NULL) and not cancelled (else ARBOR_ECANCELED: rule 4,
 * level-triggered). */
int arbor__checkpoint(arbor_ctx_t *cx);

/* Parks cx (the running fiber) until arbor__fiber_wake(cx, rc) and returns that rc.
 * If cancellation reaches cx first, unhook(cx, arg) is called (may be NULL), then
 * the park returns ARBOR_ECANCELED. unhook runs synchronously on whatever stack
 * spread the cancellation: it must only make sure nothing will wake cx any more
 * (take it off a wait list, stop a timer, uv_read_stop, uv_cancel ...), never
 * switch or block. `what` (a static string) and file:line name the wait site for
 * the snapshot. */
int arbor__fiber_park(arbor_ctx_t *cx, const char *what, const char *file, int line,
                      void (*unhook)(arbor_ctx_t *cx, void *arg), void *arg);

/* Wakes a parked fiber: its park returns rc. Safe on any stack, from any loop
 * callback or another fiber: the resume is queued for the loop. A no-op when cx is
 * not parked (already woken, or cancelled). */
void arbor__fiber_wake(arbor_ctx_t *cx, int rc);

void arbor__fibers_drain(arbor_runtime_t *rt);
/* Cancellation may have reached cx: wake it with ECANCELED if it is parked and
 * cancelled as its scopes see it (a shielded one stays parked). */
void arbor__fiber_interrupt(arbor_ctx_t *cx);
/* Shutdown gives up on a parked fiber (task.c's abandon): off every wait list,
 * then woken with ARBOR_ECANCELED. */
void arbor__fiber_abandon(arbor_ctx_t *cx);

/* The node is FINISHED now (lifecycle.c): wake whoever waits for it. */
void arbor__fiber_node_finished(arbor_node_t *node);
void arbor__wait_node_finished(arbor_node_t *node);

/* scope.c */
int arbor__fiber_cancelled(arbor_ctx_t *cx);   /* expires due deadlines, then rules 4-6 */
uint64_t arbor__effective_deadline(const arbor_ctx_t *cx);

/* task.c, group.c */
void arbor__task_end(arbor_node_t *task, arbor_error_t *err);
int arbor__task_spawn(arbor_node_t *parent, const arbor_task_spec_t *spec, arbor_kind_t kind,
                      arbor_node_t **out);
void *arbor__task_data(arbor_node_t *task);
int arbor__task_after(arbor_node_t *task, uint64_t timeout, arbor_task_timer_cb cb);
/* Room for n timer entries (node.c: one per unfinished node). ARBOR_ENOMEM. */
int arbor__timers_reserve(arbor_runtime_t *rt, size_t n);
void arbor__task_run(arbor_node_t *task);
void arbor__task_cancel(arbor_node_t *task);
void arbor__task_abandon(arbor_node_t *task);
int arbor__task_can_finish(const arbor_node_t *task);
void arbor__group_cancel(arbor_node_t *group);
void arbor__group_child_failed(arbor_node_t *group, arbor_node_t *child);
arbor_error_t *arbor__group_error(arbor_node_t *group);

/* runtime.c */
int arbor__queue_push(struct arbor__queue *q, arbor_node_t *node);
int arbor__queue_reserve(struct arbor__queue *q, size_t extra);
void arbor__queue_free(struct arbor__queue *q);
void arbor__runtime_wake(arbor_runtime_t *rt);
void arbor__runtime_tree_changed(arbor_runtime_t *rt);

/* error.c */
void arbor__error_set_node(arbor_error_t *err, uint64_t node_id);
arbor_error_t *arbor__error_group_new(arbor_node_t *group, arbor_error_t **children, size_t n);

/* supervisor.c, service.c: the hooks the lifecycle calls */
static inline int arbor__has_body(const arbor_node_t *n) {   /* uses u.task */
  return n->kind == ARBOR_KIND_TASK || n->kind == ARBOR_KIND_PROCESS;
}
struct arbor__child *arbor__child_of(arbor_node_t *n);      /* SERVICE/SUPERVISOR, else NULL */
void arbor__svc_inc_ready(arbor_node_t *svc, arbor_node_t *inc);
int arbor__svc_start(arbor_node_t *svc);
void arbor__svc_stop(arbor_node_t *svc);
void arbor__svc_final(arbor_node_t *svc);
void arbor__sup_child_added(arbor_node_t *sup, arbor_node_t *child);
void arbor__sup_child_ready(arbor_node_t *sup, arbor_node_t *child);
void arbor__sup_child_ended(arbor_node_t *sup, arbor_node_t *child, int failed, int requested);
void arbor__sup_pump(arbor_node_t *sup);
arbor_node_t *arbor__sup_waiting_for(arbor_node_t *sup, const arbor_node_t *child);
int arbor__sup_restart(arbor_node_t *sup);
uint64_t arbor__backoff_delay(struct arbor__sup *s, struct arbor__child *c, uint64_t now);
void arbor__child_first_ready(arbor_node_t *n);
void arbor__child_history_add(struct arbor__child *c, uint64_t inc_id, arbor_error_t *err);
struct arbor__failure *arbor__child_history_newest(struct arbor__child *c);
void arbor__svc_inc_finished(arbor_node_t *svc, arbor_node_t *inc);
void arbor__svc_cancel(arbor_node_t *svc);
void arbor__sup_cancel(arbor_node_t *sup);
void arbor__sup_child_finished(arbor_node_t *sup, arbor_node_t *child);
void arbor__daemon_failed(arbor_node_t *task, arbor_node_t *daemon);
void arbor__daemon_finished(arbor_node_t *task, arbor_node_t *daemon);
void arbor__svc_task_finished(arbor_node_t *n);
void arbor__child_free(arbor_node_t *n);         /* node.c's free of SERVICE/SUPERVISOR */
void arbor__child_node_finished(arbor_node_t *n);   /* closes its timer */
void arbor__mark_stuck(arbor_node_t *n);
int arbor__htimer_new(arbor_node_t *n, struct arbor__htimer **out);
void arbor__htimer_close(struct arbor__htimer *t);
void arbor__runtime_handle_closed(arbor_runtime_t *rt);

/* A record that owns several libuv handles (and requests) and is freed by the
 * last of their callbacks: a process run's pipes and timer (procsvc.c), a probe
 * attempt's socket, program and name lookup (probe.c). Embed it as the record's
 * FIRST member: handles adopted get h->data = the record, so their own
 * callbacks cast h->data to it, and the last release frees the record through
 * the owner's address. Each hold also holds the runtime (rt->handles_open), so
 * that arbor_runtime_close waits for every record to be freed. */
struct arbor__owner {
  arbor_runtime_t *rt;
  unsigned held;                 /* handles not yet closed, requests not yet called back */
};
void arbor__owner_hold(struct arbor__owner *o);
void arbor__owner_release(struct arbor__owner *o);     /* the last one frees the record */
void arbor__owner_adopt(struct arbor__owner *o, uv_handle_t *h);   /* h->data = o; a hold */
void arbor__owner_close(uv_handle_t *h);   /* uv_close unless closing; released when closed */
int arbor__fiber_spawn_kind(arbor_node_t *parent, const arbor_fiber_spec_t *spec,
                            int handshake, arbor_kind_t kind, arbor_node_t **out);

/* procsvc.c: process services, their output, and the child subreaper */
int arbor__proc_spec_new(const arbor_service_spec_t *spec, struct arbor__proc_spec **out);
void arbor__proc_spec_free(struct arbor__proc_spec *ps);
int arbor__process_body(arbor_ctx_t *cx, void *svc_node);  /* an incarnation's body */
void arbor__process_kill(arbor_node_t *svc);     /* stuck: SIGKILL to its group */
int arbor__process_pid(const arbor_node_t *svc); /* the live program's, or 0 */
char *arbor__abs_path(const char *path);         /* against arbor's cwd; NULL: ENOMEM/too long */
const struct arbor__runas *arbor__proc_runas(const struct arbor__proc_spec *ps);
/* runas.c: user, group, groups, umask, rlimits, env_file of a process service
 * (the comment at the top of runas.c). _new: *out NULL when the spec sets none;
 * errors as arbor_service_exec_check, with its line in msg (may be NULL).
 * _argv: arbor-exec's argv for argv, one block to free(), argv's strings
 * borrowed. */
struct arbor__runas;
int arbor__runas_new(const arbor_service_spec_t *spec, struct arbor__runas **out, char *msg,
                     size_t msglen);
void arbor__runas_free(struct arbor__runas *ra);
int arbor__runas_needs_helper(const struct arbor__runas *ra);
const char *arbor__runas_env_file(const struct arbor__runas *ra);
int arbor__runas_argv(const struct arbor__runas *ra, const char *helper, char *const *argv,
                      char ***out);
const char *arbor__exec_helper(const arbor_runtime_t *rt);
/* One run's spawn: argv (through arbor-exec when ra needs it) and env (with
 * ra's env file read now over env, or over arbor's environment when env is
 * NULL). _prepare: errors as arbor__envfile_read, the line in msg. */
struct arbor__exec {
  char **argv;                   /* what uv_spawn runs */
  char **env;                    /* its environment; NULL: arbor's */
  int helper;                    /* 1: argv[0] is arbor-exec */
  char **own_argv, **own_env, **vars;   /* freed by _free */
};
int arbor__exec_prepare(const arbor_runtime_t *rt, const struct arbor__runas *ra,
                        char *const *argv, char *const *env, struct arbor__exec *x, char *msg,
                        size_t msglen);
void arbor__exec_free(struct arbor__exec *x);
/* envfile.c: _read: the file's "NAME=VALUE" strings, NULL-terminated, one block
 * to free(); errors -errno (open, read), ARBOR_EINVAL (syntax, size: msg names
 * the file and line), ARBOR_ENOMEM. _merge: base (NULL: none) with over's
 * variables replacing its own; a new pointer array, strings borrowed. */
int arbor__envfile_read(const char *path, char ***out, char *msg, size_t msglen);
int arbor__env_merge(char *const *base, char *const *over, char ***out);
int arbor__logring_init(struct arbor__logring *r, size_t cap);
void arbor__logring_free(struct arbor__logring *r);
void arbor__logring_write(struct arbor__logring *r, const char *p, size_t n);
/* logfile.c: a process service's log file, written from the thread pool (the
 * comment at the top of logfile.c). _new: ARBOR_ENOMEM; opens nothing yet.
 * _write never blocks or fails (drops and counts). _same: the settings match.
 * _on_error: a line for the owner when writing fails (once) or works again.
 * _retry: a new run; a broken file is tried again. _close: the owner lets go
 * (flushed and freed later). */
int arbor__logfile_new(arbor_runtime_t *rt, const char *path, uint64_t max_bytes,
                       unsigned backups, int timestamps, struct arbor__logfile **out);
int arbor__logfile_same(const struct arbor__logfile *lf, const char *path, uint64_t max_bytes,
                        unsigned backups, int timestamps);
void arbor__logfile_on_error(struct arbor__logfile *lf,
                             void (*cb)(void *arg, const char *line, size_t len), void *arg);
void arbor__logfile_write(struct arbor__logfile *lf, const char *b, size_t n);
void arbor__logfile_retry(struct arbor__logfile *lf);
void arbor__logfile_take_counts(struct arbor__logfile *lf, const struct arbor__logfile *old);
void arbor__logfile_info(const struct arbor__logfile *lf, arbor_log_file_info_t *info);
void arbor__logfile_close(struct arbor__logfile *lf);
int arbor__reaper_start(arbor_runtime_t *rt);    /* idempotent */

/* procstat.c: a program's and its descendants' figures from one read of /proc
 * (arbor_service_usage is built on these; a memory limit can be too). */
struct arbor__pstable;
#define ARBOR__PROCSTAT_NO_FDS 1         /* skip counting fds (a directory read each) */
#define ARBOR__PROCSTAT_FROM_TABLE 2     /* the program's own figures from the table */
int arbor__procstat_scan(struct arbor__pstable **out);
void arbor__procstat_free(struct arbor__pstable *t);
int arbor__procstat_tree(const struct arbor__pstable *t, int pid, int flags,
                         arbor_process_usage_t *out, double *life_percent);
/* One process's /proc/PID/stat: 0, or ARBOR_ENOENT when it is gone. */
struct arbor__psone {
  int ppid, sid;
  uint32_t threads;
  uint64_t rss_bytes;
};
int arbor__procstat_one(int pid, struct arbor__psone *out);
void arbor__reaper_close(arbor_runtime_t *rt);   /* from the runtime's close */

/* memlimit.c: memory limits (the comment at the top of memlimit.c). procsvc.c
 * reserves a place before it spawns a limited program (ARBOR_ENOMEM), watches
 * it once spawned (cannot fail) and unwatches it when it is reaped; a watched
 * program is read every ARBOR_MEMORY_CHECK_MS. Unwatching twice is harmless. */
int arbor__memlimit_reserve(arbor_runtime_t *rt);
void arbor__memlimit_watch(arbor_node_t *svc, int pid, uint64_t max_bytes, uint64_t for_ms);
void arbor__memlimit_unwatch(arbor_node_t *svc);
/* procsvc.c: a spec's limit (both 0 for a NULL spec). */
void arbor__proc_spec_memory(const struct arbor__proc_spec *ps, uint64_t *max_bytes,
                             uint64_t *for_ms);
/* probe.c: a service's health probes (the comment at the top of probe.c).
 * _new validates and copies (ARBOR_EINVAL, ARBOR_ENOMEM); _prepare makes its
 * timer before a run (ARBOR_ENOMEM), so that _start cannot fail; _stop when the
 * run stops or ends; _close when the service FINISHED; _free with the node.
 * _passing: 1 for NULL. service.c's arbor__svc_readiness hears a readiness
 * probe's verdict (err: the reference a NOT_READY event gets, or NULL). */
struct arbor__probe;
int arbor__probe_new(const arbor_health_probe_t *spec, arbor_probe_role_t role,
                     struct arbor__probe **out);
int arbor__probe_prepare(struct arbor__probe *p, arbor_node_t *svc);
void arbor__probe_start(struct arbor__probe *p);
void arbor__probe_stop(struct arbor__probe *p);
void arbor__probe_close(struct arbor__probe *p);
void arbor__probe_free(struct arbor__probe *p);
int arbor__probe_passing(const struct arbor__probe *p);
void arbor__svc_readiness(arbor_node_t *svc, int ready, arbor_error_t *err);

static inline int arbor__is_finished(const arbor_node_t *n) {
  return n->state == ARBOR_STATE_FINISHED;
}

/* overflow.c: "stack overflow in fiber <id> <name>" instead of a bare SIGSEGV.
 * arbor__overflow_install: idempotent; per thread an alternate signal stack, once
 * per process the SIGSEGV/SIGBUS handler (which hands every other fault on to the
 * previous handler or SIG_DFL). arbor__overflow_enter(f): the fiber this thread is
 * about to run (NULL: back on the loop's stack); one thread-local store. */
void arbor__overflow_install(void);
/* fiber.c: where overflow.c's handler sends the CPU when it ends an overflowed
 * fiber: runs on the top of f's dead stack, switches to the loop for good. */
_Noreturn void arbor__overflow_recover(struct arbor_ctx_s *f);
extern __attribute__((tls_model("initial-exec"))) _Thread_local struct arbor_ctx_s
    *volatile arbor__overflow_fiber;
static inline void arbor__overflow_enter(struct arbor_ctx_s *f) { arbor__overflow_fiber = f; }

#endif /* ARBOR_SUPERVISOR_INTERNAL_H */
