/* supervisor/procsvc.c - process services: an incarnation runs a program
 * (arbor.h, "supervision"; DESIGN.md, "Supervisors, services, processes").
 *
 * A process service is a SERVICE node whose spec has argv. Each incarnation is a
 * fiber task of kind PROCESS whose body is arbor__process_body: it spawns the
 * program, reports readiness, waits for the exit and turns it into the run's
 * outcome. service.c spawns the incarnation with the readiness handshake on,
 * cancels it to stop it, and calls arbor__process_kill when its shutdown timeout
 * expires while the program is still being stopped.
 *
 * The program gets a session and process group of its own (UV_PROCESS_DETACHED:
 * setsid), so a signal to -pid reaches everything it started that stayed in the
 * group; stdin is /dev/null, stdout and stderr are pipes read by the loop into the
 * service's log ring (logring.c), never blocking the program; with notify_fd N it
 * also gets the write end of a pipe as fd N. Orphans it leaves are reaped by
 * reaper.c (the child subreaper). A program with max_memory is watched by
 * memlimit.c from its spawn until it is reaped.
 *
 * Readiness (STARTED): at once after the spawn, or once the program has been up
 * min_uptime_ms, or once it wrote a newline to notify_fd (s6's notification-fd);
 * with both, once both happened. The fiber reports it (arbor_fiber_started), never
 * a libuv callback: the callbacks only wake the fiber. A program that exits before
 * it is ready fails the run, whatever its status.
 *
 * How a run ends:
 *  - the program exits by itself: status 0 is a normal end (the body returns 0);
 *    any other status fails the run with ARBOR_EEXIT, a signal with ARBOR_ESIGNAL;
 *    in the same loop callback that reaped it, the rest of its process group gets
 *    SIGKILL (a pgid is not reused while the group has members, and the leader was
 *    only just reaped, so the group is still the run's);
 *  - the incarnation is cancelled (a stop, a restart, a shutdown): the unhook
 *    sends the stop signal to the group and the fiber waits on, shielded, for the
 *    exit; SIGKILL comes from arbor__process_kill when service.c's shutdown timer
 *    says the stop takes too long. The body then returns ARBOR_ECANCELED, however
 *    the program ended: a requested stop is not a failure.
 * A program is always waited for, never abandoned, as in process.c (the model for
 * this file): everything libuv calls back into lives in one heap record, freed by
 * the last close callback, and signals go out only while the program is not
 * reaped.
 *
 * The error of a failed run is one line, so that arbor_error_format's chain stays
 * one error a line: "process NAME (pid N) exited with status 3" or "process NAME
 * (pid N) killed by signal 9 (SIGKILL)", then " before it was ready" if it was
 * not, then the last lines of its stderr from this run, at most 5 lines and 1 KiB,
 * quoted with C escapes (newlines as \n): `; stderr: "loading\nfatal: no config"`.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "internal.h"

#define NOTIFY_FD_MAX 1023       /* the stdio array has notify_fd + 1 entries */
#define READ_SIZE (16 * 1024)    /* one pipe read */
#define DRAIN_MAX_READS 64       /* after the exit: what is left in the pipes, bounded */
#define TAIL_SIZE 2048           /* stderr bytes of the current run kept */
#define TAIL_SHOWN 1024          /* ... of which the error shows at most this */
#define TAIL_LINES 5             /* ... and at most this many lines */
#define LOG_FILE_MIN_BYTES 64    /* a smaller max would rotate every line */
#define LOG_FILE_MAX_BACKUPS 1000
#define MAX_MEMORY_MIN (1024 * 1024)   /* less is surely a unit mistake: no program fits */
#define MAX_MEMORY_FOR_MS_MAX 86400000u

/* ------------------------------------------------------------------ specs */

struct arbor__proc_spec {
  char **argv;                   /* NULL-terminated, argv[0] the program */
  char **env;                    /* NULL: inherit arbor's */
  char *cwd;                     /* NULL: arbor's */
  int stop_signal;               /* 0 resolved to SIGTERM */
  int notify_fd;                 /* 0: none */
  uint64_t min_uptime_ms;
  size_t log_size;
  char *log_file;                /* absolute; NULL: none */
  uint64_t log_file_max_bytes;
  unsigned log_file_backups;
  int log_timestamps;
  struct arbor__runas *runas;    /* user, umask, rlimits, env_file (runas.c); NULL: none */
  uint64_t max_memory;           /* 0: no limit (memlimit.c) */
  uint64_t max_memory_for_ms;
};

static void strv_free(char **v) {
  if (v == NULL)
    return;
  for (char **p = v; *p != NULL; p++)
    free(*p);
  free(v);
}

/* A deep copy of a NULL-terminated string vector. ARBOR_ENOMEM. */
static int strv_dup(char *const *v, char ***out) {
  size_t n = 0;
  while (v[n] != NULL)
    n++;
  char **c = calloc(n + 1, sizeof *c);
  if (c == NULL)
    return ARBOR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if ((c[i] = strdup(v[i])) == NULL) {
      strv_free(c);
      return ARBOR_ENOMEM;
    }
  }
  *out = c;
  return 0;
}

/* log_file made absolute against arbor's cwd now, so that a later chdir (or the
 * program's cwd) does not move it. NULL when out of memory or too long. */
char *arbor__abs_path(const char *path) {
  if (path[0] == '/')
    return strlen(path) < PATH_MAX ? strdup(path) : NULL;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == NULL)
    return NULL;
  size_t c = strlen(cwd), l = strlen(path);
  char *p = c + 1 + l < PATH_MAX ? malloc(c + 1 + l + 1) : NULL;
  if (p != NULL) {
    memcpy(p, cwd, c);
    p[c] = '/';
    memcpy(p + c + 1, path, l + 1);
  }
  return p;
}

/* Validates the process part of a service spec and copies it (the caller's
 * strings may go away once arbor_service_add returns). Errors: ARBOR_EINVAL (no
 * argv, an empty one or an empty argv[0], stop_signal < 0 or >= NSIG, notify_fd
 * negative, 1, 2 or above NOTIFY_FD_MAX, log_file_max_bytes 1..63,
 * log_file_backups above 1000, a log_file path too long, max_memory 1 ..
 * MAX_MEMORY_MIN - 1, max_memory_for_ms without max_memory or above a day, and
 * runas.c's checks), ARBOR_EPERM (runas.c), ARBOR_ENOMEM. *out is the caller's. */
int arbor__proc_spec_new(const arbor_service_spec_t *spec, struct arbor__proc_spec **out) {
  if (spec == NULL || out == NULL || spec->argv == NULL || spec->argv[0] == NULL ||
      spec->argv[0][0] == '\0' || spec->stop_signal < 0 || spec->stop_signal >= NSIG ||
      spec->notify_fd < 0 || (spec->notify_fd > 0 && spec->notify_fd <= 2) ||
      spec->notify_fd > NOTIFY_FD_MAX ||
      (spec->log_file_max_bytes > 0 && spec->log_file_max_bytes < LOG_FILE_MIN_BYTES) ||
      spec->log_file_backups > LOG_FILE_MAX_BACKUPS ||
      (spec->log_file != NULL && strlen(spec->log_file) >= PATH_MAX) ||
      (spec->max_memory > 0 && spec->max_memory < MAX_MEMORY_MIN) ||
      (spec->max_memory == 0 && spec->max_memory_for_ms > 0) ||
      spec->max_memory_for_ms > MAX_MEMORY_FOR_MS_MAX)
    return ARBOR_EINVAL;
  struct arbor__proc_spec *ps = calloc(1, sizeof *ps);
  if (ps == NULL)
    return ARBOR_ENOMEM;
  if (strv_dup(spec->argv, &ps->argv) < 0 ||
      (spec->env != NULL && strv_dup(spec->env, &ps->env) < 0) ||
      (spec->cwd != NULL && (ps->cwd = strdup(spec->cwd)) == NULL)) {
    arbor__proc_spec_free(ps);
    return ARBOR_ENOMEM;
  }
  ps->stop_signal = spec->stop_signal != 0 ? spec->stop_signal : SIGTERM;
  ps->notify_fd = spec->notify_fd;
  ps->min_uptime_ms = spec->min_uptime_ms;
  ps->log_size = spec->log_size;
  ps->max_memory = spec->max_memory;
  ps->max_memory_for_ms = spec->max_memory_for_ms;
  if (spec->log_file != NULL && spec->log_file[0] != '\0') {
    errno = 0;
    if ((ps->log_file = arbor__abs_path(spec->log_file)) == NULL) {
      int rc = errno == ENOMEM ? ARBOR_ENOMEM : ARBOR_EINVAL;
      arbor__proc_spec_free(ps);
      return rc;
    }
    ps->log_file_max_bytes = spec->log_file_max_bytes;
    ps->log_file_backups = spec->log_file_backups;
    ps->log_timestamps = spec->log_timestamps;
  }
  int rc = arbor__runas_new(spec, &ps->runas, NULL, 0);
  if (rc < 0) {
    arbor__proc_spec_free(ps);
    return rc;
  }
  *out = ps;
  return 0;
}

const struct arbor__runas *arbor__proc_runas(const struct arbor__proc_spec *ps) {
  return ps->runas;
}

void arbor__proc_spec_memory(const struct arbor__proc_spec *ps, uint64_t *max_bytes,
                             uint64_t *for_ms) {
  *max_bytes = ps != NULL ? ps->max_memory : 0;
  *for_ms = ps != NULL ? ps->max_memory_for_ms : 0;
}

void arbor__proc_spec_free(struct arbor__proc_spec *ps) {
  if (ps == NULL)
    return;
  strv_free(ps->argv);
  strv_free(ps->env);
  free(ps->cwd);
  free(ps->log_file);
  arbor__runas_free(ps->runas);
  free(ps);
}

/* ---------------------------------------------------------- the record */

/* One run of the program: everything libuv calls back into. Every handle's data
 * is the record; it is freed by the last close callback. */
struct arbor__proc {
  struct arbor__owner own;       /* first: frees the record at its last handle's close */
  uv_process_t process;
  uv_pipe_t out, err;            /* the program's stdout and stderr (read ends) */
  uv_pipe_t notify;              /* notify_fd's read end, if has_notify */
  uv_timer_t uptime;             /* min_uptime_ms, if has_timer */
  arbor_node_t *svc;             /* the service node: its name, its log ring */
  arbor_ctx_t *waiter;           /* the fiber parked on this run, or NULL */
  int pid;                       /* also the process group's id */
  int stop_signal;
  int64_t exit_status;
  int term_signal;
  uint8_t exited;                /* libuv reaped it: signal nothing any more */
  uint8_t stopping;              /* the stop signal was sent */
  uint8_t killed;                /* arbor__process_kill sent SIGKILL */
  uint8_t has_process;           /* uv_spawn was called: the handle needs closing */
  uint8_t has_notify, has_timer;
  uint8_t need_notify;           /* readiness still waits for the newline */
  uint8_t need_uptime;           /* ... for min_uptime_ms */
  uint64_t tail_end;             /* stderr bytes of this run */
  char tail[TAIL_SIZE];          /* the last of them, a ring */
  char last[TAIL_SHOWN];         /* the error's share of them, in order */
  char text[TAIL_SHOWN * 4 + 64];   /* ... escaped (the record, not the fiber's stack) */
  char rdbuf[READ_SIZE];         /* every pipe read lands here, one at a time */
};
_Static_assert(offsetof(struct arbor__proc, own) == 0, "the owner frees the record through its own address");

static struct arbor__svc *svc_of(const struct arbor__proc *p) { return p->svc->u.svc; }

/* Every handle of the record is adopted by p->own: the record lives until the
 * last one's close callback, and the runtime's close waits for it. */
static void proc_opened(struct arbor__proc *p, uv_handle_t *h) { arbor__owner_adopt(&p->own, h); }

static void close_handle(uv_handle_t *h) { arbor__owner_close(h); }

static void proc_close(struct arbor__proc *p) {
  if (p->has_process)
    close_handle((uv_handle_t *)&p->process);
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  if (p->has_notify)
    close_handle((uv_handle_t *)&p->notify);
  if (p->has_timer)
    close_handle((uv_handle_t *)&p->uptime);
}

/* The handles the run needs, initialised (none started). ARBOR_ENOMEM. */
static int proc_new(arbor_node_t *svc, const struct arbor__proc_spec *ps,
                    struct arbor__proc **out) {
  /* Only the fields before the buffers are zeroed: the buffers (about 23 KiB)
   * stay untouched, so not resident, until the program writes something. With
   * calloc, 100 idle programs cost 1.8 MB more RSS (bench_supervise idle). */
  struct arbor__proc *p = malloc(sizeof *p);
  if (p == NULL)
    return ARBOR_ENOMEM;
  memset(p, 0, offsetof(struct arbor__proc, tail));
  uv_loop_t *loop = svc->rt->loop;
  p->own.rt = svc->rt;
  p->svc = svc;
  p->stop_signal = ps->stop_signal;
  /* uv_pipe_init and uv_timer_init cannot fail on a live loop. */
  int rc = uv_pipe_init(loop, &p->out, 0);
  rc |= uv_pipe_init(loop, &p->err, 0);
  proc_opened(p, (uv_handle_t *)&p->out);
  proc_opened(p, (uv_handle_t *)&p->err);
  if (ps->notify_fd > 0) {
    rc |= uv_pipe_init(loop, &p->notify, 0);
    proc_opened(p, (uv_handle_t *)&p->notify);
    p->has_notify = p->need_notify = 1;
  }
  if (ps->min_uptime_ms > 0) {
    rc |= uv_timer_init(loop, &p->uptime);
    proc_opened(p, (uv_handle_t *)&p->uptime);
    p->has_timer = p->need_uptime = 1;
  }
  ARBOR_ASSERT(rc == 0);
  *out = p;
  return 0;
}

/* ------------------------------------------------------------- wake-ups */

static void wake_waiter(struct arbor__proc *p) {
  arbor_ctx_t *cx = p->waiter;
  p->waiter = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, 0);
}

static int is_ready(const struct arbor__proc *p) { return !p->need_notify && !p->need_uptime; }

static void maybe_ready(struct arbor__proc *p) {
  if (is_ready(p))
    wake_waiter(p);
}

/* From the loop, in the callback in which libuv reaped the program. */
static void proc_exited(uv_process_t *h, int64_t exit_status, int term_signal) {
  struct arbor__proc *p = h->data;
  p->exited = 1;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  if (svc_of(p)->running == p) {
    svc_of(p)->running = NULL;
    arbor__memlimit_unwatch(p->svc);   /* its pid may be anyone's now */
  }
  /* Whatever is left of the run's group dies with it: its leader was reaped in
   * this very callback, so the pgid cannot have been reused (ESRCH when the group
   * is empty). */
  kill(-(pid_t)p->pid, SIGKILL);
  if (p->has_timer)
    uv_timer_stop(&p->uptime);
  wake_waiter(p);
}

static void on_uptime(uv_timer_t *t) {
  struct arbor__proc *p = t->data;
  p->need_uptime = 0;
  maybe_ready(p);
}

/* Keeps the last TAIL_SIZE bytes of the run's stderr. */
static void tail_write(struct arbor__proc *p, const char *b, size_t n) {
  if (n > TAIL_SIZE) {
    b += n - TAIL_SIZE;
    p->tail_end += n - TAIL_SIZE;
    n = TAIL_SIZE;
  }
  for (size_t i = 0; i < n; i++)
    p->tail[(p->tail_end + i) % TAIL_SIZE] = b[i];
  p->tail_end += n;
}

static void capture(struct arbor__proc *p, int is_err, const char *b, size_t n) {
  arbor__logring_write(&svc_of(p)->log, b, n);
  arbor__logfile_write(svc_of(p)->logfile, b, n);
  if (is_err)
    tail_write(p, b, n);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct arbor__proc *p = h->data;
  *buf = uv_buf_init(p->rdbuf, sizeof p->rdbuf);
}

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct arbor__proc *p = s->data;
  if (n > 0)
    capture(p, s == (uv_stream_t *)&p->err, buf->base, (size_t)n);
  else if (n < 0)
    uv_read_stop(s);             /* EOF (or an error): this stream is done */
}

/* A newline on notify_fd: the program says it is ready. Like s6, nothing more is
 * read from it: the read end closes (writes after that get EPIPE). */
static void on_notify(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct arbor__proc *p = s->data;
  if (n == 0 || (n > 0 && memchr(buf->base, '\n', (size_t)n) == NULL))
    return;                      /* nothing yet, or bytes without a newline */
  close_handle((uv_handle_t *)s);
  if (n > 0) {
    p->need_notify = 0;
    maybe_ready(p);
  }
  /* EOF before a newline: it can never report ready; the run goes on until it
   * exits or is stopped. */
}

/* Reads what the pipes still hold once the program exited: everything it wrote
 * is there by now, and its last lines are the ones that explain the exit. Done by
 * hand (the pipes are non-blocking) because the loop may not have polled them yet
 * and the error is built now. Bounded: an orphan that kept the pipe may write on. */
static void drain(struct arbor__proc *p, uv_pipe_t *pipe, int is_err) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)pipe, &fd) < 0)
    return;
  for (int i = 0; i < DRAIN_MAX_READS; i++) {
    ssize_t n = read(fd, p->rdbuf, sizeof p->rdbuf);
    if (n > 0)
      capture(p, is_err, p->rdbuf, (size_t)n);
    else if (n < 0 && errno == EINTR)
      continue;
    else
      return;
  }
}

/* ---------------------------------------------------------- stop and kill */

/* Sends the stop signal to the group, once, while the program is not reaped.
 * Never blocks: safe inside an unhook. */
static void proc_stop(struct arbor__proc *p) {
  if (p->exited || p->stopping)
    return;
  p->stopping = 1;
  kill(-(pid_t)p->pid, p->stop_signal);
}

static void proc_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  struct arbor__proc *p = arg;
  p->waiter = NULL;
  proc_stop(p);
}

void arbor__process_kill(arbor_node_t *svc) {
  if (svc == NULL || svc->kind != ARBOR_KIND_SERVICE)
    return;
  struct arbor__proc *p = svc->u.svc->running;
  if (p == NULL || p->exited || p->killed)
    return;                      /* reaped: its pid may be anyone's now */
  p->killed = 1;
  kill(-(pid_t)p->pid, SIGKILL);
}

int arbor__process_pid(const arbor_node_t *svc) {
  if (svc == NULL || svc->kind != ARBOR_KIND_SERVICE)
    return 0;
  const struct arbor__proc *p = svc->u.svc->running;
  return p != NULL && !p->exited ? p->pid : 0;
}

/* ------------------------------------------------------------- spawning */

/* Spawns the program with the record's pipes as its fds 1, 2 (and notify_fd).
 * Returns 0, ARBOR_ENOMEM, or libuv's error (-ENOENT, -EACCES ...). */
static int proc_spawn(struct arbor__proc *p, const struct arbor__proc_spec *ps,
                      const struct arbor__exec *x) {
  int count = ps->notify_fd > 0 ? ps->notify_fd + 1 : 3;
  uv_stdio_container_t few[3];
  uv_stdio_container_t *stdio = count <= 3 ? few : calloc((size_t)count, sizeof *stdio);
  if (stdio == NULL)
    return ARBOR_ENOMEM;
  for (int i = 0; i < count; i++)
    stdio[i].flags = UV_IGNORE;  /* 0: /dev/null (libuv); 3..N-1: left closed */
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&p->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&p->err;
  if (ps->notify_fd > 0) {
    stdio[ps->notify_fd].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[ps->notify_fd].data.stream = (uv_stream_t *)&p->notify;
  }
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.exit_cb = proc_exited;
  o.file = x->argv[0];
  o.args = x->argv;
  o.env = x->env;
  o.cwd = ps->cwd;
  o.flags = UV_PROCESS_DETACHED;
  o.stdio_count = count;
  o.stdio = stdio;
  int rc = uv_spawn(p->own.rt->loop, &p->process, &o);
  proc_opened(p, (uv_handle_t *)&p->process);   /* inited even when it failed */
  p->has_process = 1;
  if (stdio != few)
    free(stdio);
  if (rc < 0)
    return rc;
  p->pid = p->process.pid;
  ARBOR_ASSERT(p->pid > 0);      /* kill(-0, ...) would hit our own group */
  return 0;
}

/* Starts what watches the running program. The pipes were just opened by
 * uv_spawn, so reading cannot fail but for lack of memory in the kernel; a pipe
 * not read only loses output (and a notify pipe readiness), so that is ignored. */
static void proc_watch(struct arbor__proc *p, const struct arbor__proc_spec *ps) {
  (void)uv_read_start((uv_stream_t *)&p->out, on_alloc, on_output);
  (void)uv_read_start((uv_stream_t *)&p->err, on_alloc, on_output);
  if (p->has_notify)
    (void)uv_read_start((uv_stream_t *)&p->notify, on_alloc, on_notify);
  if (p->has_timer)
    uv_timer_start(&p->uptime, on_uptime, ps->min_uptime_ms, 0);
}

/* ------------------------------------------------------------- the error */

/* " (SIGKILL)", or "" for a signal without a name. */
static void signal_name(int sig, char *buf, size_t size) {
  buf[0] = '\0';
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev != NULL) {
    snprintf(buf, size, " (SIG%s)", abbrev);
    return;
  }
#else
  static const struct {
    int sig;
    const char *name;
  } names[] = {{SIGHUP, "HUP"},   {SIGINT, "INT"},   {SIGQUIT, "QUIT"}, {SIGILL, "ILL"},
               {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},   {SIGFPE, "FPE"},
               {SIGKILL, "KILL"}, {SIGUSR1, "USR1"}, {SIGSEGV, "SEGV"}, {SIGUSR2, "USR2"},
               {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"}, {SIGTERM, "TERM"}, {SIGXCPU, "XCPU"},
               {SIGXFSZ, "XFSZ"}, {SIGSYS, "SYS"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (names[i].sig == sig) {
      snprintf(buf, size, " (SIG%s)", names[i].name);
      return;
    }
  }
#endif
#ifdef SIGRTMIN
  if (sig >= SIGRTMIN && sig <= SIGRTMAX)
    snprintf(buf, size, " (SIGRTMIN+%d)", sig - SIGRTMIN);
#endif
}

/* Appends byte c to out, C-escaped when it is not printable. Returns the length. */
static size_t escape_byte(char *out, unsigned char c) {
  switch (c) {
  case '\n': memcpy(out, "\\n", 2); return 2;
  case '\t': memcpy(out, "\\t", 2); return 2;
  case '\r': memcpy(out, "\\r", 2); return 2;
  case '"': memcpy(out, "\\\"", 2); return 2;
  case '\\': memcpy(out, "\\\\", 2); return 2;
  default:
    if (c < 0x20 || c == 0x7f)
      return (size_t)snprintf(out, 5, "\\x%02x", c);
    out[0] = (char)c;
    return 1;
  }
}

/* p->text = `; stderr: "..."` with the run's last stderr lines, or "" when it
 * wrote none: at most TAIL_LINES lines and TAIL_SHOWN bytes, the final newline
 * dropped, "..." in front when something older was cut. */
static const char *stderr_tail(struct arbor__proc *p) {
  char *last = p->last;
  uint64_t have = p->tail_end < TAIL_SIZE ? p->tail_end : TAIL_SIZE;
  size_t n = have < TAIL_SHOWN ? (size_t)have : TAIL_SHOWN;
  for (size_t i = 0; i < n; i++)
    last[i] = p->tail[(p->tail_end - n + i) % TAIL_SIZE];
  int cut = p->tail_end > n;     /* older bytes did not fit */
  if (n > 0 && last[n - 1] == '\n')
    n--;
  size_t from = 0, lines = 1;
  for (size_t i = n; i-- > 0;) {
    if (last[i] == '\n' && ++lines > TAIL_LINES) {
      from = i + 1;
      break;
    }
  }
  if (from == n) {               /* nothing but a newline, or nothing */
    p->text[0] = '\0';
    return p->text;
  }
  size_t len = (size_t)snprintf(p->text, sizeof p->text, "; stderr: \"%s",
                                from > 0 || cut ? "..." : "");
  for (size_t i = from; i < n; i++)
    len += escape_byte(p->text + len, (unsigned char)last[i]);
  memcpy(p->text + len, "\"", 2);
  return p->text;
}

/* How the run ended, as an error; NULL for a normal end (status 0 once ready).
 * NULL too when out of memory: arbor_fiber_fail_error then fails with ENOMEM. No
 * source location: the program failed, not a line of arbor (as group errors). */
static arbor_error_t *exit_error(struct arbor__proc *p, int was_ready) {
  if (p->term_signal == 0 && p->exit_status == 0 && was_ready)
    return NULL;
  const char *name = p->svc->name, *when = was_ready ? "" : " before it was ready";
  const char *tail = stderr_tail(p);
  if (p->term_signal != 0) {
    char sig[32];
    signal_name(p->term_signal, sig, sizeof sig);
    return arbor_error_new_at(ARBOR_ESIGNAL, NULL, "", 0, "",
                              "process %s (pid %d) killed by signal %d%s%s%s", name, p->pid,
                              p->term_signal, sig, when, tail);
  }
  return arbor_error_new_at(ARBOR_EEXIT, NULL, "", 0, "",
                            "process %s (pid %d) exited with status %lld%s%s", name, p->pid,
                            (long long)p->exit_status, when, tail);
}

/* ------------------------------------------------------------- the body */

/* Parks until a callback wakes the fiber (readiness, exit), or cancellation
 * starts the stop. Returns 0 or ARBOR_ECANCELED. Cancellation may also have
 * arrived while the fiber ran (arbor_fiber_started runs the service's readiness
 * hooks): the checkpoint catches that, and the stop starts here. */
static int park_on(arbor_ctx_t *cx, struct arbor__proc *p, const char *what, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0) {
    proc_stop(p);
    return rc;
  }
  p->waiter = cx;
  rc = arbor__fiber_park(cx, what, __FILE__, line, proc_unhook, p);
  p->waiter = NULL;
  return rc;
}

/* The stop was sent: waits for the exit out of cancellation's reach (rule 6). A
 * shutdown that gives up wakes the fiber even here; it waits again, as the
 * program is still there (arbor__process_kill has sent SIGKILL by then). */
static void wait_exit_shielded(arbor_ctx_t *cx, struct arbor__proc *p) {
  proc_stop(p);
  arbor_scope_t shield;
  int entered = arbor_scope_enter(cx, &shield, &(arbor_scope_opts_t){.shield = 1});
  ARBOR_ASSERT(entered == 0);
  (void)entered;
  while (!p->exited) {
    p->waiter = cx;
    arbor__fiber_park(cx, "process_stop", __FILE__, __LINE__, NULL, NULL);
  }
  p->waiter = NULL;
  arbor_scope_exit(cx, &shield);
}

/* A spawn that failed: the run fails with libuv's code and says what (the exec
 * helper, when it was the helper that could not run). */
static int spawn_failed(arbor_ctx_t *cx, arbor_node_t *svc, const struct arbor__exec *x,
                        int rc) {
  return arbor_fiber_fail_error(
      cx, arbor_error_new_at(rc, NULL, "", 0, "", "process %s: cannot run %s%s%s: %s", svc->name,
                             x->helper ? "its exec helper " : "", x->argv[0],
                             x->helper ? " (for user, group, umask or rlimits)" : "",
                             uv_strerror(rc)));
}

/* The log file's trouble, told once: into the ring, where the API, the
 * dashboard's log tail and `arbor ctl log` show it beside the output it lost. */
static void logfile_error(void *svc_node, const char *line, size_t len) {
  arbor_node_t *svc = svc_node;
  arbor__logring_write(&svc->u.svc->log, line, len);
}

/* At a run's start: the service's log file as the spec wants it. The same
 * settings keep the open file (a broken one is tried again: a restart is a
 * retry); others replace it, counters carried over. Out of memory: no log file
 * for this run, said in the ring; the run itself goes on. */
static void logfile_prepare(arbor_node_t *svc, const struct arbor__proc_spec *ps) {
  struct arbor__svc *s = svc->u.svc;
  struct arbor__logfile *old = s->logfile, *lf = NULL;
  if (old != NULL && ps->log_file != NULL &&
      arbor__logfile_same(old, ps->log_file, ps->log_file_max_bytes, ps->log_file_backups,
                          ps->log_timestamps)) {
    arbor__logfile_retry(old);
    return;
  }
  if (ps->log_file != NULL) {
    if (arbor__logfile_new(svc->rt, ps->log_file, ps->log_file_max_bytes, ps->log_file_backups,
                           ps->log_timestamps, &lf) < 0) {
      static const char oom[] = "arbor: log file: out of memory; not written this run\n";
      arbor__logring_write(&s->log, oom, sizeof oom - 1);
    } else {
      arbor__logfile_on_error(lf, logfile_error, svc);
      if (old != NULL)
        arbor__logfile_take_counts(lf, old);
    }
  }
  arbor__logfile_close(old);
  s->logfile = lf;
}

/* An incarnation of a process service (arg: the SERVICE node). */
int arbor__process_body(arbor_ctx_t *cx, void *svc_node) {
  arbor_node_t *svc = svc_node;
  const struct arbor__proc_spec *ps = svc->u.svc->proc;
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  logfile_prepare(svc, ps);
  if (ps->max_memory > 0 && (rc = arbor__memlimit_reserve(svc->rt)) < 0)
    return rc;
  /* The argv and environment of this run: through arbor-exec, with the env file
   * read now (runas.c). A file that cannot be read fails the run, named. */
  struct arbor__exec x;
  char why[640];
  if ((rc = arbor__exec_prepare(svc->rt, ps->runas, ps->argv, ps->env, &x, why, sizeof why)) < 0)
    return arbor_fiber_fail_error(
        cx, arbor_error_new_at(rc, NULL, "", 0, "", "process %s: %s", svc->name, why));
  struct arbor__proc *p;
  if ((rc = proc_new(svc, ps, &p)) < 0) {
    arbor__exec_free(&x);
    return rc;
  }
  rc = proc_spawn(p, ps, &x);
  if (rc < 0) {
    proc_close(p);
    rc = spawn_failed(cx, svc, &x, rc);
    arbor__exec_free(&x);
    return rc;
  }
  arbor__exec_free(&x);
  svc->u.svc->running = p;
  proc_watch(p, ps);
  if (ps->max_memory > 0)
    arbor__memlimit_watch(svc, p->pid, ps->max_memory, ps->max_memory_for_ms);

  int cancelled = 0, was_ready = 0;
  if (!is_ready(p))
    cancelled = park_on(cx, p, "process_ready", __LINE__) < 0;
  if (!cancelled && is_ready(p)) {   /* ready (maybe it exited in the same pass) */
    was_ready = 1;
    (void)arbor_fiber_started(cx, NULL);
    if (!p->exited)
      cancelled = park_on(cx, p, "process_wait", __LINE__) < 0;
  }
  if (cancelled && !p->exited)
    wait_exit_shielded(cx, p);
  ARBOR_ASSERT(p->exited);

  drain(p, &p->out, 0);
  drain(p, &p->err, 1);
  arbor_error_t *err = cancelled ? NULL : exit_error(p, was_ready);
  int failed = !cancelled && !(was_ready && p->term_signal == 0 && p->exit_status == 0);
  proc_close(p);
  if (cancelled)
    return ARBOR_ECANCELED;
  return failed ? arbor_fiber_fail_error(cx, err) : 0;
}
