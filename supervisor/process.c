/* supervisor/process.c - arbor_process_run: spawn a program from a fiber and wait
 * for it to exit, a checkpoint (arbor.h, "child processes").
 *
 * The child runs in a process group of its own (UV_PROCESS_DETACHED: setsid), so a
 * signal to -pid reaches everything it started that stayed in the group. Its stdin
 * is /dev/null (libuv opens it for UV_IGNORE on fds 0-2), stdout and stderr are the
 * parent's.
 *
 * Everything libuv calls back into (the exit callback, the SIGKILL timer, the close
 * callbacks) lives in one heap record, never on the fiber's stack. The exit
 * callback finds the fiber through the record (p->waiter), which the unhook clears
 * when cancellation takes the fiber out of its wait.
 *
 * A child is always reaped, never abandoned: cancellation (the fiber's, a scope's
 * deadline, a runtime close) only starts the stop. The unhook sends the stop signal
 * to the group and arms the timer that sends SIGKILL to the group after the grace
 * period; the fiber then waits on in a shielded scope (rule 6: nothing reaches it
 * but the exit callback) until libuv reports the exit, and returns ARBOR_ECANCELED
 * with the result filled in. Signals go out only while the child is not reaped
 * (p->exited is set in the same loop callback that reaped it), so a pid the kernel
 * reused is never signalled.
 *
 * Who frees the record: the fiber closes both handles once the exit is known (or
 * once uv_spawn failed), and the second close callback frees it. The fiber never
 * leaves before that point, so nothing else needs to know whether it is there.
 */
#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include "internal.h"

#define DEFAULT_KILL_AFTER_MS 5000

struct proc {
  uv_process_t handle;           /* handle.data = this */
  uv_timer_t kill_timer;         /* kill_timer.data = this; armed by the stop */
  arbor_ctx_t *waiter;           /* the fiber parked on it, or NULL */
  int64_t exit_status;           /* the exit callback's */
  int term_signal;
  int pid;
  int stop_signal;
  uint64_t kill_after_ms;
  uint8_t exited;                /* libuv reaped the child: signal nothing any more */
  uint8_t stopping;              /* the stop signal was sent */
  uint8_t killed;                /* SIGKILL was sent */
  uint8_t open;                  /* handles whose close callback is pending */
};

static void proc_closed(uv_handle_t *h) {
  struct proc *p = h->data;
  if (--p->open == 0)
    free(p);
}

static void proc_close(struct proc *p) {
  p->open = 2;
  uv_close((uv_handle_t *)&p->handle, proc_closed);
  uv_close((uv_handle_t *)&p->kill_timer, proc_closed);
}

/* From the loop, in the callback in which libuv reaped the child. */
static void proc_exited(uv_process_t *h, int64_t exit_status, int term_signal) {
  struct proc *p = h->data;
  p->exited = 1;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  uv_timer_stop(&p->kill_timer);
  arbor_ctx_t *cx = p->waiter;
  p->waiter = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, 0);
}

/* The grace period is over and the child is still there. */
static void proc_kill(uv_timer_t *t) {
  struct proc *p = t->data;
  if (p->exited || p->killed)
    return;
  p->killed = 1;
  kill(-(pid_t)p->pid, SIGKILL);
}

/* Starts the stop, once: the stop signal to the group, SIGKILL after the grace
 * period. Never blocks: safe inside an unhook. Failures of kill() are ignored: the
 * group cannot vanish while its leader is unreaped (it would only be ESRCH for a
 * group of zombies), and SIGKILL follows anyway. */
static void proc_stop(struct proc *p) {
  if (p->exited || p->stopping)
    return;
  p->stopping = 1;
  kill(-(pid_t)p->pid, p->stop_signal);
  int rc = uv_timer_start(&p->kill_timer, proc_kill, p->kill_after_ms, 0);
  ARBOR_ASSERT(rc == 0);
  (void)rc;
}

/* Cancellation reached the parked fiber (its own, a deadline, a runtime close). */
static void proc_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  struct proc *p = arg;
  p->waiter = NULL;
  proc_stop(p);
}

int arbor_process_run_at(arbor_ctx_t *cx, const arbor_process_opts_t *opts,
                         arbor_process_result_t *result, const char *file, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  if (opts == NULL || opts->file == NULL || opts->file[0] == '\0' ||
      (opts->args != NULL && opts->args[0] == NULL) || opts->stop_signal < 0 ||
      opts->stop_signal >= NSIG)
    return ARBOR_EINVAL;
  struct proc *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ARBOR_ENOMEM;
  uv_loop_t *loop = cx->task->rt->loop;
  p->handle.data = p;
  p->kill_timer.data = p;
  p->stop_signal = opts->stop_signal != 0 ? opts->stop_signal : SIGTERM;
  p->kill_after_ms = opts->kill_after_ms != 0 ? opts->kill_after_ms : DEFAULT_KILL_AFTER_MS;
  rc = uv_timer_init(loop, &p->kill_timer);
  ARBOR_ASSERT(rc == 0);

  char *argv0[2] = {(char *)opts->file, NULL};
  uv_stdio_container_t stdio[3];
  memset(stdio, 0, sizeof stdio);
  stdio[0].flags = UV_IGNORE;    /* fds 0-2: libuv opens /dev/null */
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 1;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.exit_cb = proc_exited;
  o.file = opts->file;
  o.args = opts->args != NULL ? opts->args : argv0;
  o.env = opts->env;
  o.cwd = opts->cwd;
  o.flags = UV_PROCESS_DETACHED;
  o.stdio_count = 3;
  o.stdio = stdio;
  if ((rc = uv_spawn(loop, &p->handle, &o)) < 0) {
    proc_close(p);               /* libuv wants a failed uv_process_t closed too */
    return rc;
  }
  p->pid = p->handle.pid;
  ARBOR_ASSERT(p->pid > 0);      /* kill(-0, ...) would hit our own group */

  p->waiter = cx;
  rc = arbor__fiber_park(cx, "process_wait", file, line, proc_unhook, p);
  if (!p->exited) {
    /* Cancelled: the unhook started the stop (proc_stop again is a no-op, there for
     * a wake-up nobody planned). Wait for the exit, out of cancellation's reach:
     * the shield has no deadline and hides every outer one, so only proc_exited
     * wakes us, at the latest after the SIGKILL. */
    proc_stop(p);
    arbor_scope_t shield;
    int entered = arbor_scope_enter(cx, &shield, &(arbor_scope_opts_t){.shield = 1});
    ARBOR_ASSERT(entered == 0);
    (void)entered;
    while (!p->exited) {
      p->waiter = cx;
      arbor__fiber_park(cx, "process_wait", file, line, NULL, NULL);
    }
    p->waiter = NULL;
    arbor_scope_exit(cx, &shield);
    rc = ARBOR_ECANCELED;
  }
  if (result != NULL) {
    result->exit_status = p->exit_status;
    result->term_signal = p->term_signal;
    result->pid = p->pid;
    result->killed = p->killed;
  }
  proc_close(p);
  return rc;
}
