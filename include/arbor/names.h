/* arbor/names.h - every enumerated name of arbor, listed once.
 *
 * Each list is an X-macro: the enum in arbor.h and the name tables in the library
 * are both expanded from it, so a name can never drift from its value (libuv does
 * the same with UV_ERRNO_MAP). Include <arbor.h>, not this file.
 */
#ifndef ARBOR_NAMES_H
#define ARBOR_NAMES_H

#include <errno.h>

/* Error codes: XX(NAME, value, message). Values are negative errno codes where one
 * fits (Linux's numbers), ARBOR_EOF equal to libuv's UV_EOF (-4095) so that stream
 * reads and channel receives end alike, and arbor's own codes in -10000..-10099,
 * clear of errno values and of libuv's other codes (UV_EAI_* -3000..-3014,
 * UV_ECHARSET -4080, UV_EFTYPE -4028), which task bodies often return and which
 * arbor_strerror also names. A code from a task body that equals one of the
 * values below gets arbor's message, which is therefore worded to fit both (-ENOENT
 * from a failed open: "no such file, directory or entry").
 * arbor returns ENOENT when an index, handle or timer is not there:
 * arbor_node_attr_at past the last attribute, arbor_task_disown of a handle not
 * owned, arbor_task_after_stop with none pending. Unknown ids are not errors:
 * arbor_node_find returns NULL. EBUSY: a second reader, writer or acceptor on
 * one stream or listener. ETIMEDOUT: a fail-mode cancel scope's deadline expired.
 * EDEADLK: arbor_run found nodes waiting with nothing in the loop to wake
 * them, and the code of the error of a task its shutdown gave up on.
 * EINTENSITY: a supervisor gave up (more restarts than its intensity allows);
 * EEXIT / ESIGNAL: a process service's program exited non-zero / was killed;
 * EDAEMON: rule 7, a daemon task or daemon child service returned while its
 * service ran. EEXIST: a name already taken (the admin server's live service
 * changes). EPERM: what only root may do, asked of an arbor that is not root
 * (a process service run as another user). EMEMLIMIT: a process service's
 * program stayed over its max_memory. EPROBE: a health probe's verdict, or an
 * HTTP probe's status outside 200..399. */
#define ARBOR_ERRNO_MAP(XX)                                                            \
  XX(EINVAL, (-EINVAL), "invalid argument")                                            \
  XX(ENOMEM, (-ENOMEM), "out of memory")                                               \
  XX(ENOENT, (-ENOENT), "no such file, directory or entry")                            \
  XX(ECANCELED, (-ECANCELED), "operation cancelled")                                   \
  XX(ETIMEDOUT, (-ETIMEDOUT), "timed out")                                             \
  XX(EALREADY, (-EALREADY), "already done")                                            \
  XX(EBUSY, (-EBUSY), "resource busy")                                                 \
  XX(ENOSPC, (-ENOSPC), "no space left")                                               \
  XX(EDEADLK, (-EDEADLK), "nodes are waiting but nothing is left to wake them")        \
  XX(EAGAIN, (-EAGAIN), "operation would block")                                       \
  XX(EPIPE, (-EPIPE), "broken: the other side is closed")                              \
  XX(EACCES, (-EACCES), "permission denied")                                           \
  XX(EEXIST, (-EEXIST), "already exists")                                              \
  XX(EPERM, (-EPERM), "operation not permitted")                                       \
  XX(EOF, (-4095), "end of stream")                                                    \
  XX(EFINISHED, (-10001), "node has finished")                                         \
  XX(EKIND, (-10002), "wrong kind of node for this operation")                         \
  XX(ESTATE, (-10003), "not allowed in the node's current state")                      \
  XX(ECLOSING, (-10004), "runtime is closing")                                         \
  XX(EGROUP, (-10005), "one or more children failed")                                  \
  XX(EFAILED, (-10006), "task failed")                                                 \
  XX(EINTENSITY, (-10007), "restart intensity exceeded")                               \
  XX(EEXIT, (-10008), "process exited with a non-zero status")                         \
  XX(ESIGNAL, (-10009), "process killed by a signal")                                  \
  XX(EDAEMON, (-10010), "daemon task exited unexpectedly")                             \
  XX(EMEMLIMIT, (-10011), "memory limit exceeded")                                     \
  XX(EPROBE, (-10012), "health probe failed")                                          \
  XX(ESTACK, (-10013), "fiber stack overflow")

/* Node kinds: XX(NAME, text). */
#define ARBOR_KIND_MAP(XX)                                                             \
  XX(ROOT, "root")                                                                     \
  XX(SUPERVISOR, "supervisor")                                                         \
  XX(SERVICE, "service")                                                               \
  XX(GROUP, "group")                                                                   \
  XX(TASK, "task")                                                                     \
  XX(PROCESS, "process")

/* Lifecycle states, in lifecycle order: XX(NAME, text). */
#define ARBOR_STATE_MAP(XX)                                                            \
  XX(CREATED, "CREATED")                                                               \
  XX(STARTING, "STARTING")                                                             \
  XX(STARTED, "STARTED")                                                               \
  XX(STOPPING, "STOPPING")                                                             \
  XX(STOPPED, "STOPPED")                                                               \
  XX(FINISHED, "FINISHED")

/* Outcomes, set once when a node reaches FINISHED: XX(NAME, text). */
#define ARBOR_OUTCOME_MAP(XX)                                                          \
  XX(NONE, "NONE")                                                                     \
  XX(OK, "OK")                                                                         \
  XX(FAILED, "FAILED")                                                                 \
  XX(CANCELLED, "CANCELLED")

/* Event types: XX(NAME, text). */
#define ARBOR_EVENT_MAP(XX)                                                            \
  XX(CREATED, "created")     /* a node was added to the tree (to = CREATED) */         \
  XX(STATE, "state")         /* a lifecycle transition: from -> to */                  \
  XX(FAILED, "failed")       /* a node failed; error is its chain */                   \
  XX(CANCEL, "cancel")       /* cancellation was requested for a node */               \
  XX(RESTART, "restart")     /* a service was restarted */                             \
  XX(DEADLINE, "deadline")   /* a deadline expired */                                  \
  XX(STUCK, "stuck")         /* a node stayed STOPPING past its shutdown timeout */   \
  XX(PROBE_FAILED, "probe_failed") /* a service's probe attempt failed; error: why */   \
  XX(NOT_READY, "not_ready") /* its readiness probe failed it; error: the verdict */   \
  XX(READY, "ready")         /* ... and passed again: ready once more */

#endif /* ARBOR_NAMES_H */
