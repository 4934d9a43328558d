/* arbor.h - structured-concurrency service supervisor for C on libuv.
 *
 * One runtime per uv_loop_t. Services, groups, tasks and processes form one tree
 * of nodes; every node has a lifecycle state, an outcome and, when it failed, an
 * error chain. Everything here runs on the loop thread: no call is thread-safe.
 *
 * Conventions (as libuv's):
 *  - Every failure is a negative error code (ARBOR_E*); 0 or a count is success.
 *    arbor_strerror() / arbor_err_name() turn codes into text.
 *  - When a function that takes a callback returns an error, the callback will
 *    never be called.
 *  - No callback is called from inside the call that registers it. Start, finish
 *    (and join) and timer callbacks run from the loop. Cancel hooks run
 *    synchronously inside whatever call spreads cancellation to the task:
 *    arbor_node_cancel, a failure in its group (a sibling's arbor_task_fail or
 *    failing start, an inner group finishing FAILED), a failed group of its own
 *    finishing, arbor_runtime_close, arbor_run's signal watcher.
 *  - Node pointers are borrowed: one stays valid until the node's finish callback
 *    has returned (or, without one, until it reaches FINISHED), for as long as the
 *    runtime retains it after that, and for as long as the caller holds a
 *    reference (arbor_node_ref). Ids never dangle: look a node up again by id.
 *  - uv.h needs POSIX types: compile with -std=gnu11, or define _GNU_SOURCE (or
 *    _POSIX_C_SOURCE=200809L) before including this header under -std=c11.
 *
 * The full reference is docs/api.md.
 */
#ifndef ARBOR_H
#define ARBOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "arbor/names.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ARBOR_EXTERN __attribute__((visibility("default")))
#define ARBOR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ARBOR_EXTERN
#define ARBOR_PRINTF(f, a)
#endif

#define ARBOR_VERSION_MAJOR 0
#define ARBOR_VERSION_MINOR 1
#define ARBOR_VERSION_PATCH 0

/* ------------------------------------------------------------------ enums */

typedef enum {
#define XX(name, value, msg) ARBOR_##name = value,
  ARBOR_ERRNO_MAP(XX)
#undef XX
} arbor_errno_t;

typedef enum {
#define XX(name, text) ARBOR_KIND_##name,
  ARBOR_KIND_MAP(XX)
#undef XX
  ARBOR_KIND_COUNT
} arbor_kind_t;

typedef enum {
#define XX(name, text) ARBOR_STATE_##name,
  ARBOR_STATE_MAP(XX)
#undef XX
  ARBOR_STATE_COUNT
} arbor_state_t;

typedef enum {
#define XX(name, text) ARBOR_OUTCOME_##name,
  ARBOR_OUTCOME_MAP(XX)
#undef XX
  ARBOR_OUTCOME_COUNT
} arbor_outcome_t;

typedef enum {
#define XX(name, text) ARBOR_EVENT_##name,
  ARBOR_EVENT_MAP(XX)
#undef XX
  ARBOR_EVENT_COUNT
} arbor_event_type_t;

/* Names of codes and enum values. Never NULL. arbor_err_name returns the name
 * without its prefix, as uv_err_name does: "EINVAL" for ARBOR_EINVAL. Besides
 * arbor's codes, both name libuv's own codes (UV_EAI_*, UV_EOF, UV_ECHARSET,
 * UV_EFTYPE, through uv_strerror / uv_err_name) and the common negative errno
 * codes listed in supervisor/names.c (-ECONNREFUSED: strerror's text). A code that
 * equals an ARBOR_E* value gets arbor's text (-ENOENT: "no such file, directory or
 * entry"). Any other code, 0 and positive ones included, gives "unknown error" /
 * "UNKNOWN"; an unknown enum value gives "unknown". */
ARBOR_EXTERN const char *arbor_strerror(int code);
ARBOR_EXTERN const char *arbor_err_name(int code);
ARBOR_EXTERN const char *arbor_kind_name(arbor_kind_t kind);
ARBOR_EXTERN const char *arbor_state_name(arbor_state_t state);
ARBOR_EXTERN const char *arbor_outcome_name(arbor_outcome_t outcome);
ARBOR_EXTERN const char *arbor_event_type_name(arbor_event_type_t type);

/* ------------------------------------------------------------ opaque types */

typedef struct arbor_runtime_s arbor_runtime_t;
typedef struct arbor_node_s arbor_node_t;
typedef struct arbor_error_s arbor_error_t;

/* ------------------------------------------------------------------ errors
 *
 * An error is immutable and reference-counted. arbor_error_new() and friends
 * return a new reference (NULL only when out of memory); the caller owns it and
 * gives it away with arbor_error_unref() or with a call documented to take it.
 */

ARBOR_EXTERN arbor_error_t *arbor_error_new_at(int code, arbor_error_t *cause, const char *file,
                                               int line, const char *func, const char *fmt, ...)
    ARBOR_PRINTF(6, 7);
/* arbor_error_new(code, fmt, ...): a new error with the caller's location. */
#define arbor_error_new(code, ...)                                                     \
  arbor_error_new_at((code), NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
/* arbor_error_wrap(cause, code, fmt, ...): a new error whose cause is `cause`.
 * Takes the caller's reference to cause (even when it fails and returns NULL). */
#define arbor_error_wrap(cause, code, ...)                                             \
  arbor_error_new_at((code), (cause), __FILE__, __LINE__, __func__, __VA_ARGS__)

ARBOR_EXTERN arbor_error_t *arbor_error_ref(arbor_error_t *err);   /* returns err */
ARBOR_EXTERN void arbor_error_unref(arbor_error_t *err);           /* NULL is fine */

ARBOR_EXTERN int arbor_error_code(const arbor_error_t *err);
ARBOR_EXTERN const char *arbor_error_message(const arbor_error_t *err);
ARBOR_EXTERN const char *arbor_error_file(const arbor_error_t *err);
ARBOR_EXTERN int arbor_error_line(const arbor_error_t *err);
ARBOR_EXTERN const char *arbor_error_function(const arbor_error_t *err);
ARBOR_EXTERN uint64_t arbor_error_time_ns(const arbor_error_t *err);  /* monotonic */
ARBOR_EXTERN uint64_t arbor_error_node_id(const arbor_error_t *err);  /* 0: none */
ARBOR_EXTERN const arbor_error_t *arbor_error_cause(const arbor_error_t *err);
/* An error group (code ARBOR_EGROUP) holds its children's errors in the order they
 * happened. Other errors have none. */
ARBOR_EXTERN size_t arbor_error_child_count(const arbor_error_t *err);
ARBOR_EXTERN const arbor_error_t *arbor_error_child(const arbor_error_t *err, size_t i);

/* Prints the chain as text, outermost first, each cause indented under
 * "caused by:", each child of a group under "child i of n:". Like snprintf:
 * returns the length the whole text needs (excluding NUL) and writes at most
 * size-1 bytes plus a NUL. Returns ARBOR_EINVAL for a NULL err. */
ARBOR_EXTERN int arbor_error_format(const arbor_error_t *err, char *buf, size_t size);
ARBOR_EXTERN int arbor_error_print(const arbor_error_t *err, FILE *out);

/* ----------------------------------------------------------------- runtime */

typedef struct {
  size_t event_capacity;   /* events kept in the ring; 0: 16384. Rounded up to 2^k. */
  size_t retain_finished;  /* FINISHED nodes kept for observers; 0: 1024 */
  int no_signals;          /* 1: arbor_run() leaves SIGINT/SIGTERM alone */
  size_t fiber_stack_size; /* a fiber's stack unless its spec says; 0: 64 KiB */
  uint64_t shutdown_timeout_ms; /* arbor_shutdown's grace period; 0: 10000 */
  size_t fiber_stack_pool; /* free stacks of that size kept for reuse at least (they
                              come in slabs of 64, unmapped whole beyond it); 0: 64 */
  int no_events;           /* 1: record no events (the ring stays empty: no SSE, no
                              span events); counters and the tree are kept. For
                              measuring what observation costs (bench/). */
  const char *exec_helper; /* the arbor-exec program that runs a process service's
                              program as another user, with a umask or rlimits;
                              copied; NULL: the installed one
                              ($(PREFIX)/libexec/arbor/arbor-exec, fixed at build) */
  int memory_scan;         /* 1: memory limits are read from a scan of all of /proc
                              each tick, as on a kernel without children lists,
                              instead of following each limited program's tree.
                              For measuring what the fallback costs (bench/). */
} arbor_runtime_opts_t;

typedef void (*arbor_runtime_close_cb)(arbor_runtime_t *rt, void *arg);

/* Creates a runtime on `loop` (which the caller keeps running). opts may be NULL.
 * Errors: ARBOR_EINVAL (NULL rt or loop), ARBOR_ENOMEM. */
ARBOR_EXTERN int arbor_runtime_new(arbor_runtime_t **rt, uv_loop_t *loop,
                                   const arbor_runtime_opts_t *opts);
ARBOR_EXTERN uv_loop_t *arbor_runtime_loop(const arbor_runtime_t *rt);
/* The root node: parent of every top-level node. It lives as long as the runtime. */
ARBOR_EXTERN arbor_node_t *arbor_root(arbor_runtime_t *rt);

/* Closes the runtime. Within the call every top-level node is cancelled, newest
 * first (cancel hooks run now), and new nodes are refused (ARBOR_ECLOSING). From the loop, which
 * the caller keeps running: once every node is FINISHED, arbor closes its handles,
 * frees every node (references included) and the event ring, then calls cb(rt, arg)
 * (cb may be NULL), inside which only arbor_runtime_loop(rt) is still valid, then
 * frees rt. Nodes that do not finish within shutdown_timeout_ms are given up
 * on as by arbor_shutdown (rule 8): marked stuck, process groups killed, task
 * bodies ended FAILED with ARBOR_EDEADLK.
 * Errors (cb never called): ARBOR_EINVAL (NULL rt), ARBOR_EALREADY (already
 * closing). */
ARBOR_EXTERN int arbor_runtime_close(arbor_runtime_t *rt, arbor_runtime_close_cb cb, void *arg);

/* Convenience for programs that own their loop: runs the loop until every node
 * under the root has FINISHED (unless no_signals, the first SIGINT/SIGTERM is
 * arbor_shutdown(rt, 0), a second one arbor_shutdown(rt, 1); SIGPIPE is then ignored too, so a write to a reset peer returns
 * ARBOR_EPIPE instead of killing the process). Then closes the runtime and runs the loop until it is gone: rt
 * is freed when this returns. Must not be called from a loop callback. A callback
 * may close the runtime while it runs (arbor_runtime_close): arbor_run then returns
 * once the close is complete. A uv_stop from elsewhere ends the run the same way.
 * Shutdown gives up rather than hang (rule 8's shutdown half): when the loop has
 * nothing left in it while the close still waits for a task whose body never
 * ended (say, its cancel hook returned without ending it), every such task ends
 * FAILED with an ARBOR_EDEADLK error "task NAME abandoned in STATE: ..." (unless
 * it had failed already) and the close completes.
 * Returns ARBOR_EDEADLK when uv_run returned with nothing left in the loop while
 * nodes were unfinished (nothing could wake them; the close cancels them) or when
 * shutdown gave up on a node (its grace period ran out, or it was immediate); else, when a top-level node failed, the first top-level failure's code if
 * it is negative (ARBOR_EGROUP for a group), ARBOR_EFAILED if it is >= 0; else 0.
 * Errors, with rt NOT freed: ARBOR_EINVAL (NULL), ARBOR_ECLOSING (already closing;
 * that close frees rt). */
ARBOR_EXTERN int arbor_run(arbor_runtime_t *rt);

/* ------------------------------------------------------------------- nodes */

/* A node's scalar fields at one point in time. */
typedef struct {
  uint64_t id;
  uint64_t parent_id;            /* 0 for the root */
  arbor_kind_t kind;
  arbor_state_t state;
  arbor_outcome_t outcome;       /* NONE until FINISHED */
  int cancel_requested;          /* 1 once cancellation reached the node */
  uint64_t created_ns;           /* monotonic (uv_hrtime clock) */
  uint64_t started_ns;           /* 0 until it left CREATED */
  uint64_t stop_requested_ns;    /* 0 until cancelled or failed */
  uint64_t finished_ns;          /* 0 until FINISHED */
  int64_t created_wall_ns;       /* wall clock (Unix epoch, ns) at creation */
  uint32_t children;             /* children in the tree now, retained ones included */
  uint32_t live_children;        /* children not yet FINISHED */
  uint64_t children_total;       /* children ever created */
  uint32_t restarts;             /* restarts of a service or supervisor (else 0) */
  int stuck;                     /* rule 8: STOPPING past its shutdown timeout */
  uint32_t attributes;           /* number of user attributes */
} arbor_node_info_t;

ARBOR_EXTERN uint64_t arbor_node_id(const arbor_node_t *node);
ARBOR_EXTERN const char *arbor_node_name(const arbor_node_t *node);
ARBOR_EXTERN arbor_kind_t arbor_node_kind(const arbor_node_t *node);
ARBOR_EXTERN arbor_state_t arbor_node_state(const arbor_node_t *node);
ARBOR_EXTERN arbor_outcome_t arbor_node_outcome(const arbor_node_t *node);
ARBOR_EXTERN arbor_node_t *arbor_node_parent(const arbor_node_t *node);  /* NULL: root */
ARBOR_EXTERN arbor_runtime_t *arbor_node_runtime(const arbor_node_t *node);
/* The node's error chain (borrowed), or NULL unless its outcome is, or will be,
 * FAILED. A task's is set when it fails; a group's only when it finishes. */
ARBOR_EXTERN const arbor_error_t *arbor_node_error(const arbor_node_t *node);
ARBOR_EXTERN int arbor_node_is_finished(const arbor_node_t *node);
/* 1 once cancellation reached the node (also when it then failed). A group that
 * winds down because a child failed is not cancelled: 0. */
ARBOR_EXTERN int arbor_node_is_cancelled(const arbor_node_t *node);
/* When the node entered each state, indexed by arbor_state_t (monotonic ns; 0: it
 * never did, as a node cancelled before it started never STARTED). times[CREATED]
 * is info.created_ns and times[FINISHED] info.finished_ns. Errors: ARBOR_EINVAL. */
ARBOR_EXTERN int arbor_node_state_times(const arbor_node_t *node,
                                        uint64_t times[ARBOR_STATE_COUNT]);
ARBOR_EXTERN void arbor_node_info(const arbor_node_t *node, arbor_node_info_t *info);

/* Keeps a node's memory valid after it FINISHED, until the runtime closes.
 * unref of the last reference of an evicted FINISHED node frees it, at once. */
ARBOR_EXTERN arbor_node_t *arbor_node_ref(arbor_node_t *node);
ARBOR_EXTERN void arbor_node_unref(arbor_node_t *node);

/* Cancels the node and its whole subtree (rule 3). A CREATED node finishes
 * CANCELLED without running; a running task gets its cancel hook, inside this
 * call; a group ends its body and finishes once its children have.
 * Returns 0, also when cancellation was already requested (harmless),
 * ARBOR_EFINISHED for a FINISHED node (nothing changes), ARBOR_EKIND for the root
 * (close the runtime instead), ARBOR_EINVAL for NULL. */
ARBOR_EXTERN int arbor_node_cancel(arbor_node_t *node);

/* User attributes: small key/value strings, copied. Setting an existing key
 * replaces its value. Errors: ARBOR_EINVAL (NULL, empty key, key over 63 or value
 * over 255 bytes), ARBOR_ENOSPC when the node already has 16 attributes,
 * ARBOR_ENOMEM. */
#define ARBOR_ATTR_KEY_MAX 63
#define ARBOR_ATTR_VALUE_MAX 255
#define ARBOR_ATTRS_MAX 16
ARBOR_EXTERN int arbor_node_attr_set(arbor_node_t *node, const char *key, const char *value);
ARBOR_EXTERN const char *arbor_node_attr_get(const arbor_node_t *node, const char *key);
/* The i-th attribute in insertion order; ARBOR_ENOENT past the end. */
ARBOR_EXTERN int arbor_node_attr_at(const arbor_node_t *node, size_t i, const char **key,
                                    const char **value);

/* ------------------------------------------------------------ callback tasks */

/* start: the task's body, called once from the loop. Return 0 and later call
 * arbor_task_done/fail, or return a negative code to fail at once (an error with
 * that code is recorded). */
typedef int (*arbor_task_start_cb)(arbor_node_t *task, void *arg);
/* cancel: called at most once, synchronously inside the call that spreads
 * cancellation, when it reaches a STARTING or STARTED task (now STOPPING). It must
 * end the body eventually (arbor_task_done, or arbor_task_fail: ending with
 * ARBOR_ECANCELED counts as cancelled, not failed). NULL: the default hook, which
 * ends the body at once; its owned handles are then closed. */
typedef void (*arbor_task_cancel_cb)(arbor_node_t *task, void *arg);
/* finish: called exactly once, from the loop, after the node is FINISHED, whatever
 * the outcome, even when it was cancelled before it ran. By then its parent may be
 * FINISHED too (a parent can finish before its children's finish callbacks run).
 * The place to free arg. */
typedef void (*arbor_finish_cb)(arbor_node_t *node, void *arg);

typedef struct {
  const char *name;              /* copied; NULL: "task" */
  arbor_task_start_cb start;     /* required */
  arbor_task_cancel_cb cancel;   /* optional */
  arbor_finish_cb finish;        /* optional */
  void *arg;                     /* passed to the callbacks */
  size_t data_size;              /* bytes of zeroed storage kept with the node,
                                    max-aligned: arbor_task_data() */
  int handshake;                 /* 1: stay STARTING until arbor_task_started() */
} arbor_task_spec_t;

/* Spawns a callback task under parent, which must be the root or a group.
 * The task is CREATED now and its start runs from the loop, soon.
 * *task (may be NULL) receives the node.
 * Errors: ARBOR_EINVAL (NULL, no start), ARBOR_EKIND (parent cannot have task
 * children), ARBOR_EFINISHED (parent FINISHED), ARBOR_ECANCELED (parent cancelled,
 * or a group failing), ARBOR_ECLOSING (runtime closing), ARBOR_ENOMEM. Nothing
 * changes on error. */
ARBOR_EXTERN int arbor_task_spawn(arbor_node_t *parent, const arbor_task_spec_t *spec,
                                  arbor_node_t **task);

/* The body has returned successfully. The task finishes once its owned handles are
 * closed and its children have finished; its outcome is OK, or CANCELLED when
 * cancellation was requested (FAILED if a group it owns fails). Errors:
 * ARBOR_EINVAL, ARBOR_EKIND, ARBOR_ESTATE (start not run yet, or body ended). */
ARBOR_EXTERN int arbor_task_done(arbor_node_t *task);
/* The body failed with err; takes the caller's reference (also on error). The task's
 * children are cancelled and its parent learns of the failure now (rule 2). A NULL
 * err means making the error ran out of memory (as arbor_task_fail does then): the
 * task still fails, with a preallocated ENOMEM error, so a failure is never lost.
 * Exception (rule 2, cancellation is not failure): when cancellation had reached
 * the task and err's code is ARBOR_ECANCELED, err is dropped and the body ends as
 * with arbor_task_done: outcome CANCELLED, nothing recorded against the parent. The
 * same holds for a start that returns ARBOR_ECANCELED after being cancelled.
 * Errors: ARBOR_EINVAL (NULL task), ARBOR_EKIND, ARBOR_ESTATE (start not run yet, or
 * body ended). */
ARBOR_EXTERN int arbor_task_fail_error(arbor_node_t *task, arbor_error_t *err);
/* arbor_task_fail(task, code, fmt, ...): fail with a new error at the caller's
 * location. */
#define arbor_task_fail(task, code, ...)                                               \
  arbor_task_fail_error((task), arbor_error_new((code), __VA_ARGS__))
/* Readiness handshake: a task spawned with .handshake = 1 is STARTING until it
 * calls this. A body that ends before calling it fails. Errors: ARBOR_EKIND,
 * ARBOR_ESTATE (not STARTING). */
ARBOR_EXTERN int arbor_task_started(arbor_node_t *task);

/* Owned handles: closed by arbor when the body ends (done, fail or the default
 * cancel hook); the task is FINISHED only after every close callback ran. The
 * handle must be initialised and must not be closed by the caller while owned;
 * arbor sets its ->data when it closes it. Errors: ARBOR_EINVAL (NULL task or
 * handle), ARBOR_EKIND, ARBOR_ESTATE (start not run yet, or body ended),
 * ARBOR_EALREADY (owned already), ARBOR_ENOSPC (65535 owned), ARBOR_ENOMEM. */
ARBOR_EXTERN int arbor_task_own(arbor_node_t *task, uv_handle_t *handle);
/* Gives ownership back (any state). Errors: ARBOR_EINVAL, ARBOR_EKIND, ARBOR_ENOENT
 * (not owned, or already being closed by arbor). */
ARBOR_EXTERN int arbor_task_disown(arbor_node_t *task, uv_handle_t *handle);

/* A timer for a running task, kept by the runtime: cb(task, arg) runs from the loop
 * `timeout` ms from now (loop time, as uv_timer_start), unless the body has ended
 * by then (ending the body drops it). A task has at most one: arming it again
 * replaces the pending one. Timers fire in deadline order, equal deadlines in
 * arming order; one armed from a timer callback, even with timeout 0, waits for a
 * later loop pass. It may be armed while STOPPING (cancel hook run, body not
 * ended). One uv_timer_t of the runtime serves a heap of 24-byte entries, so it
 * suits very wide fan-out; a task that needs more timers owns uv_timer_t handles.
 * A pending timer keeps the loop alive. Errors: ARBOR_EINVAL (NULL task or cb),
 * ARBOR_EKIND, ARBOR_ESTATE (start not run yet, or body ended), ARBOR_ENOMEM
 * (nothing changed). */
typedef void (*arbor_task_timer_cb)(arbor_node_t *task, void *arg);
ARBOR_EXTERN int arbor_task_after(arbor_node_t *task, uint64_t timeout, arbor_task_timer_cb cb);
/* Disarms the pending arbor_task_after. Errors: ARBOR_EINVAL, ARBOR_EKIND,
 * ARBOR_ENOENT (none pending). */
ARBOR_EXTERN int arbor_task_after_stop(arbor_node_t *task);

ARBOR_EXTERN void *arbor_task_data(arbor_node_t *task);  /* NULL without data_size */
ARBOR_EXTERN void *arbor_task_arg(const arbor_node_t *task);

/* ------------------------------------------------------------ fiber tasks
 *
 * A fiber task's body is plain sequential code on a stack of its own (mmap'd, a
 * guard page below, taken when it first runs, pooled when it ends). It blocks only
 * through arbor calls, the checkpoints, which switch back to the loop. It is a task
 * node like any other: same lifecycle, events, failure and cancellation rules. It
 * ends by returning: 0 (OK, or CANCELLED if it was cancelled), or a negative code,
 * which fails it (ARBOR_ECANCELED after a cancel counts as cancelled).
 *
 * Rule 4: once cancellation reached the fiber, every checkpoint returns
 * ARBOR_ECANCELED at once, and keeps doing so. A checkpoint called from anywhere
 * but its own fiber returns ARBOR_ESTATE. The callback-task calls that end a body
 * (arbor_task_done/fail), arbor_task_started (use arbor_fiber_started) and
 * arbor_task_after/_data refuse fibers (ARBOR_EKIND).
 */
typedef struct arbor_ctx_s arbor_ctx_t;
typedef int (*arbor_fiber_fn)(arbor_ctx_t *cx, void *arg);

typedef struct {
  const char *name;              /* copied; NULL: "fiber" */
  arbor_fiber_fn fn;             /* required: the body */
  void *arg;                     /* passed to fn and finish */
  arbor_finish_cb finish;        /* optional, as for callback tasks */
  size_t stack_size;             /* usable bytes, rounded up to pages; 0: the runtime's */
} arbor_fiber_spec_t;

/* Spawns a fiber task under parent (the root or a group); it is CREATED now and
 * first runs from the loop. A stack it cannot get (out of memory, or the process's
 * map count exhausted) fails the task with ARBOR_ENOMEM. Errors: as
 * arbor_task_spawn (ARBOR_EINVAL without fn). */
ARBOR_EXTERN int arbor_fiber_spawn(arbor_node_t *parent, const arbor_fiber_spec_t *spec,
                                   arbor_node_t **fiber);
/* Fails the fiber with an error chain of its own: keeps err (takes the caller's
 * reference) as the error the fiber fails with and returns its code, so a body
 * ends with `return arbor_fiber_fail_error(cx, err);`. A later call replaces the
 * kept error. NULL err (making it ran out of memory) keeps nothing and returns
 * ARBOR_ENOMEM. Returning 0 afterwards drops it. */
ARBOR_EXTERN int arbor_fiber_fail_error(arbor_ctx_t *cx, arbor_error_t *err);
/* arbor_fiber_fail(cx, code, fmt, ...): the same with a new error at the caller's
 * location. */
#define arbor_fiber_fail(cx, code, ...)                                                \
  arbor_fiber_fail_error((cx), arbor_error_new((code), __VA_ARGS__))
/* The fiber's node (borrowed, valid while the fiber runs). */
ARBOR_EXTERN arbor_node_t *arbor_ctx_node(arbor_ctx_t *cx);
/* Readiness handshake, like anyio's tg.start(): from a parent fiber, spawns a fiber
 * under `parent` (the root or a group) and waits until it calls
 * arbor_fiber_started(); the child is STARTING until then. Returns 0 and the
 * child's value in *value (may be NULL). When the child ends before reporting
 * ready, returns its failure's code (its error also propagates to its group as
 * usual), ARBOR_ECANCELED if it was cancelled, or ARBOR_ESTATE if it returned
 * without calling arbor_fiber_started (which fails it). If the waiting fiber is
 * cancelled, the child is cancelled too and ARBOR_ECANCELED returned. *out (may be
 * NULL) receives the child's node either way (NULL if it already finished and left
 * retention). A checkpoint. */
#define arbor_fiber_start(cx, parent, spec, value, out)                                \
  arbor_fiber_start_at((cx), (parent), (spec), (value), (out), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_fiber_start_at(arbor_ctx_t *cx, arbor_node_t *parent,
                                      const arbor_fiber_spec_t *spec, void **value,
                                      arbor_node_t **out, const char *file, int line);
/* In a fiber started with arbor_fiber_start: reports ready, handing value to the
 * waiting parent. Errors: ARBOR_ESTATE (not STARTING, or off its own fiber). */
ARBOR_EXTERN int arbor_fiber_started(arbor_ctx_t *cx, void *value);

/* Checkpoints are macros that pass the caller's file:line, so the snapshot can
 * show where each fiber waits. */
/* Checkpoint: waits until `node` (any node, not cx's own) is FINISHED; returns 0
 * (read its outcome), or ARBOR_EDEADLK for cx's own node, ARBOR_EINVAL (NULL),
 * ARBOR_ENOMEM, or as every checkpoint ARBOR_ESTATE / ARBOR_ECANCELED. */
#define arbor_wait(cx, node) arbor_wait_at((cx), (node), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_wait_at(arbor_ctx_t *cx, arbor_node_t *node, const char *file, int line);
/* Checkpoint: lets every other ready fiber and the loop run once, then returns 0. */
#define arbor_yield(cx) arbor_yield_at((cx), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_yield_at(arbor_ctx_t *cx, const char *file, int line);
/* Checkpoint: returns 0 after `ms` milliseconds of loop time. */
#define arbor_sleep(cx, ms) arbor_sleep_at((cx), (ms), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_sleep_at(arbor_ctx_t *cx, uint64_t ms, const char *file, int line);

/* ----------------------------------------------------------- cancel scopes
 *
 * A cancel scope is a region of a fiber's body: entered and exited in LIFO order on
 * that fiber, usually a variable on its stack. Cancelling a scope (by hand, or when
 * its deadline passes) makes every checkpoint inside it return ARBOR_ECANCELED
 * until the scope is exited. Two deadline modes (rule 5):
 *  - move-on (anyio move_on_after): the scope ends quietly; arbor_scope_exit
 *    returns 0 and arbor_scope_cancelled_caught() says the scope was cut short;
 *  - fail (anyio fail_after): arbor_scope_exit returns ARBOR_ETIMEDOUT; a fiber
 *    that returns it fails with a timeout error naming the scope's file:line.
 * The effective deadline is the earliest of all enclosing scopes' (up to the first
 * shielded one). A shielded scope (rule 6) is not reached by cancellation from
 * outside it (its task's, or an outer scope's), but its own deadline applies.
 * Every deadline expiry is an ARBOR_EVENT_DEADLINE event of the fiber's node.
 * Times are loop time in ms (uv_now): see arbor_now_ms.
 */
typedef struct arbor_scope_s arbor_scope_t;
struct arbor_scope_s {           /* fields are private; the caller owns the memory */
  arbor_scope_t *parent_;
  arbor_ctx_t *cx_;
  arbor_runtime_t *rt_;
  uint64_t id_;
  uint64_t deadline_;
  const char *file_;
  int line_;
  unsigned char shield_, fail_, cancelled_, expired_;
};

typedef struct {
  int shield;                    /* 1: outside cancellation does not reach inside */
  uint64_t move_on_after_ms;     /* at most one of these four; 0 = unset */
  uint64_t fail_after_ms;
  uint64_t move_on_at_ms;        /* absolute, in arbor_now_ms() time */
  uint64_t fail_at_ms;
} arbor_scope_opts_t;

/* Opens scope as cx's innermost (opts may be NULL: no deadline, no shield). Not a
 * checkpoint. A relative deadline too large for the clock means none. Errors:
 * ARBOR_EINVAL (NULL, or two deadlines), ARBOR_ESTATE (not on cx's own fiber),
 * ARBOR_EALREADY (this scope is open already). */
/* Variadic so that a compound literal with several fields passes as one argument:
 * arbor_scope_enter(cx, &s, &(arbor_scope_opts_t){.shield = 1, .fail_after_ms = 10}). */
#define arbor_scope_enter(cx, scope, ...)                                              \
  arbor_scope_enter_at((cx), (scope), (__VA_ARGS__), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_scope_enter_at(arbor_ctx_t *cx, arbor_scope_t *scope,
                                      const arbor_scope_opts_t *opts, const char *file,
                                      int line);
/* Closes cx's innermost scope, which must be `scope` (else ARBOR_ESTATE and nothing
 * changes). Returns 0, or ARBOR_ETIMEDOUT when a fail-mode deadline expired. */
ARBOR_EXTERN int arbor_scope_exit(arbor_ctx_t *cx, arbor_scope_t *scope);
/* Cancels the scope (from anywhere on the loop thread, while it is open): a fiber
 * parked inside it wakes with ARBOR_ECANCELED. Twice is harmless. Errors:
 * ARBOR_EINVAL (NULL), ARBOR_ESTATE (not open). */
ARBOR_EXTERN int arbor_scope_cancel(arbor_scope_t *scope);
/* 1 when the scope was cancelled (by hand or by its deadline). */
ARBOR_EXTERN int arbor_scope_cancelled_caught(const arbor_scope_t *scope);
/* The earliest deadline that applies to cx now (rule 5), UINT64_MAX for none. */
ARBOR_EXTERN uint64_t arbor_current_effective_deadline(arbor_ctx_t *cx);
/* The loop's time in ms (uv_now), the clock of deadlines. */
ARBOR_EXTERN uint64_t arbor_now_ms(arbor_runtime_t *rt);

/* ---- channels ----------------------------------------------------------
 *
 * A channel passes fixed-size items between the fibers of one runtime, like anyio's
 * memory object streams: bounded (capacity 0 is a rendezvous: a send completes only
 * when a receiver takes the item), FIFO, each item to exactly one receiver, FIFO
 * among parked senders and among parked receivers. Items are copied in and out
 * (item_size bytes), so a sender may pass the address of a local variable.
 *
 * It has two sides, each reached through ends: a channel starts with one send end
 * and one receive end; arbor_channel_clone makes more, and a side is closed once
 * every end of it is closed. Ends are caller-owned structs (fields private, like
 * arbor_scope_t): clone an end, never copy one. The channel is freed by the close of
 * its last end, wherever that happens; it does not need its runtime for that, and
 * the runtime does not free it: close every end you opened.
 *
 * Closing wakes every waiter, each with its own code:
 *  - ARBOR_EOF, end of stream: a receive on a channel whose send side is closed and
 *    whose buffer is drained (items buffered or held by parked senders are still
 *    received first). Fibers parked in receive when the send side closes get it.
 *  - ARBOR_EPIPE, broken: a send on a channel whose receive side is closed. Fibers
 *    parked in send when the receive side closes get it; items still buffered are
 *    dropped. (Fibers parked in receive then, on ends closed under them, get
 *    ARBOR_EOF.)
 * Rule 4: send and receive are checkpoints. Cancelled while parked, they return
 * ARBOR_ECANCELED and the item is neither sent nor lost; once a parked send's item
 * was taken, or a parked receive was given one, the call returns 0 even if
 * cancellation comes before the fiber runs again. An operation that can complete
 * at once does so without switching (after the cancellation check).
 *
 * Errors common to every call: ARBOR_EINVAL (a NULL argument, an item NULL while
 * item_size > 0, the wrong end: send on a receive end or the reverse),
 * ARBOR_ESTATE (an end that is closed or was never opened).
 */
struct arbor_channel_s;          /* the channel itself: private, freed with its last end */
typedef struct {                 /* fields are private; the caller owns the memory */
  struct arbor_channel_s *channel_;   /* NULL: closed */
  int send_;                          /* 1: a send end; 0: a receive end */
} arbor_channel_end_t;

typedef struct {                 /* anyio's MemoryObjectStreamStatistics */
  size_t buffer_used;            /* items in the buffer */
  size_t capacity;               /* the buffer's capacity; 0: rendezvous */
  size_t item_size;
  size_t open_send_ends;         /* send ends not closed, clones included */
  size_t open_recv_ends;
  size_t waiting_senders;        /* fibers parked in arbor_channel_send */
  size_t waiting_receivers;      /* fibers parked in arbor_channel_recv */
} arbor_channel_stats_t;

/* Creates a channel of `capacity` items of item_size bytes (0 is allowed: items
 * then carry nothing and may be NULL) and opens its two ends into *send_end and
 * *recv_end, which the caller owns and must close. Not a checkpoint: callable
 * anywhere on the loop thread. Errors: ARBOR_EINVAL (NULL rt or end, the same
 * struct for both ends), ARBOR_ENOMEM (nothing opened). */
ARBOR_EXTERN int arbor_channel_new(arbor_runtime_t *rt, size_t capacity, size_t item_size,
                                   arbor_channel_end_t *send_end,
                                   arbor_channel_end_t *recv_end);
/* Opens *clone as one more end of end's side and channel. Errors: the common ones
 * (clone == end is ARBOR_EINVAL). */
ARBOR_EXTERN int arbor_channel_clone(const arbor_channel_end_t *end, arbor_channel_end_t *clone);
/* Closes this end; its side closes with its last end (see above for who wakes with
 * what), and the channel is freed with the last end of both. Fibers parked on this
 * very end stay parked unless its side closed. Never blocks; wakes fibers for the
 * loop to resume. Errors: ARBOR_EINVAL (NULL), ARBOR_EALREADY (closed already, or
 * never opened). */
ARBOR_EXTERN int arbor_channel_close(arbor_channel_end_t *end);
/* 1 for a send end, 0 for a receive end. Errors: ARBOR_EINVAL, ARBOR_ESTATE. */
ARBOR_EXTERN int arbor_channel_end_is_send(const arbor_channel_end_t *end);
/* Fills *stats (either end will do). Errors: the common ones. */
ARBOR_EXTERN int arbor_channel_stats(const arbor_channel_end_t *end,
                                     arbor_channel_stats_t *stats);

/* Checkpoint: sends the item at `item` (copied) through a send end, parking the
 * fiber while the buffer is full (for capacity 0, until a receiver takes it).
 * Returns 0 once the item is buffered or taken. Errors: the common ones,
 * ARBOR_ESTATE (not on cx's own fiber), ARBOR_EINVAL (a fiber of another runtime),
 * ARBOR_ECANCELED (rule 4: not sent), ARBOR_EPIPE (broken: not sent). The item is a
 * variadic argument so that a compound literal with commas passes whole:
 * arbor_channel_send(cx, &tx, &(struct msg){.a = 1, .b = 2}). */
#define arbor_channel_send(cx, end, ...)                                               \
  arbor_channel_send_at((cx), (end), (__VA_ARGS__), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_channel_send_at(arbor_ctx_t *cx, const arbor_channel_end_t *end,
                                       const void *item, const char *file, int line);
/* Checkpoint: receives the oldest item into `item` (item_size bytes) through a
 * receive end, parking the fiber while there is none. Returns 0 with the item.
 * Errors: as arbor_channel_send, with ARBOR_EOF (end of stream) instead of ARBOR_EPIPE;
 * *item is untouched on error. */
#define arbor_channel_recv(cx, end, item)                                              \
  arbor_channel_recv_at((cx), (end), (item), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_channel_recv_at(arbor_ctx_t *cx, const arbor_channel_end_t *end,
                                       void *item, const char *file, int line);
/* Non-blocking send, from anywhere on the loop thread (a callback task, a libuv
 * callback, a fiber): not a checkpoint, no cancellation check. Returns 0 (buffered,
 * or handed to a parked receiver, which wakes), ARBOR_EAGAIN (it would block: nothing
 * changed), ARBOR_EPIPE, or a common error. */
ARBOR_EXTERN int arbor_channel_try_send(const arbor_channel_end_t *end, const void *item);
/* Non-blocking receive, as arbor_channel_try_send: 0 with the item, ARBOR_EAGAIN (none
 * now), ARBOR_EOF, or a common error. */
ARBOR_EXTERN int arbor_channel_try_recv(const arbor_channel_end_t *end, void *item);

/* ------------------------------------------------------------------ groups */

typedef struct {
  const char *name;              /* copied; NULL: "group" */
} arbor_group_opts_t;

/* Creates a group (a nursery) under parent: the root, a group or a task. A task
 * takes children only while its body runs. The group is STARTED at once and takes
 * children until it is FINISHED, cancelled, or failing (a child failed). opts may
 * be NULL. Errors: as arbor_task_spawn (ARBOR_EKIND only for other kinds), plus
 * ARBOR_ESTATE when parent is a task that is CREATED or whose body ended. */
ARBOR_EXTERN int arbor_group_new(arbor_node_t *parent, const arbor_group_opts_t *opts,
                                 arbor_node_t **group);

/* Ends the group's own body: from now on it finishes as soon as every child has
 * (rule 1). cb (may be NULL) is called from the loop once the group is FINISHED; its
 * outcome is OK, FAILED (arbor_node_error holds the error group: every
 * non-cancellation child error in the order they happened, rule 2) or CANCELLED.
 * A cancelled or failing group ends its body by itself; join still registers cb.
 * A failing group cancels its other children and refuses new ones with
 * ARBOR_ECANCELED, though arbor_node_is_cancelled(group) is 0. Its parent learns of
 * the failure when the group finishes (as in Trio): an outer group then fails and
 * cancels its other children; a task fails with the group's error (unless it had
 * one) and is cancelled. Errors: ARBOR_EINVAL, ARBOR_EKIND, ARBOR_EALREADY (joined
 * already), ARBOR_ENOMEM (only when joining a FINISHED group). */
ARBOR_EXTERN int arbor_group_join(arbor_node_t *group, arbor_finish_cb cb, void *arg);

/* ---- streams and thread-pool work ----
 *
 * TCP streams over the runtime's loop, and blocking functions run on libuv's
 * thread pool. Every call that waits is a checkpoint (a macro passing the caller's
 * file:line, as arbor_sleep): called off its fiber it returns ARBOR_ESTATE, and
 * once cancellation reached the fiber it returns ARBOR_ECANCELED at once, or
 * promptly while it waits (rule 4). Other failures are negative codes: libuv's
 * own pass through (-errno on Unix: -ECONNREFUSED, -ECONNRESET, -EADDRINUSE ...).
 *
 * Streams and listeners belong to the runtime's loop, not to a fiber: any fiber of
 * the runtime may use one, and one outlives the fiber that made it. Their owner
 * closes each exactly once (arbor_stream_close, arbor_listener_close: not
 * checkpoints; the memory goes when libuv's close callback runs), before the loop
 * is closed. Closing wakes a fiber waiting on it with UV_EBADF (-EBADF), and every
 * later call on the object returns UV_EBADF until it is closed.
 *
 * One reader, one writer and one acceptor at a time (as Trio's streams): a second
 * fiber reading (writing, accepting) while another waits gets ARBOR_EBUSY. A read
 * and a write may wait at the same time, in two fibers.
 *
 * Cancellation: a cancelled read or accept leaves the stream or listener as it
 * was (no byte is lost: nothing was read). libuv cannot abandon a connect or a
 * write halfway, so a cancelled connect or write closes the stream: the write may
 * have been partly sent, and the stream is unusable (UV_EBADF) until its owner
 * closes it (a cancelled connect's stream was never given out and goes by itself).
 */
typedef struct arbor_stream_s arbor_stream_t;
typedef struct arbor_listener_s arbor_listener_t;

/* Checkpoint: connects to a numeric IPv4 or IPv6 address (no DNS), port 1-65535.
 * On success *out is a new connected stream. Errors: ARBOR_EINVAL (NULL, bad
 * address or port), ARBOR_ENOMEM, libuv's (-ECONNREFUSED ...). */
#define arbor_tcp_connect(cx, ip, port, out)                                           \
  arbor_tcp_connect_at((cx), (ip), (port), (out), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_tcp_connect_at(arbor_ctx_t *cx, const char *ip, int port,
                                      arbor_stream_t **out, const char *file, int line);

/* Not a checkpoint: binds ip:port (numeric; port 0 picks a free one, see
 * arbor_listener_port) and listens with `backlog` (<= 0: 128). Errors:
 * ARBOR_EINVAL, ARBOR_ENOMEM, libuv's (-EADDRINUSE ...). */
ARBOR_EXTERN int arbor_tcp_listen(arbor_runtime_t *rt, const char *ip, int port, int backlog,
                                  arbor_listener_t **out);
/* The port the listener is bound to, or a negative code. */
ARBOR_EXTERN int arbor_listener_port(const arbor_listener_t *l);
/* Checkpoint: waits for the next connection; *out is a new stream. Errors:
 * ARBOR_EINVAL, ARBOR_EBUSY (another fiber accepts), UV_EBADF (closed), ARBOR_ENOMEM,
 * libuv's (-EMFILE ...: the listener goes on listening). */
#define arbor_tcp_accept(cx, l, out) arbor_tcp_accept_at((cx), (l), (out), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_tcp_accept_at(arbor_ctx_t *cx, arbor_listener_t *l, arbor_stream_t **out,
                                     const char *file, int line);
/* Closes the listener (once; connections not yet accepted are refused). Returns 0,
 * or ARBOR_EINVAL for NULL. */
ARBOR_EXTERN int arbor_listener_close(arbor_listener_t *l);

/* Checkpoint: reads at most len bytes (len > 0) into buf, waiting until at least
 * one arrives. Returns how many (> 0), 0 at the end of the stream (and again on
 * every later read), or a negative code: ARBOR_EINVAL, ARBOR_EBUSY, UV_EBADF,
 * libuv's (-ECONNRESET ...). libuv writes straight into buf. */
#define arbor_stream_read(cx, s, buf, len)                                             \
  arbor_stream_read_at((cx), (s), (buf), (len), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_stream_read_at(arbor_ctx_t *cx, arbor_stream_t *s, void *buf,
                                      size_t len, const char *file, int line);
/* Checkpoint: writes all len bytes and waits until libuv is done with buf (so buf
 * may be on the fiber's stack). Returns 0, or a negative code: ARBOR_EINVAL,
 * ARBOR_EBUSY, UV_EBADF, libuv's (-EPIPE, -ECONNRESET ...). When cancelled it
 * returns ARBOR_ECANCELED and the stream is closed (see above). */
#define arbor_stream_write(cx, s, buf, len)                                            \
  arbor_stream_write_at((cx), (s), (buf), (len), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_stream_write_at(arbor_ctx_t *cx, arbor_stream_t *s, const void *buf,
                                       size_t len, const char *file, int line);
/* Closes the stream (once: s is freed from the loop soon after). A fiber waiting
 * on it wakes with UV_EBADF. Returns 0, or ARBOR_EINVAL for NULL. */
ARBOR_EXTERN int arbor_stream_close(arbor_stream_t *s);

/* Checkpoint: runs fn(arg) on libuv's thread pool (uv_queue_work) and returns what
 * it returned; fn must not call arbor. Like anyio's to_thread.run_sync: when
 * cancelled before fn started, fn never runs and this returns ARBOR_ECANCELED at
 * once; when fn is already running it cannot be abandoned (it may use memory of
 * the fiber's stack), so the fiber waits on, shielded from cancellation and
 * deadlines, until fn returns, then returns ARBOR_ECANCELED (fn's result is
 * dropped). Errors: ARBOR_EINVAL (NULL fn), ARBOR_ENOMEM, libuv's. */
#define arbor_run_in_thread(cx, fn, arg)                                               \
  arbor_run_in_thread_at((cx), (fn), (arg), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_run_in_thread_at(arbor_ctx_t *cx, int (*fn)(void *arg), void *arg,
                                        const char *file, int line);

/* ---- child processes ----
 *
 * Checkpoint: runs a program and waits for it to exit. The child gets a process
 * group (and session) of its own, stdin from /dev/null, and the parent's stdout
 * and stderr. The call returns 0 once the child exited, however it ended: *result
 * says how. A child is always waited for, never abandoned: when cancellation
 * reaches the waiting fiber (arbor_node_cancel, a scope's deadline, a runtime
 * close), stop_signal goes to the child's process group, then SIGKILL to the group
 * if the child is still there kill_after_ms later; the fiber waits on, shielded
 * from cancellation and deadlines (rule 6), until the child exited, then returns
 * ARBOR_ECANCELED with *result filled in. A child that exited before the
 * cancellation reached the fiber makes the call return 0 even if the fiber is
 * cancelled before it runs again. Nothing is sent to the group after the child was
 * reaped, and a child that exits by itself leaves what it started alone.
 */
typedef struct {
  const char *file;              /* required: the program; without a '/', searched
                                    in PATH (the child's: env's when given) */
  char **args;                   /* argv, NULL-terminated, args[0] the name; NULL: {file} */
  char **env;                    /* "K=V" strings, NULL-terminated; NULL: inherit */
  const char *cwd;               /* NULL: inherit */
  int stop_signal;               /* sent to the group when cancelled; 0: SIGTERM */
  uint64_t kill_after_ms;        /* then SIGKILL to the group; 0: 5000 */
} arbor_process_opts_t;

typedef struct {
  int64_t exit_status;           /* its exit status; 0 when killed by a signal */
  int term_signal;               /* the signal that killed it; 0: it exited */
  int pid;                       /* the child's (also its process group's) */
  int killed;                    /* 1: the grace period ran out and SIGKILL was sent */
} arbor_process_result_t;

/* Checkpoint: spawns opts->file with opts->args and waits for its exit (above).
 * Returns 0 with *result (may be NULL) filled in, or ARBOR_ECANCELED (cancelled:
 * the child was stopped and has exited; *result filled in). When nothing was
 * spawned, *result is untouched and the error is ARBOR_EINVAL (NULL opts or file,
 * an empty file, args with args[0] NULL, stop_signal out of range), ARBOR_ENOMEM,
 * or libuv's (-ENOENT, -EACCES ... for a program that cannot be executed), or as
 * every checkpoint ARBOR_ESTATE / ARBOR_ECANCELED. opts comes last, variadic, so
 * that a compound literal passes whole:
 * arbor_process_run(cx, &res, &(arbor_process_opts_t){.file = "/bin/sh", .args = argv}). */
#define arbor_process_run(cx, result, ...)                                             \
  arbor_process_run_at((cx), (__VA_ARGS__), (result), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_process_run_at(arbor_ctx_t *cx, const arbor_process_opts_t *opts,
                                      arbor_process_result_t *result, const char *file,
                                      int line);

/* ------------------------------------------------------------- supervision
 *
 * Erlang/OTP supervisors and async_service's services in one tree (DESIGN.md,
 * "Supervisors, services, processes"; docs/api.md has the whole story).
 *
 *   supervisor ── service ── incarnation (a fiber task, or a process node)
 *             └─ supervisor ── service ...
 *
 * A service node keeps its id for its whole life; each run of its body is a child
 * node of its own, an incarnation. When an incarnation ends, the supervisor
 * decides by the child's restart type and its strategy whether and what to
 * restart, after a backoff delay, within its restart intensity. Children start in
 * order, each STARTED before the next starts, and stop in reverse order, each
 * FINISHED before the previous one is stopped.
 */
typedef enum {
  ARBOR_ONE_FOR_ONE,             /* restart only the child that ended */
  ARBOR_ONE_FOR_ALL,             /* stop every other child, then restart them all */
  ARBOR_REST_FOR_ONE             /* stop the children started after it, restart those */
} arbor_strategy_t;

typedef enum {                   /* Erlang's restart types */
  ARBOR_PERMANENT,               /* always restarted */
  ARBOR_TRANSIENT,               /* restarted only when it FAILED */
  ARBOR_TEMPORARY                /* never restarted */
} arbor_restart_t;

ARBOR_EXTERN const char *arbor_strategy_name(arbor_strategy_t s);   /* "one_for_one" */
ARBOR_EXTERN const char *arbor_restart_name(arbor_restart_t r);     /* "permanent" */

typedef struct {
  const char *name;              /* copied; NULL: "supervisor" */
  arbor_strategy_t strategy;
  int intensity;                 /* at most this many restarts ...; 0: 3; < 0: EINVAL */
  uint64_t period_ms;            /* ... within this many ms; 0: 5000 */
  uint64_t backoff_ms;           /* delay before a child's first restart; 0: 100 */
  uint64_t backoff_max_ms;       /* the delay doubles per restart up to this; 0: 30000 */
  int no_backoff;                /* 1: restart at once (the two above are ignored) */
  int no_jitter;                 /* 1: exact delays; else each is cut by up to 25 %, at
                                    random, so that crashed siblings spread out */
  arbor_restart_t restart;       /* as a child of a supervisor: its restart type */
  int parallel_stop;             /* 1: stopping for good, cancel every child at once
                                    (newest first) instead of one after the other:
                                    for children that do not depend on each other */
  arbor_finish_cb finish;        /* optional: called once it FINISHED */
  void *arg;
} arbor_sup_opts_t;

/* Creates a supervisor under parent: the root, a group, a supervisor (a nested
 * supervisor: restarted by its parent as a whole) or a running task. It is
 * CREATED now; from the loop it starts its children in order (STARTING) and is
 * STARTED once all of them are. opts may be NULL (one_for_one, defaults above).
 * When more restarts than `intensity` fall within `period_ms`, it stops every
 * child (reverse order) and fails with ARBOR_EINTENSITY, "restart intensity
 * exceeded", caused by the last child's error; the failure goes to its parent
 * (a supervisor parent restarts it as its restart type says; a group fails, rule
 * 2; a top-level failure is arbor_run's result). Cancelling it stops its children
 * in reverse order; it then FINISHED CANCELLED.
 * Errors: ARBOR_EINVAL (NULL parent, intensity < 0, strategy or restart out of
 * range), ARBOR_EKIND (parent kind), ARBOR_EFINISHED, ARBOR_ECANCELED (parent
 * winding down), ARBOR_ESTATE (task not running), ARBOR_ECLOSING, ARBOR_ENOMEM.
 * Nothing changes on error. */
ARBOR_EXTERN int arbor_supervisor_new(arbor_node_t *parent, const arbor_sup_opts_t *opts,
                                      arbor_node_t **out);

/* One resource limit of a process service's program (setrlimit(2)): name is
 * the resource as prlimit(1) and systemd's Limit*= say it, lowercase and without
 * RLIMIT_: "nofile", "core", "nproc", "stack", "as", "fsize", "memlock", "data",
 * "cpu", "rss", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime".
 * soft <= hard; ARBOR_RLIMIT_INFINITY is "unlimited". */
#define ARBOR_RLIMIT_INFINITY UINT64_MAX
typedef struct {
  const char *name;
  uint64_t soft, hard;
} arbor_rlimit_t;
/* A health probe, as Kubernetes' liveness and readiness probes: an attempt every
 * interval_ms while a run of the service lives (from its start + initial_delay_ms
 * until it stops; a new run starts over), one attempt at a time, each failed past
 * timeout_ms. A liveness probe that fails failure_threshold times in a row fails
 * the run (arbor_service_fail): it is restarted as a failure, the last attempt's
 * error the cause in its chain. A readiness probe decides readiness: a run is
 * ready (the service STARTED, its dependents free to start) only once the probe
 * passed success_threshold times in a row, besides its own readiness (handshake,
 * min_uptime_ms, notify_fd); after that, failure_threshold failures in a row make
 * it not ready (arbor_service_info's ready, /readyz; its state stays STARTED and
 * running dependents are left alone) until success_threshold passes make it ready
 * again. Copied at add and update. */
typedef enum {
  ARBOR_PROBE_HTTP = 1,          /* GET http://host:port/path: a status 200..399 passes */
  ARBOR_PROBE_TCP,               /* a connection to host:port is accepted */
  ARBOR_PROBE_EXEC               /* argv runs and exits with status 0 */
} arbor_probe_kind_t;

typedef enum {
  ARBOR_PROBE_LIVENESS,
  ARBOR_PROBE_READINESS
} arbor_probe_role_t;

ARBOR_EXTERN const char *arbor_probe_kind_name(arbor_probe_kind_t k);   /* "http" */
ARBOR_EXTERN const char *arbor_probe_role_name(arbor_probe_role_t r);   /* "liveness" */

typedef struct {
  arbor_probe_kind_t kind;
  const char *host;              /* HTTP, TCP: an IP address, or a name resolved on
                                    libuv's thread pool at each attempt; NULL:
                                    "127.0.0.1" */
  int port;                      /* HTTP, TCP: 1..65535 */
  const char *path;              /* HTTP: starts with '/', no spaces or control
                                    characters; NULL: "/" */
  char *const *argv;             /* EXEC: argv[0] the program (no '/': searched in
                                    PATH), NULL-terminated; run in a process group of
                                    its own, stdin /dev/null, killed past the timeout */
  uint64_t interval_ms;          /* from one attempt's start to the next; 0: 10000 */
  uint64_t timeout_ms;           /* an attempt that takes longer fails; 0: 1000 */
  uint32_t failure_threshold;    /* failures in a row for the verdict; 0: 3 */
  uint32_t success_threshold;    /* passes in a row to be ready; 0: 1 (liveness: 1 only) */
  uint64_t initial_delay_ms;     /* from a run's start to its first attempt; 0: at once */
} arbor_health_probe_t;

/* A service: a fiber body, or a program to run (a process service). */
typedef struct {
  const char *name;              /* copied; NULL: "service" */
  arbor_fiber_fn fiber;          /* the body, run once per incarnation (or argv) */
  void *arg;                     /* passed to fiber and finish */
  arbor_restart_t restart;       /* 0: ARBOR_PERMANENT */
  uint64_t shutdown_timeout_ms;  /* an incarnation STOPPING longer is stuck (rule 8)
                                    and a process gets SIGKILL; 0: 5000 */
  int handshake;                 /* fiber: STARTED only when the body calls
                                    arbor_fiber_started; else at once */
  size_t stack_size;             /* fiber: 0: the runtime's */
  arbor_finish_cb finish;        /* optional: called once the service FINISHED */

  /* A process service: set argv instead of fiber. Copied. */
  char *const *argv;             /* argv[0] the program: with no '/', searched in PATH */
  char *const *env;              /* "K=V", NULL-terminated; NULL: inherit arbor's */
  const char *cwd;               /* NULL: arbor's */
  int stop_signal;               /* sent to its process group to stop it; 0: SIGTERM */
  uint64_t min_uptime_ms;        /* STARTED once up this long; 0: at once */
  int notify_fd;                 /* > 2 (at most 1023): STARTED when the program writes a
                                    newline to this fd (s6's notification-fd); with
                                    min_uptime_ms too, once both happened; 0: none */
  size_t log_size;               /* bytes of stdout + stderr kept; 0: 64 KiB */
  /* Besides the ring, stdout + stderr (one stream, in arrival order) can go to a
   * file, rotated by size as supervisord's stdout_logfile does. Written from
   * libuv's thread pool, never from the loop; what cannot be queued (at most 1
   * MiB waits per file) or written is dropped and counted, never blocks
   * (arbor_service_log_file_info). */
  const char *log_file;          /* NULL or "": none; relative: to arbor's cwd at add */
  uint64_t log_file_max_bytes;   /* a file never grows past this; it rotates first;
                                    0: 10 MiB; at least 64 */
  unsigned log_file_backups;     /* rotated files kept: FILE.1 (newest) .. FILE.N;
                                    0: none (the file is truncated); at most 1000 */
  int log_timestamps;            /* each line starts "2026-11-24T22:40:01.123Z " (UTC) */
  /* How the program is executed (docs/api.md, "Run as another user"). user,
   * group and groups are resolved to ids when the service is added or updated;
   * arbor not root may only name its own user and group (else ARBOR_EPERM).
   * Any of user, group, groups, umask_set or rlimits makes arbor start the
   * program through its exec helper, arbor-exec (arbor_runtime_opts_t). */
  const char *user;              /* name or numeric uid; its primary group and its
                                    groups (initgroups) come with it; NULL: arbor's */
  const char *group;             /* name or numeric gid, instead of the user's
                                    primary group; NULL: the user's (or arbor's) */
  char *const *groups;           /* supplementary groups (names or gids) added to the
                                    user's, NULL-terminated; NULL: none */
  int umask_set;                 /* 1: the program starts with umask below */
  unsigned umask;                /* 0 to 0777 */
  const arbor_rlimit_t *rlimits; /* resource limits set before exec; copied */
  size_t nrlimits;
  const char *env_file;          /* KEY=VALUE lines read at each start of a run, set
                                    over env (docs/api.md has the syntax); relative:
                                    to arbor's cwd at add; NULL: none */
  /* A memory limit: a run whose program and descendants (summed as
   * arbor_service_usage sums them, fds aside) stay over max_memory bytes of
   * resident memory for max_memory_for_ms is failed with ARBOR_EMEMLIMIT, the
   * reading in its chain (arbor_service_fail: restarted as any failure). Read
   * every ARBOR_MEMORY_CHECK_MS by one timer of the runtime that runs only while
   * a program with a limit runs (less often where the readings would take more
   * than 2 % of a core: hundreds of limited programs). Not a hard cap
   * (the kernel's cgroups are). */
  uint64_t max_memory;           /* bytes; 0: no limit; else at least 1 MiB */
  uint64_t max_memory_for_ms;    /* over it at every reading for this long; 0: the
                                    first reading over it; at most 86400000 */

  /* Health probes (fiber and process services alike); NULL: none. Copied. */
  const arbor_health_probe_t *liveness;
  const arbor_health_probe_t *readiness;
} arbor_service_spec_t;

#define ARBOR_MEMORY_CHECK_MS 100  /* how often a limited program's memory is read, at
                                      the most */

/* Adds a service under parent: a supervisor (supervised: restarted per its type,
 * started in order), or the root, a group or a running task (unsupervised: runs
 * once; its failure goes to its parent as any child's; arbor_service_restart
 * still restarts it). Exactly one of fiber and argv must be set. A process
 * service makes arbor the child subreaper of its process (Linux). Errors:
 * ARBOR_EINVAL (NULL, no body or both, empty argv or argv[0], bad restart type,
 * stop_signal out of range, notify_fd 1..2, negative or above 1023,
 * log_file_max_bytes 1..63, log_file_backups above 1000, an unknown user or
 * group, umask above 0777, an unknown or duplicate rlimit or one whose soft limit
 * is above its hard limit, max_memory under 1 MiB but not 0, max_memory_for_ms
 * without max_memory or above 86400000, either on a fiber service,
 * a bad probe (kind out of range, port outside 1..65535, an empty or over-long
 * host, a path not starting with '/' or holding spaces or control characters,
 * no argv for EXEC, a time above a day, a threshold above 1000000, a liveness
 * success_threshold above 1)), ARBOR_EPERM (arbor is not root and the spec names
 * another user or group, supplementary groups, or a hard limit above arbor's:
 * arbor_service_exec_check says which), then as arbor_supervisor_new. Nothing
 * changes on error. */
ARBOR_EXTERN int arbor_service_add(arbor_node_t *parent, const arbor_service_spec_t *spec,
                                   arbor_node_t **out);

/* Restarts a service (stops its incarnation, starts a new one at once: no
 * backoff, not counted against the intensity) or a supervisor (restarts all its
 * children in order). Its id stays; its restart count goes up; a RESTART event
 * is recorded. Errors: ARBOR_EINVAL, ARBOR_EKIND (not a service or supervisor),
 * ARBOR_EFINISHED, ARBOR_ESTATE (it is stopping for good, or not started yet). */
ARBOR_EXTERN int arbor_service_restart(arbor_node_t *node);

/* Fails a service's running incarnation with err (a reference it takes, even on
 * error): what a health check outside the body does when it finds the service
 * unhealthy (arbor's liveness probes and memory limit use it). The incarnation
 * FAILED with err as its error, is stopped as a restart stops it (a program gets
 * its stop signal, then SIGKILL past the shutdown timeout) and its end is a
 * failure: kept in the history, restarted as the restart type, backoff and
 * intensity of its supervisor say; unsupervised, the service FAILED with it.
 * Errors: ARBOR_EINVAL (NULL), ARBOR_EKIND (not a service), ARBOR_ESTATE (no
 * run to fail: not started, between runs, already stopping or restarting). */
ARBOR_EXTERN int arbor_service_fail(arbor_node_t *svc, arbor_error_t *err);

/* Start dependencies among a supervisor's children: child (a service or a
 * supervisor) starts, each time it starts, only once earlier (a sibling added
 * before it) is STARTED (phase running) or gone for good (phase done, or
 * finished). Children already start in order, each STARTED before the next; this
 * matters where a supervisor goes past a sibling: one_for_one starts later
 * children while an earlier one waits for its restart delay, but not those that
 * start after it. Several calls add up; earlier NULL forgets them all. It holds
 * from the next start on (a running child is not stopped); arbor_service_info's
 * waiting_for names what holds a child back. Errors: ARBOR_EINVAL (NULL child,
 * earlier not an earlier sibling), ARBOR_EKIND (child not a supervisor's child),
 * ARBOR_ENOMEM. */
ARBOR_EXTERN int arbor_service_start_after(arbor_node_t *child, arbor_node_t *earlier);

/* Gives a service a new spec and restarts it (as arbor_service_restart), keeping
 * its id, its restart count and its history: what a config reload does for a
 * service whose spec changed. The running incarnation is stopped with the old
 * spec; the next one runs the new body or program. Restart type, shutdown
 * timeout, handshake, stack size, finish and arg are taken too; name and
 * log_size are not (the name is the service's identity, the log ring keeps its
 * size); the log file settings apply from the next run on, the same file kept
 * open when they did not change; so do user, group, groups, umask, rlimits and
 * env_file (names resolved now), and the memory limit (the run being stopped
 * stays under the old one). A service that has not started yet just starts
 * with the new spec.
 * Errors: ARBOR_EINVAL (NULL, a bad spec as arbor_service_add says, or a switch
 * between a fiber and a program), ARBOR_EPERM (as arbor_service_add), ARBOR_EKIND
 * (not a service), ARBOR_EFINISHED,
 * ARBOR_ESTATE (stopping for good), ARBOR_ENOMEM. Nothing changes on error. */
ARBOR_EXTERN int arbor_service_update(arbor_node_t *svc, const arbor_service_spec_t *spec);

/* Where a service (or supervisor) is between its runs. */
typedef enum {
  ARBOR_PHASE_IDLE,              /* not running: before its first start, or stopped
                                    and waiting for its siblings or its turn */
  ARBOR_PHASE_STARTING,          /* running, readiness not reported yet */
  ARBOR_PHASE_RUNNING,
  ARBOR_PHASE_STOPPING,          /* its incarnation (children) being stopped */
  ARBOR_PHASE_BACKOFF,           /* waiting for its restart delay */
  ARBOR_PHASE_DONE               /* stopped for good */
} arbor_phase_t;
ARBOR_EXTERN const char *arbor_phase_name(arbor_phase_t p);   /* "running" */

#define ARBOR_SERVICE_HISTORY 8  /* failures kept per service, newest first */

typedef struct {
  arbor_restart_t restart;
  arbor_phase_t phase;
  int is_process;
  int daemon;                    /* a daemon child service (rule 7) */
  uint32_t restarts;             /* = arbor_node_info().restarts */
  uint64_t incarnation_id;       /* the current or last incarnation; 0: none yet */
  uint64_t next_restart_ns;      /* monotonic; 0 unless in BACKOFF */
  uint64_t last_backoff_ms;      /* the delay chosen for the latest restart */
  uint64_t tasks_total;          /* tasks and child services run by its bodies */
  uint64_t tasks_finished;
  uint32_t history;              /* failures kept: arbor_service_failure(0 .. n-1) */
  int pid;                       /* process service: the running program's; 0: none */
  uint64_t waiting_for;          /* the id of the earlier sibling it waits for before
                                    it starts (children start in order, each STARTED
                                    before the next): one STARTING or due to start, or
                                    in its backoff delay under one_for_all /
                                    rest_for_one or when it starts after it
                                    (arbor_service_start_after); 0: not waiting */
  int ready;                     /* its run is ready (phase running) and its readiness
                                    probe, if any, has not failed it since */
  /* supervisors only */
  arbor_strategy_t strategy;
  int intensity;
  uint64_t period_ms;
} arbor_service_info_t;

/* Errors: ARBOR_EINVAL, ARBOR_EKIND (not a service or supervisor). */
ARBOR_EXTERN int arbor_service_info(const arbor_node_t *node, arbor_service_info_t *info);

/* A service's probe as the loop last saw it. Counters cover the service's life
 * (an update's new probe starts at 0); the rest its current or last run. */
typedef struct {
  arbor_probe_kind_t kind;
  const char *target;            /* "http://127.0.0.1:8080/healthz", "tcp://db:5432",
                                    "exec check.sh": borrowed, valid while the node is */
  int active;                    /* attempts are being made: a run of the service lives */
  int passing;                   /* liveness: not failed failure_threshold times in a
                                    row; readiness: it passed success_threshold times
                                    in a row and has not failed as many since */
  uint32_t failures_in_row;
  uint32_t successes_in_row;
  uint64_t successes;            /* attempts that passed */
  uint64_t failures;             /* attempts that failed, timeouts included */
  uint64_t timeouts;             /* attempts that outlived timeout_ms */
  uint64_t last_time_ns;         /* monotonic, when the last attempt ended; 0: none */
  uint64_t last_duration_ns;     /* how long it took */
  int last_ok;                   /* 1: the last attempt passed */
  const arbor_error_t *last_error;   /* the last failed attempt's error, or NULL:
                                        borrowed, valid until the next attempt ends */
  arbor_health_probe_t spec;     /* its settings, defaults filled in; strings borrowed */
} arbor_probe_info_t;

/* Errors: ARBOR_EINVAL (NULL, role out of range), ARBOR_EKIND (not a service),
 * ARBOR_ENOENT (no such probe). */
ARBOR_EXTERN int arbor_service_probe_info(const arbor_node_t *svc, arbor_probe_role_t role,
                                          arbor_probe_info_t *info);

/* One kept failure: the incarnation that ended, when, and its chain. */
typedef struct {
  uint64_t incarnation_id;
  uint64_t time_ns;              /* monotonic, when it ended */
  uint64_t backoff_ms;           /* the delay chosen for the restart that followed */
  int restarted;                 /* 0: it was not restarted after this one */
  const arbor_error_t *error;    /* borrowed: valid while the node is */
} arbor_service_failure_t;

/* The i-th newest kept failure. Errors: ARBOR_EINVAL, ARBOR_EKIND, ARBOR_ENOENT. */
ARBOR_EXTERN int arbor_service_failure(const arbor_node_t *node, size_t i,
                                       arbor_service_failure_t *out);

/* A process service's captured stdout and stderr, one byte stream in arrival
 * order, kept in a ring of log_size bytes: nothing blocks when nobody reads.
 * Offsets count every byte ever captured across all incarnations. Reads bytes
 * from *offset (0 at first) into buf, advances *offset and returns how many;
 * when the ring overwrote bytes past *offset, reading resumes at the oldest kept
 * and *missed (may be NULL) says how many were lost. Errors: ARBOR_EINVAL,
 * ARBOR_EKIND (not a process service). */
ARBOR_EXTERN int arbor_service_log_read(const arbor_node_t *svc, uint64_t *offset, char *buf,
                                        size_t size, uint64_t *missed);

/* A process service's log file (arbor_service_spec_t.log_file), as the loop last
 * heard from the thread that writes it. Counters cover the service's life; a
 * spec update to another file keeps counting. */
typedef struct {
  int enabled;                   /* 0: no log file (the rest is 0) */
  int error;                     /* the last open/write/rename failure still in force
                                    (-EACCES, -ENOENT, -ENOSPC ...); 0: writing */
  uint64_t bytes_written;        /* to the file, timestamps included */
  uint64_t bytes_dropped;        /* output that never reached it (queue full, error) */
  uint64_t rotations;
} arbor_log_file_info_t;

/* Errors: ARBOR_EINVAL, ARBOR_EKIND (not a process service). */
ARBOR_EXTERN int arbor_service_log_file_info(const arbor_node_t *svc,
                                             arbor_log_file_info_t *info);

/* How a process service's program is executed (the spec's user, group, groups,
 * umask, rlimits and env_file), as resolved when it was added or updated: what
 * the running program was started with. Pointers are borrowed: valid on the
 * loop thread until the next run of an updated service starts. */
typedef struct {
  int enabled;                   /* 0: none of them is set (the rest is 0 / NULL) */
  const char *user, *group;      /* as the spec named them; NULL: not named */
  int64_t uid, gid;              /* what the program runs as; -1: arbor's */
  const uint32_t *groups;        /* its supplementary groups (user's and spec's) */
  size_t ngroups;
  int groups_set;                /* 1: groups are set to the above (0: arbor's) */
  int umask;                     /* -1: arbor's */
  const arbor_rlimit_t *rlimits; /* in the spec's order */
  size_t nrlimits;
  const char *env_file;          /* absolute; NULL: none */
} arbor_exec_info_t;

/* Errors: ARBOR_EINVAL, ARBOR_EKIND (not a process service). */
ARBOR_EXTERN int arbor_service_exec_info(const arbor_node_t *svc, arbor_exec_info_t *info);

/* Checks the execution part of a spec (user, group, groups, umask, rlimits,
 * env_file) as arbor_service_add would, and reads env_file now, as a start
 * would: for a config checker (`arbor run --check`) that wants to name the
 * problem. Returns 0, or ARBOR_EINVAL (an unknown user or group, a bad umask or
 * rlimit, an env file that does not parse), ARBOR_EPERM (arbor is not root and
 * the spec asks for another user or group, supplementary groups or a hard limit
 * above its own), ARBOR_ENOENT / ARBOR_EACCES (the env file), ARBOR_ENOMEM, with
 * one line in msg (msglen bytes, NUL-terminated) that starts with the field it
 * is about and ": ", e.g. `user: no user named "www-dat"` or `rlimits.nofile:
 * soft limit 4096 above the hard limit 1024`. */
ARBOR_EXTERN int arbor_service_exec_check(const arbor_service_spec_t *spec, char *msg,
                                          size_t msglen);

/* What a process service's running program and its descendants use, read from
 * /proc (Linux) when asked: nothing samples on a timer, so an idle arbor stays
 * asleep. "Descendants" are the processes found by parent links from the program,
 * plus the orphans of its session that the kernel re-parented to arbor (the child
 * subreaper); a process that left the session and lost its parent (the classic
 * fork, setsid, fork daemon) is not counted. Sums over processes: rss_bytes
 * counts a page shared by two of them twice, as ps and top do. */
typedef struct {
  int pid;                       /* the program's */
  uint32_t processes;            /* the program and the descendants found */
  uint32_t threads;              /* summed over them */
  uint32_t fds;                  /* open fds, summed (those of a process arbor may
                                    not read, another user's, count 0) */
  uint64_t rss_bytes;            /* resident memory, summed */
  uint64_t cpu_ns;               /* user + system CPU time of the processes, and of
                                    the children they have waited for (so a child's
                                    work still counts once it exited); 0 at spawn */
  double cpu_percent;            /* 100 = one core busy: over the time since this
                                    run's previous sample at least 1 s before, or,
                                    at a run's first sample, since its program
                                    started (as ps shows %CPU) */
  uint64_t sampled_ns;           /* monotonic (arbor's clock), when it was read */
  int partial;                   /* 1: /proc held more processes than one sample
                                    reads (ARBOR_USAGE_SCAN_MAX): some descendants
                                    may be missing */
} arbor_process_usage_t;

#define ARBOR_USAGE_SCAN_MAX 4096  /* processes of /proc one sample reads at most */

/* Samples a process service's program and its descendants into *out. Costs one
 * read of /proc (up to ARBOR_USAGE_SCAN_MAX processes) on the loop thread: about
 * a millisecond for a few hundred processes. The service keeps the sample that
 * cpu_percent is measured from, so every caller (the node endpoint, a scrape)
 * shares one series. Errors: ARBOR_EINVAL (NULL), ARBOR_EKIND (not a process
 * service), ARBOR_ENOENT (no program running: not started yet, between runs, or it
 * exited while being read; or no /proc to read), ARBOR_ENOMEM. */
ARBOR_EXTERN int arbor_service_usage(arbor_node_t *svc, arbor_process_usage_t *out);

/* The same for n services with one read of /proc (what a /metrics scrape uses):
 * rcs[i] gets service i's result, 0 or an error as above, out[i] its figures.
 * Returns how many were sampled, or ARBOR_EINVAL (NULL with n > 0), ARBOR_ENOENT
 * (no /proc), ARBOR_ENOMEM (then nothing was sampled). */
ARBOR_EXTERN int arbor_service_usage_many(arbor_node_t *const *svcs, size_t n,
                                          arbor_process_usage_t *out, int *rcs);

/* A process service's memory limit (arbor_service_spec_t.max_memory) and what
 * its readings saw. While a program runs: its limit and this run's readings;
 * between runs: the limit the next run gets, readings 0. */
typedef struct {
  uint64_t max_memory;           /* bytes; 0: no limit */
  uint64_t max_memory_for_ms;
  uint64_t rss_bytes;            /* the latest reading: program + descendants */
  uint32_t processes;            /* ... of that many processes */
  uint64_t sampled_ns;           /* monotonic, when it was taken; 0: none this run */
  uint64_t over_since_ns;        /* monotonic: the first of the unbroken readings over
                                    the limit; 0: the latest one was under it */
  uint64_t readings;             /* taken this run */
  uint64_t check_ms;             /* the time between readings now; 0 between runs */
  uint64_t exceeded;             /* runs the limit failed, over the service's life */
} arbor_memory_limit_info_t;

/* Errors: ARBOR_EINVAL (NULL), ARBOR_EKIND (not a process service). */
ARBOR_EXTERN int arbor_service_memory_limit(const arbor_node_t *svc,
                                            arbor_memory_limit_info_t *info);

/* -- the service manager inside a body (async_service's ServiceAPI) --
 *
 * cx is any fiber of a service's incarnation: its body or a task it runs. New
 * tasks and child services become children of the incarnation; when the body
 * returns, the ones still running are cancelled (the service is done with
 * them). A task's failure fails the incarnation (rule 2). A daemon task or daemon
 * child service is meant to live as long as the service: one that ends in any
 * way while the incarnation runs fails it with ARBOR_EDAEMON, "daemon task
 * exited unexpectedly", caused by its own error if it failed (rule 7); not once
 * the service is stopping. Errors: ARBOR_EINVAL, ARBOR_EKIND (cx is not in a
 * service), ARBOR_ECANCELED (stopping), then as arbor_fiber_spawn /
 * arbor_service_add. */
ARBOR_EXTERN int arbor_service_run_task(arbor_ctx_t *cx, const arbor_fiber_spec_t *spec,
                                        arbor_node_t **out);
ARBOR_EXTERN int arbor_service_run_daemon_task(arbor_ctx_t *cx, const arbor_fiber_spec_t *spec,
                                               arbor_node_t **out);
ARBOR_EXTERN int arbor_service_run_child_service(arbor_ctx_t *cx,
                                                 const arbor_service_spec_t *spec,
                                                 arbor_node_t **out);
ARBOR_EXTERN int arbor_service_run_daemon_child_service(arbor_ctx_t *cx,
                                                        const arbor_service_spec_t *spec,
                                                        arbor_node_t **out);

/* -- from outside (async_service's manager) -- */

/* Checkpoint: waits until the service (or supervisor) has been STARTED: returns 0
 * (at once if it was), or, when it finished without ever starting, its error's
 * code (ARBOR_ECANCELED if cancelled). Errors: ARBOR_EINVAL, ARBOR_EKIND, and
 * as every checkpoint. */
#define arbor_service_wait_started(cx, svc)                                            \
  arbor_service_wait_started_at((cx), (svc), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_service_wait_started_at(arbor_ctx_t *cx, arbor_node_t *svc,
                                               const char *file, int line);
/* Checkpoint: waits until it FINISHED (arbor_wait). */
#define arbor_service_wait_finished(cx, svc) arbor_wait((cx), (svc))
/* Cancels it: stops it for good (arbor_node_cancel). */
#define arbor_service_cancel(svc) arbor_node_cancel(svc)
/* Checkpoint: cancel, then wait until it FINISHED. Returns 0 or the checkpoint's
 * error; ARBOR_EFINISHED counts as done (0). */
#define arbor_service_stop(cx, svc) arbor_service_stop_at((cx), (svc), __FILE__, __LINE__)
ARBOR_EXTERN int arbor_service_stop_at(arbor_ctx_t *cx, arbor_node_t *svc, const char *file,
                                       int line);
ARBOR_EXTERN int arbor_service_is_started(const arbor_node_t *svc);   /* ever STARTED */
ARBOR_EXTERN int arbor_service_is_running(const arbor_node_t *svc);   /* started, not finished */
ARBOR_EXTERN int arbor_service_is_cancelled(const arbor_node_t *svc);
ARBOR_EXTERN int arbor_service_is_finished(const arbor_node_t *svc);
ARBOR_EXTERN int arbor_service_did_error(const arbor_node_t *svc);    /* FAILED, or an
                                                                         incarnation did */

/* ------------------------------------------------------- stuck and shutdown */

/* 1 when the node stayed STOPPING past its shutdown timeout (rule 8). */
ARBOR_EXTERN int arbor_node_is_stuck(const arbor_node_t *node);

/* Graceful shutdown: every top-level node is cancelled in reverse creation order
 * (supervisors stop their children in reverse start order), and the runtime
 * gives the tree shutdown_timeout_ms (arbor_runtime_opts_t) to finish. Past it,
 * or at once with immediate = 1: every unfinished node is marked stuck, process
 * groups get SIGKILL, and tasks still running are given up on (they end FAILED
 * with ARBOR_EDEADLK; arbor_run then returns it). Calling it again with
 * immediate = 1 turns a graceful shutdown into an immediate one (arbor_run does
 * so on a second SIGINT/SIGTERM). The runtime itself stays open (close it, or
 * let arbor_run return). Errors: ARBOR_EINVAL, ARBOR_EALREADY (already shut
 * down that way). */
ARBOR_EXTERN int arbor_shutdown(arbor_runtime_t *rt, int immediate);

/* ------------------------------------------------------------ admin server
 *
 * The admin HTTP API (DESIGN.md, "Admin API"; docs/api.md and docs/openapi.yaml
 * describe every endpoint): libmicrohttpd inside the runtime's loop, no thread of
 * its own, so every handler runs on the loop thread and every snapshot is one
 * consistent point in time. Safe by default: 127.0.0.1; with a token, every
 * mutating call (POST, PUT, DELETE) needs "Authorization: Bearer TOKEN"; a
 * non-loopback bind without a token is refused; URL, body, connections and
 * per-connection memory are limited.
 */
typedef struct arbor_admin_s arbor_admin_t;

/* Live service changes (POST /api/v1/services, PUT and DELETE
 * /api/v1/services/{name}). The server knows no service format of its own:
 * whoever owns the tree's description (the arbor daemon: its config) parses the
 * body and changes the tree, through these callbacks, on the loop thread, after
 * the server checked the token and the body's size. spec is the request body
 * (len bytes, NUL-terminated); name is the URL's segment, decoded. Each returns 0
 * with the service's id in *id, or a negative code with one line in msg (msglen
 * bytes, NUL-terminated), which the server sends as the error's message:
 * ARBOR_EINVAL (400: the spec is wrong), ARBOR_EKIND (400: not a service),
 * ARBOR_ENOENT (404: no service of that name), ARBOR_EEXIST (409: add of a name
 * taken), ARBOR_EBUSY (409: another service depends on it), ARBOR_ESTATE or
 * ARBOR_EFINISHED (409: it cannot change now), anything else 500. Nothing may change on error. update may set *restarted to 0 when the
 * spec was the one running (nothing restarted). */
typedef struct {
  int (*add)(void *arg, const char *spec, size_t len, uint64_t *id, char *msg, size_t msglen);
  int (*update)(void *arg, const char *name, const char *spec, size_t len, uint64_t *id,
                int *restarted, char *msg, size_t msglen);
  int (*remove)(void *arg, const char *name, uint64_t *id, char *msg, size_t msglen);
  void *arg;
} arbor_admin_services_t;

typedef struct {
  const char *bind;              /* IPv4 or IPv6 address; NULL: "127.0.0.1" */
  int port;                      /* 0: a free port (arbor_admin_port says which) */
  const char *token;             /* bearer token for mutating calls; NULL: none */
  const char *token_file;        /* or its first line; NULL: none */
  unsigned max_connections;      /* 0: 64 */
  size_t max_url;                /* longer request lines get 414; 0: 2048 bytes */
  size_t max_body;               /* larger bodies get 413; 0: 4096 bytes */
  size_t connection_memory;      /* per connection; 0: 64 KiB */
  const char *cors_origin;       /* Access-Control-Allow-Origin; NULL: no CORS */
  unsigned sse_heartbeat_ms;     /* comment line on an idle event stream; 0: 15000 */
  const arbor_admin_services_t *services;   /* copied; NULL: /api/v1/services answers 501 */
} arbor_admin_opts_t;

/* Starts the admin server on rt's loop. It is closed with the runtime (or by
 * arbor_admin_stop). Errors: ARBOR_EINVAL (NULL rt, a bad address, a token file
 * that cannot be read or is empty), ARBOR_EACCES (a non-loopback bind without a
 * token), libuv's / errno's code when the socket cannot be bound
 * (-EADDRINUSE ...), ARBOR_ENOMEM. Nothing is started on error. */
ARBOR_EXTERN int arbor_admin_start(arbor_runtime_t *rt, const arbor_admin_opts_t *opts,
                                   arbor_admin_t **out);
/* The port it listens on. */
ARBOR_EXTERN int arbor_admin_port(const arbor_admin_t *admin);
/* Stops it: connections are closed now, memory freed from the loop. Errors:
 * ARBOR_EINVAL. */
ARBOR_EXTERN int arbor_admin_stop(arbor_admin_t *admin);

/* ---------------------------------------------------------- observation API
 *
 * For exporters and the admin server: read-only, on the loop thread, so every walk
 * is one consistent point in time.
 */

/* The node with this id, alive or retained; NULL when unknown or evicted. */
ARBOR_EXTERN arbor_node_t *arbor_node_find(arbor_runtime_t *rt, uint64_t id);

/* Children in creation order (retained FINISHED ones included). NULL at the end;
 * next_sibling of an evicted node is NULL. */
ARBOR_EXTERN arbor_node_t *arbor_node_first_child(const arbor_node_t *node);
ARBOR_EXTERN arbor_node_t *arbor_node_next_sibling(const arbor_node_t *node);
/* A page of children: writes up to `limit` node pointers starting at child number
 * `offset` into out, stores the number of children in *total (may be NULL) and
 * returns how many it wrote. ARBOR_EINVAL for NULL node or out with limit > 0. */
ARBOR_EXTERN int arbor_node_children(const arbor_node_t *node, size_t offset, size_t limit,
                                     arbor_node_t **out, size_t *total);

/* Pre-order walk of node's subtree, down to max_depth (0: node only; -1: all).
 * visit returns 0 to go on, 1 to skip this node's children, or a negative value to
 * stop; arbor_tree_walk then returns that value. Do not change the tree from visit.
 * Returns 0 when the walk completed. */
typedef int (*arbor_walk_cb)(arbor_node_t *node, int depth, void *arg);
ARBOR_EXTERN int arbor_tree_walk(arbor_node_t *node, int max_depth, arbor_walk_cb visit,
                                 void *arg);

/* Where a fiber is, for snapshots. */
typedef struct {
  const char *wait_what;         /* the checkpoint it waits in ("sleep", "wait",
                                    "channel_recv", "yield" ...), also once woken
                                    until it runs again; NULL while it runs, before
                                    it started and after it finished */
  const char *wait_file;         /* the checkpoint's call site */
  int wait_line;
  uint64_t wait_since_ns;        /* monotonic, when it parked */
  size_t stack_size;             /* usable bytes; 0 when it holds no stack */
  size_t stack_high_water;       /* bytes of stack ever touched, measured now by a
                                    scan (a pooled stack counts earlier users too) */
} arbor_fiber_info_t;

/* Fills info for a fiber task. Errors: ARBOR_EINVAL, ARBOR_EKIND (not a fiber). */
ARBOR_EXTERN int arbor_node_fiber_info(const arbor_node_t *node, arbor_fiber_info_t *info);

/* Prints the subtree as indented text, one node per line with kind, name, id, state
 * and outcome, then, for a node with an error, its chain; of an error group only
 * the first line (the children print their own). ARBOR_EINVAL for NULL. */
ARBOR_EXTERN int arbor_tree_print(arbor_node_t *node, FILE *out);

/* ------------------------------------------------------------------ events */

/* One recorded event. error is borrowed from the ring: valid until the next call
 * that records events (take a reference to keep it). */
typedef struct {
  uint64_t seq;                  /* 1, 2, 3 ... in recording order */
  uint64_t time_ns;              /* monotonic */
  uint64_t node_id;
  uint64_t parent_id;
  arbor_event_type_t type;
  arbor_kind_t kind;
  arbor_state_t from;            /* STATE: the old state; others: the state then */
  arbor_state_t to;              /* STATE: the new state; others: the state then */
  const arbor_error_t *error;    /* FAILED: the node's error; DEADLINE of a fail-mode
                                    scope: its timeout error; PROBE_FAILED: the
                                    attempt's error; NOT_READY: the verdict, caused by
                                    the last attempt's error; else NULL */
} arbor_event_t;

typedef struct {
  uint64_t recorded;             /* events ever recorded */
  uint64_t dropped;              /* overwritten because the ring was full (oldest first) */
  uint64_t first_seq;            /* oldest seq still in the ring (recorded+1 when empty) */
  size_t capacity;
} arbor_events_stats_t;

ARBOR_EXTERN void arbor_events_stats(const arbor_runtime_t *rt, arbor_events_stats_t *stats);

/* Reads events with seq >= *cursor (start with 1, or stats.first_seq) into out, at
 * most max, and advances *cursor past the last one read. Returns how many it read.
 * When the ring overwrote events the reader had not seen, reading resumes at the
 * oldest one kept and *missed (may be NULL) receives how many were lost; else 0.
 * Errors: ARBOR_EINVAL. */
ARBOR_EXTERN int arbor_events_read(const arbor_runtime_t *rt, uint64_t *cursor,
                                   arbor_event_t *out, size_t max, uint64_t *missed);

/* ---------------------------------------------------------------- counters
 *
 * What the runtime counted since it was created, for metrics (GET /metrics).
 * Counters only grow; the node gauges count nodes in the tree now (retained
 * FINISHED ones included, evicted ones not).
 */

/* Histogram buckets: upper bounds 1, 2.5, 5 x 10^k ns... from 1 us to 1000 s
 * (arbor_histogram_bound_ns), and one more for anything longer. */
#define ARBOR_HISTOGRAM_BUCKETS 28
typedef struct {
  uint64_t count;
  uint64_t sum_ns;
  uint64_t buckets[ARBOR_HISTOGRAM_BUCKETS + 1];  /* per bucket, not cumulative:
                                                     buckets[i] counts values <=
                                                     bound(i) and > bound(i-1) */
} arbor_histogram_t;

/* Upper bound of bucket i in ns (i < ARBOR_HISTOGRAM_BUCKETS); UINT64_MAX else. */
ARBOR_EXTERN uint64_t arbor_histogram_bound_ns(size_t i);

typedef struct {
  uint64_t nodes[ARBOR_KIND_COUNT][ARBOR_STATE_COUNT];   /* in the tree now */
  uint64_t created[ARBOR_KIND_COUNT];                   /* ever, the root included */
  uint64_t finished[ARBOR_KIND_COUNT][ARBOR_OUTCOME_COUNT];
  uint64_t events[ARBOR_EVENT_COUNT];   /* by type, ever (restarts: [RESTART],
                                           failures: [FAILED], cancellations:
                                           [CANCEL]), also with no_events */
  uint64_t events_recorded;             /* into the ring (= stats.recorded) */
  uint64_t events_dropped;              /* overwritten in the full ring */
  uint64_t stuck;                       /* nodes stuck now (rule 8), not FINISHED */
  uint64_t evicted;                     /* FINISHED nodes dropped from retention */
  arbor_histogram_t restart_gap;        /* a service's previous run FINISHED to the
                                           next run STARTED, backoff included */
  arbor_histogram_t task_lifetime;      /* a task's or process's CREATED to FINISHED */
  uint64_t fiber_stack_overflows;       /* fibers ended FAILED with ARBOR_ESTACK; each
                                           stack is kept out of use for good
                                           (quarantined: mapped, never reused) */
} arbor_stats_t;

ARBOR_EXTERN void arbor_runtime_stats(const arbor_runtime_t *rt, arbor_stats_t *stats);

/* ------------------------------------------------------------ trace export
 *
 * The tree (live nodes and the retained FINISHED ones) and the events still in
 * the ring, as a trace for existing tools (DESIGN.md, "Events and traces";
 * docs/tracing.md). arbor keeps no trace store of its own: what the tree and the
 * ring hold is what is exported.
 *   CHROME: Chrome Trace Event JSON, for Perfetto UI and chrome://tracing: one
 *           complete slice per node, nested as the tree (concurrent siblings on
 *           tracks of their own), state changes and failures as instant events,
 *           the error chain and attributes in args.
 *   OTLP:   OTLP/JSON, one ExportTraceServiceRequest: one span per node, the
 *           parent span is the parent node, status from the outcome, state
 *           changes as span events, a failure as an "exception" event.
 */
typedef enum {
  ARBOR_TRACE_CHROME = 1,
  ARBOR_TRACE_OTLP = 2
} arbor_trace_format_t;

/* "chrome" or "otlp" -> the format; ARBOR_EINVAL for anything else. */
ARBOR_EXTERN int arbor_trace_format_parse(const char *name);
/* The format a file's name asks for: names ending in ".otlp.json" or ".otlp"
 * are OTLP, anything else Chrome JSON. */
ARBOR_EXTERN arbor_trace_format_t arbor_trace_format_for_path(const char *path);

/* Writes the whole trace to out, blocking (for a file at shutdown, or a small
 * program; the admin server streams it instead, GET /api/v1/trace). Errors:
 * ARBOR_EINVAL, ARBOR_ENOMEM, the negative errno of a failed write. */
ARBOR_EXTERN int arbor_trace_write(arbor_runtime_t *rt, arbor_trace_format_t format, FILE *out);

/* ----------------------------------------------------------- OTLP/HTTP push
 *
 * Sends every node that FINISHES as an OTLP span to a collector (OpenTelemetry
 * Collector, Jaeger, Tempo ...): batched, POSTed as application/json to
 * <endpoint>/v1/traces from the loop (libcurl's multi interface on libuv, never
 * blocking), from a bounded queue. A failed request is retried with exponential
 * backoff; spans that do not fit the queue are dropped and counted, so a dead
 * or slow collector never blocks arbor or grows its memory. At the runtime's
 * close what is queued gets one last try (bounded by timeout_ms).
 */
typedef struct arbor_otlp_s arbor_otlp_t;

typedef struct {
  const char *endpoint;          /* base URL, "http://127.0.0.1:4318" (required) */
  const char *service_name;      /* resource service.name; NULL: "arbor" */
  const char *const *headers;    /* extra request headers "Name: value", NULL-ended */
  size_t max_queue;              /* spans waiting at most; 0: 2048 */
  size_t max_queue_bytes;        /* their JSON bytes at most; 0: 4 MiB */
  size_t max_batch;              /* spans per request at most; 0: 512 */
  unsigned flush_ms;             /* the longest a span waits for its batch; 0: 1000 */
  unsigned timeout_ms;           /* one request at most; 0: 10000 */
  unsigned backoff_ms;           /* first retry delay, doubling; 0: 500 */
  unsigned backoff_max_ms;       /* cap of the retry delay; 0: 30000 */
} arbor_otlp_opts_t;

typedef struct {
  uint64_t spans_queued;         /* accepted into the queue */
  uint64_t spans_exported;       /* acknowledged by the collector (2xx) */
  uint64_t spans_dropped;        /* queue full, evicted before read, or rejected (4xx) */
  uint64_t requests;             /* POSTs sent */
  uint64_t requests_failed;      /* not 2xx, or no answer in timeout_ms */
  size_t queue_len;              /* spans waiting now (the batch in flight included) */
  size_t queue_bytes;            /* their JSON bytes */
  uint64_t events_missed;        /* events the ring overwrote before the exporter read
                                    them: nodes that finished then are not counted */
} arbor_otlp_stats_t;

/* Starts the exporter on rt's loop; one per runtime. It stops with the runtime
 * (or arbor_otlp_stop). Errors: ARBOR_EINVAL (NULL rt, no endpoint, an endpoint
 * that is not http:// or https://), ARBOR_EALREADY (rt has one), ARBOR_ENOMEM. */
ARBOR_EXTERN int arbor_otlp_start(arbor_runtime_t *rt, const arbor_otlp_opts_t *opts,
                                  arbor_otlp_t **out);
ARBOR_EXTERN void arbor_otlp_stats(const arbor_otlp_t *otlp, arbor_otlp_stats_t *stats);
/* Stops it now: the request in flight is abandoned, queued spans dropped (and
 * counted). Memory is freed from the loop. Errors: ARBOR_EINVAL. */
ARBOR_EXTERN int arbor_otlp_stop(arbor_otlp_t *otlp);
/* The runtime's exporter, or NULL (for GET /metrics). */
ARBOR_EXTERN arbor_otlp_t *arbor_otlp_of(arbor_runtime_t *rt);

#ifdef __cplusplus
}
#endif
#endif /* ARBOR_H */
