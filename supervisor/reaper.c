/* supervisor/reaper.c - arbor as the child subreaper: orphans of the programs it
 * runs are re-parented to arbor (Linux, PR_SET_CHILD_SUBREAPER) and reaped here,
 * so no zombie of a process service's run remains.
 *
 * The runtime's loop watches SIGCHLD (a uv_signal_t, unreferenced: it must not
 * keep the loop alive), so an exit is handled when the kernel reports it: no
 * polling, no tick. libuv watches SIGCHLD too, through the same signal machinery
 * (its loop->child_watcher), and reaps its own children with waitpid(pid) one by
 * one; both watchers get every SIGCHLD, in either order.
 *
 * Which children are ours to reap: never waitpid(-1), which would steal libuv's
 * exit statuses. On each SIGCHLD the children of this process are listed
 * (/proc/self/task/T/children, else a scan of /proc) and one is reaped
 * (waitpid(pid, WNOHANG)) only if
 *   - it is not in arbor's own session: a program runs in a session of its own
 *     (UV_PROCESS_DETACHED: setsid), so everything it starts, and every orphan
 *     re-parented to us, is outside our session, while children the embedding
 *     program forks itself (system(), popen()) stay in ours and are left to it;
 *   - and it is not the pid of a uv_process_t on this loop (a service's program
 *     itself, arbor_process_run's children, the embedder's uv_spawn): libuv
 *     reaps those and reports their status.
 * A uv_spawn'd child on another thread's loop would not be recognised: one
 * runtime per process that runs programs is the supported setup.
 *
 * The subreaper attribute is process-wide, so it is reference-counted across
 * runtimes: set when the first reaper starts (unless it was set already) and
 * cleared again when the last one closes, so that once no runtime reaps them,
 * orphans go back to init instead of becoming zombies of this process.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "internal.h"

struct arbor__reaper {
  uv_signal_t sigchld;           /* sigchld.data = this */
  arbor_runtime_t *rt;
  int subreaper;                 /* holds a subreaper_acquire */
};

/* ------------------------------------------------------- the subreaper bit */

static pthread_mutex_t subreaper_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned subreaper_users;
static int subreaper_ours;       /* we set it (it was clear before the first user) */

/* Best effort: without it (not Linux, or refused) orphans go to init, which reaps
 * them too; only the zombie-free guarantee for our own subtree is lost. */
static void subreaper_acquire(void) {
  pthread_mutex_lock(&subreaper_lock);
  if (subreaper_users++ == 0) {
#ifdef __linux__
    int on = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0) == 0 && !on)
      subreaper_ours = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
#endif
  }
  pthread_mutex_unlock(&subreaper_lock);
}

static void subreaper_release(void) {
  pthread_mutex_lock(&subreaper_lock);
  if (--subreaper_users == 0 && subreaper_ours) {
#ifdef __linux__
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
#endif
    subreaper_ours = 0;
  }
  pthread_mutex_unlock(&subreaper_lock);
}

/* ------------------------------------------------------------ the children */

/* Field 6 (the session) of /proc/PID/stat, or -1 when the process is gone. The
 * command name (field 2) may hold spaces and parentheses: parse after the last
 * ')'. *ppid receives field 4. */
static pid_t proc_session(pid_t pid, pid_t *ppid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  int pp, pgrp, sid;
  char state;
  if (p == NULL || sscanf(p + 1, " %c %d %d %d", &state, &pp, &pgrp, &sid) != 4)
    return -1;
  if (ppid != NULL)
    *ppid = pp;
  return sid;
}

struct pid_check {
  pid_t pid;
  int found;
};

static void pid_walk(uv_handle_t *h, void *arg) {
  struct pid_check *c = arg;
  if (h->type == UV_PROCESS && ((uv_process_t *)h)->pid == c->pid)
    c->found = 1;
}

/* 1 when pid is a child libuv watches on this loop: its status is libuv's. */
static int is_libuv_child(uv_loop_t *loop, pid_t pid) {
  struct pid_check c = {pid, 0};
  uv_walk(loop, pid_walk, &c);
  return c.found;
}

/* Reaps pid if it is ours to reap (see the top of the file) and has exited. */
static void maybe_reap(uv_loop_t *loop, pid_t pid, pid_t our_sid) {
  pid_t sid = proc_session(pid, NULL);
  if (sid < 0 || sid == our_sid || is_libuv_child(loop, pid))
    return;
  pid_t r;
  do
    r = waitpid(pid, NULL, WNOHANG);
  while (r < 0 && errno == EINTR);
}

/* 1 when the kernel lists each thread's children (CONFIG_PROC_CHILDREN). */
static int have_task_lists(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
  return access(path, R_OK) == 0;
}

/* Orphans are re-parented to some thread of the subreaper, so every thread's
 * list is read (a thread that just exited has none: skipped). */
static void reap_from_task_lists(uv_loop_t *loop, pid_t our_sid) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", atoi(e->d_name));
    FILE *f = fopen(path, "re");
    if (f == NULL)
      continue;
    int pid;
    while (fscanf(f, "%d", &pid) == 1)
      maybe_reap(loop, (pid_t)pid, our_sid);
    fclose(f);
  }
  closedir(d);
}

/* The fallback: every process whose parent is us. */
static void reap_from_proc_scan(uv_loop_t *loop, pid_t our_sid) {
  DIR *d = opendir("/proc");
  if (d == NULL)
    return;
  pid_t self = getpid();
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;
    if (proc_session(pid, &ppid) >= 0 && ppid == self)
      maybe_reap(loop, pid, our_sid);
  }
  closedir(d);
}

static void reap_orphans(arbor_runtime_t *rt) {
  pid_t our_sid = getsid(0);
  if (have_task_lists())
    reap_from_task_lists(rt->loop, our_sid);
  else
    reap_from_proc_scan(rt->loop, our_sid);
}

static void on_sigchld(uv_signal_t *h, int signum) {
  (void)signum;
  struct arbor__reaper *r = h->data;
  reap_orphans(r->rt);
}

/* --------------------------------------------------------- start and close */

/* Idempotent. Errors: libuv's from uv_signal_start (nothing changes then),
 * ARBOR_ENOMEM. */
int arbor__reaper_start(arbor_runtime_t *rt) {
  if (rt->reaper != NULL)
    return 0;
  struct arbor__reaper *r = calloc(1, sizeof *r);
  if (r == NULL)
    return ARBOR_ENOMEM;
  int rc = uv_signal_init(rt->loop, &r->sigchld);
  if (rc < 0) {
    free(r);
    return rc;
  }
  r->sigchld.data = r;
  r->rt = rt;
  rt->handles_open++;
  rt->reaper = r;
  if ((rc = uv_signal_start(&r->sigchld, on_sigchld, SIGCHLD)) < 0) {
    arbor__reaper_close(rt);
    return rc;
  }
  uv_unref((uv_handle_t *)&r->sigchld);
  subreaper_acquire();
  r->subreaper = 1;
  return 0;
}

static void reaper_closed(uv_handle_t *h) {
  struct arbor__reaper *r = h->data;
  arbor_runtime_t *rt = r->rt;
  free(r);
  arbor__runtime_handle_closed(rt);
}

/* The runtime closes its handles: a last pass reaps the orphans that are already
 * gone (their SIGCHLD may still be queued in the loop), then the watcher closes
 * and the subreaper bit is given back. */
void arbor__reaper_close(arbor_runtime_t *rt) {
  struct arbor__reaper *r = rt->reaper;
  if (r == NULL)
    return;
  rt->reaper = NULL;
  if (r->subreaper) {
    reap_orphans(rt);
    subreaper_release();
  }
  uv_close((uv_handle_t *)&r->sigchld, reaper_closed);
}
