/* supervisor/probe.c - a service's health probes: Kubernetes' liveness and
 * readiness probes (HTTP GET, TCP connect, a command), run by the loop itself.
 *
 * A probe belongs to its service (struct arbor__svc's probe[role]) and runs only
 * while a run of it lives: service.c starts it with each incarnation and stops
 * it when the incarnation stops or ends, so a new run starts over (counters in a
 * row and readiness back to zero). One uv_timer_t per probe paces it: it fires
 * for the next attempt, and while an attempt is in flight it is the attempt's
 * timeout. A service without probes has no timer at all, so an idle arbor still
 * never wakes up (bench_supervise's idle figure).
 *
 * An attempt is a heap record of its own (struct attempt), because what libuv
 * calls back into must outlive the probe: a stop, a timeout or the service's
 * end abandons the attempt (attempt->p = NULL), closes its handles and lets the
 * last close callback free it, as procsvc.c's record: both are owned through
 * struct arbor__owner (internal.h), which also holds the runtime open, so its
 * close waits for every handle and pending request.
 *  - HTTP: connect, write "GET path HTTP/1.1" (Host, Connection: close), read
 *    until the status line's end (bounded to STATUS_MAX bytes); 200..399 pass, as
 *    Kubernetes. No TLS, no redirects followed (a 3xx passes), no body read.
 *  - TCP: the connect is accepted.
 *  - EXEC: uv_spawn with UV_PROCESS_DETACHED (a session and process group of its
 *    own), stdin /dev/null, stdout and stderr into one pipe of which the first
 *    OUTPUT_MAX bytes are kept for the error. libuv reaps it (reaper.c leaves the
 *    pids of uv_process_t handles alone) and the handle stays open until its exit
 *    callback, even when the attempt was abandoned: a timeout sends SIGKILL to
 *    its group, so no probe child is ever left a zombie or unreaped.
 * A host given as a name is resolved at each attempt with uv_getaddrinfo (libuv's
 * thread pool), never on the loop; an IP address is parsed once, at add.
 *
 * Verdicts (service.c acts on them): a liveness probe that fails
 * failure_threshold times in a row fails the run with arbor_service_fail, "liveness
 * probe failed 3 times in a row" caused by the last attempt's error; a readiness
 * probe turns ready after success_threshold passes in a row and not ready after
 * failure_threshold failures in a row (arbor__svc_readiness). Every failed attempt
 * is a PROBE_FAILED event on the service with its error; passes are only counted:
 * a hundred services probed every second would otherwise flush the event ring.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_INTERVAL_MS 10000
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_FAILURES 3
#define DEFAULT_SUCCESSES 1
#define TIME_MAX_MS 86400000u    /* a day: longer is a mistake, not a setting */
#define THRESHOLD_MAX 1000000u
#define HOST_MAX 253             /* a DNS name's longest */
#define PATH_MAX_LEN 1024
#define TARGET_MAX 256           /* an exec probe's shown command line */
#define STATUS_MAX 512           /* bytes read for an HTTP status line */
#define OUTPUT_MAX 512           /* an exec probe's output kept for the error */

/* --------------------------------------------------------------- records */

struct probe_timer {             /* heap: may outlive the probe while closing */
  uv_timer_t handle;
  struct arbor__probe *p;        /* NULL once closing */
  arbor_runtime_t *rt;
};

struct attempt;

struct arbor__probe {
  arbor_health_probe_t spec;     /* defaults filled in; host, path, argv owned */
  arbor_probe_role_t role;
  arbor_node_t *svc;             /* set at the first start */
  struct sockaddr_storage addr;  /* HTTP, TCP with an IP address */
  int have_addr;                 /* 0: spec.host is a name, resolved at each attempt */
  char *what;                    /* "HTTP GET http://h:p/path", "TCP connect h:p", "exec x" */
  char *target;                  /* "http://h:p/path", "h:p", the command line */
  char *request;                 /* HTTP: the request bytes */
  size_t request_len;
  struct probe_timer *timer;     /* NULL until the first start */
  struct attempt *att;           /* the attempt in flight, or NULL */
  uint64_t att_start_ms;         /* loop ms it began */
  int active;                    /* a run lives: attempts are made */
  int passing;
  uint32_t fails_row, oks_row;
  uint64_t oks, fails, timeouts;
  uint64_t last_time_ns, last_duration_ns;
  int last_ok;
  arbor_error_t *last_error;
};

struct attempt {
  struct arbor__owner own;       /* first: frees the attempt at its last callback */
  union {
    uv_tcp_t tcp;
    uv_process_t process;
  } h;
  uv_pipe_t out;                 /* EXEC: stdout + stderr */
  uv_connect_t connect;
  uv_write_t write;
  uv_getaddrinfo_t gai;
  struct arbor__probe *p;        /* NULL once abandoned */
  uint8_t has_h, has_out, exited;
  uint8_t resolving;             /* the uv_getaddrinfo is pending */
  int pid;
  int64_t exit_status;
  int term_signal;
  uint64_t t0_ns;
  size_t len;                    /* bytes in buf */
  char buf[STATUS_MAX > OUTPUT_MAX ? STATUS_MAX : OUTPUT_MAX];
  char rd[4096];                 /* every read lands here */
  char request[];                /* HTTP: a copy, the write's buffer */
};
_Static_assert(offsetof(struct attempt, own) == 0, "the owner frees the record through its own address");

/* ----------------------------------------------------------------- names */

const char *arbor_probe_kind_name(arbor_probe_kind_t k) {
  switch (k) {
  case ARBOR_PROBE_HTTP: return "http";
  case ARBOR_PROBE_TCP: return "tcp";
  case ARBOR_PROBE_EXEC: return "exec";
  }
  return "unknown";
}

const char *arbor_probe_role_name(arbor_probe_role_t r) {
  switch (r) {
  case ARBOR_PROBE_LIVENESS: return "liveness";
  case ARBOR_PROBE_READINESS: return "readiness";
  }
  return "unknown";
}

/* ------------------------------------------------------------- the spec */

static int path_ok(const char *s) {
  if (s[0] != '/' || strlen(s) > PATH_MAX_LEN)
    return 0;
  for (; *s != '\0'; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
      return 0;
  return 1;
}

/* A name or an address: letters, digits and ". - _ :" (IPv6), nothing that could
 * split the Host header or the URL. */
static int host_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > HOST_MAX)
    return 0;
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '-' || c == '_' || c == ':' || c == '%'))
      return 0;
  }
  return 1;
}

static void strv_free(char **v) {
  if (v == NULL)
    return;
  for (char **p = v; *p != NULL; p++)
    free(*p);
  free(v);
}

static char **strv_dup(char *const *v) {
  size_t n = 0;
  while (v[n] != NULL)
    n++;
  char **c = calloc(n + 1, sizeof *c);
  for (size_t i = 0; c != NULL && i < n; i++) {
    if ((c[i] = strdup(v[i])) == NULL) {
      strv_free(c);
      return NULL;
    }
  }
  return c;
}

/* The exec probe's command line for people: its words joined, cut at TARGET_MAX. */
static char *argv_text(char *const *argv) {
  char *t = malloc(TARGET_MAX);
  if (t == NULL)
    return NULL;
  size_t len = 0;
  for (size_t i = 0; argv[i] != NULL && len < TARGET_MAX - 1; i++)
    len += (size_t)snprintf(t + len, TARGET_MAX - len, "%s%s", i > 0 ? " " : "", argv[i]);
  if (len >= TARGET_MAX)
    memcpy(t + TARGET_MAX - 4, "...", 4);
  return t;
}

/* A formatted copy; NULL when out of memory. */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s != NULL) {
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  return s;
}

void arbor__probe_free(struct arbor__probe *p);

/* Validates spec and copies it with defaults filled in. Errors: ARBOR_EINVAL
 * (as arbor_service_add says), ARBOR_ENOMEM. */
int arbor__probe_new(const arbor_health_probe_t *spec, arbor_probe_role_t role,
                     struct arbor__probe **out) {
  if (spec == NULL || out == NULL || spec->kind < ARBOR_PROBE_HTTP ||
      spec->kind > ARBOR_PROBE_EXEC || spec->interval_ms > TIME_MAX_MS ||
      spec->timeout_ms > TIME_MAX_MS || spec->initial_delay_ms > TIME_MAX_MS ||
      spec->failure_threshold > THRESHOLD_MAX || spec->success_threshold > THRESHOLD_MAX ||
      (role == ARBOR_PROBE_LIVENESS && spec->success_threshold > 1))
    return ARBOR_EINVAL;
  const char *host = spec->host != NULL ? spec->host : "127.0.0.1";
  const char *path = spec->path != NULL ? spec->path : "/";
  if (spec->kind == ARBOR_PROBE_EXEC) {
    if (spec->argv == NULL || spec->argv[0] == NULL || spec->argv[0][0] == '\0')
      return ARBOR_EINVAL;
  } else if (spec->port < 1 || spec->port > 65535 || !host_ok(host) ||
             (spec->kind == ARBOR_PROBE_HTTP && !path_ok(path))) {
    return ARBOR_EINVAL;
  }
  struct arbor__probe *p = calloc(1, sizeof *p);
  if (p == NULL)
    return ARBOR_ENOMEM;
  p->role = role;
  p->spec = *spec;
  p->spec.host = NULL;
  p->spec.path = NULL;
  p->spec.argv = NULL;
  p->spec.interval_ms = spec->interval_ms > 0 ? spec->interval_ms : DEFAULT_INTERVAL_MS;
  p->spec.timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : DEFAULT_TIMEOUT_MS;
  p->spec.failure_threshold = spec->failure_threshold > 0 ? spec->failure_threshold
                                                          : DEFAULT_FAILURES;
  p->spec.success_threshold = spec->success_threshold > 0 ? spec->success_threshold
                                                          : DEFAULT_SUCCESSES;
  int ok;
  if (spec->kind == ARBOR_PROBE_EXEC) {
    char **argv = strv_dup(spec->argv);
    p->spec.argv = argv;
    ok = argv != NULL && (p->target = argv_text(argv)) != NULL &&
         (p->what = str_printf("exec %s", argv[0])) != NULL;
  } else {
    p->have_addr = uv_ip4_addr(host, spec->port, (struct sockaddr_in *)&p->addr) == 0 ||
                   uv_ip6_addr(host, spec->port, (struct sockaddr_in6 *)&p->addr) == 0;
    int v6 = strchr(host, ':') != NULL;  /* an IPv6 address: in brackets before a port */
    ok = (p->spec.host = strdup(host)) != NULL && (p->spec.path = strdup(path)) != NULL &&
         (p->target = str_printf("%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
                                 spec->port)) != NULL;
    if (ok && spec->kind == ARBOR_PROBE_TCP) {
      ok = (p->what = str_printf("TCP connect %s", p->target)) != NULL;
    } else if (ok) {
      char *hostport = p->target;
      ok = (p->target = str_printf("http://%s%s", hostport, path)) != NULL &&
           (p->what = str_printf("HTTP GET %s", p->target)) != NULL &&
           (p->request = str_printf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: arbor-probe\r\n"
                                    "Accept: */*\r\nConnection: close\r\n\r\n",
                                    path, hostport)) != NULL;
      free(hostport);
      if (ok)
        p->request_len = strlen(p->request);
    }
  }
  if (!ok) {
    arbor__probe_free(p);
    return ARBOR_ENOMEM;
  }
  *out = p;
  return 0;
}

static void attempt_abandon(struct attempt *a);

static void timer_closed(uv_handle_t *h) {
  struct probe_timer *t = h->data;
  arbor_runtime_t *rt = t->rt;
  free(t);
  arbor__runtime_handle_closed(rt);
}

/* Stops the probe and lets its timer go: the service finished. Kept readable. */
static void probe_close(struct arbor__probe *p) {
  p->active = 0;
  if (p->att != NULL)
    attempt_abandon(p->att);
  if (p->timer != NULL) {
    p->timer->p = NULL;
    uv_close((uv_handle_t *)&p->timer->handle, timer_closed);
    p->timer = NULL;
  }
}

void arbor__probe_free(struct arbor__probe *p) {
  if (p == NULL)
    return;
  probe_close(p);
  free((char *)p->spec.host);
  free((char *)p->spec.path);
  strv_free((char **)p->spec.argv);
  free(p->what);
  free(p->target);
  free(p->request);
  arbor_error_unref(p->last_error);
  free(p);
}

/* ------------------------------------------------------------- attempts */

static void attempt_opened(struct attempt *a, uv_handle_t *h) { arbor__owner_adopt(&a->own, h); }

static void close_handle(uv_handle_t *h) { arbor__owner_close(h); }

/* The probe lets go of its attempt: its callbacks see p == NULL and only close.
 * A program still running gets SIGKILL to its group (its exit closes it). */
static void attempt_abandon(struct attempt *a) {
  struct arbor__probe *p = a->p;
  if (p != NULL)
    p->att = NULL;
  a->p = NULL;
  if (a->resolving)              /* still queued: its callback comes with UV_ECANCELED */
    (void)uv_cancel((uv_req_t *)&a->gai);
  if (a->has_h && a->h.process.type == UV_PROCESS && !a->exited && a->pid > 0)
    kill(-(pid_t)a->pid, SIGKILL);   /* never -0: that is arbor's own group */
  if (a->has_out)
    close_handle((uv_handle_t *)&a->out);
  if (a->has_h && (a->h.process.type != UV_PROCESS || a->exited))
    close_handle((uv_handle_t *)&a->h);
}

static void probe_result(struct arbor__probe *p, arbor_error_t *err, int timed_out,
                         uint64_t duration_ns);

/* The attempt has its answer: err NULL passes (a reference, taken). */
static void attempt_end(struct attempt *a, arbor_error_t *err) {
  struct arbor__probe *p = a->p;
  uint64_t d = uv_hrtime() - a->t0_ns;
  attempt_abandon(a);
  probe_result(p, err, 0, d);
}

/* "WHAT: fmt", no source location: the service failed its probe, not a line of
 * arbor (as procsvc.c's exit errors). NULL when out of memory (the result then
 * counts as a failure without a text: the runtime's preallocated error). */
static arbor_error_t *attempt_error(struct arbor__probe *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static arbor_error_t *attempt_error(struct arbor__probe *p, int code, const char *fmt, ...) {
  char msg[OUTPUT_MAX * 4 + 128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  arbor_error_t *e = arbor_error_new_at(code, NULL, "", 0, "", "%s: %s", p->what, msg);
  return e != NULL ? e : arbor_error_ref(p->svc->rt->oom_error);
}

static void fail_uv(struct attempt *a, const char *step, int rc) {
  attempt_end(a, attempt_error(a->p, rc, "%s%s%s", step, step[0] != '\0' ? ": " : "",
                               uv_strerror(rc)));
}

/* -------------------------------------------------------------- HTTP, TCP */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct attempt *a = h->data;
  *buf = uv_buf_init(a->rd, sizeof a->rd);
}

/* "HTTP/1.1 503 Service Unavailable": the code, or -1 for anything else. */
static int status_code(const char *line, size_t n) {
  if (n < 12 || memcmp(line, "HTTP/", 5) != 0)
    return -1;
  const char *sp = memchr(line, ' ', n);
  if (sp == NULL || (size_t)(sp - line) + 4 > n)
    return -1;
  int code = 0;
  for (int i = 1; i <= 3; i++) {
    if (sp[i] < '0' || sp[i] > '9')
      return -1;
    code = code * 10 + (sp[i] - '0');
  }
  return code;
}

static void on_http_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct attempt *a = s->data;
  if (a->p == NULL)
    return;
  if (n < 0) {
    if (n == UV_EOF)
      attempt_end(a, attempt_error(a->p, ARBOR_EPROBE, "connection closed before a status line"));
    else
      fail_uv(a, "read", (int)n);
    return;
  }
  size_t take = (size_t)n < sizeof a->buf - a->len ? (size_t)n : sizeof a->buf - a->len;
  memcpy(a->buf + a->len, buf->base, take);
  a->len += take;
  char *nl = memchr(a->buf, '\n', a->len);
  if (nl == NULL) {
    if (a->len == STATUS_MAX)
      attempt_end(a, attempt_error(a->p, ARBOR_EPROBE, "no status line in the first %d bytes",
                                   STATUS_MAX));
    return;                      /* more to come */
  }
  int code = status_code(a->buf, (size_t)(nl - a->buf));
  if (code < 0)
    attempt_end(a, attempt_error(a->p, ARBOR_EPROBE, "not an HTTP response"));
  else if (code >= 200 && code < 400)
    attempt_end(a, NULL);
  else
    attempt_end(a, attempt_error(a->p, ARBOR_EPROBE, "status %d", code));
}

static void on_http_write(uv_write_t *w, int status) {
  struct attempt *a = w->data;
  if (a->p != NULL && status < 0)
    fail_uv(a, "send", status);
}

static void on_connect(uv_connect_t *c, int status) {
  struct attempt *a = c->data;
  if (a->p == NULL)
    return;
  if (status < 0) {
    fail_uv(a, a->p->spec.kind == ARBOR_PROBE_HTTP ? "connect" : "", status);
    return;
  }
  if (a->p->spec.kind == ARBOR_PROBE_TCP) {
    attempt_end(a, NULL);
    return;
  }
  uv_buf_t b = uv_buf_init(a->request, (unsigned)a->p->request_len);
  a->write.data = a;
  int rc = uv_write(&a->write, (uv_stream_t *)&a->h.tcp, &b, 1, on_http_write);
  if (rc == 0)
    rc = uv_read_start((uv_stream_t *)&a->h.tcp, on_alloc, on_http_read);
  if (rc < 0)
    fail_uv(a, "send", rc);
}

static void connect_to(struct attempt *a, const struct sockaddr *addr) {
  int rc = uv_tcp_init(a->own.rt->loop, &a->h.tcp);
  ARBOR_ASSERT(rc == 0);         /* cannot fail on a live loop: no socket yet */
  attempt_opened(a, (uv_handle_t *)&a->h.tcp);
  a->has_h = 1;
  a->connect.data = a;
  rc = uv_tcp_connect(&a->connect, &a->h.tcp, addr, on_connect);
  if (rc < 0)
    fail_uv(a, a->p->spec.kind == ARBOR_PROBE_HTTP ? "connect" : "", rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct attempt *a = req->data;
  a->resolving = 0;
  if (a->p != NULL) {
    if (status < 0)
      fail_uv(a, "resolve", status);
    else
      connect_to(a, res->ai_addr);
  }
  uv_freeaddrinfo(res);
  arbor__owner_release(&a->own);
}

static void resolve(struct attempt *a) {
  char port[8];
  snprintf(port, sizeof port, "%d", a->p->spec.port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  a->gai.data = a;
  arbor__owner_hold(&a->own);    /* the request holds the record until its callback */
  int rc = uv_getaddrinfo(a->own.rt->loop, &a->gai, on_resolved, a->p->spec.host, port, &hints);
  if (rc < 0) {
    /* No callback comes, and nothing else of the attempt is open yet: the
     * hold is let go here, which frees the record (it leaked, one per
     * attempt, when libuv had no memory to copy the host name). */
    fail_uv(a, "resolve", rc);
    arbor__owner_release(&a->own);
    return;
  }
  a->resolving = 1;
}

/* ------------------------------------------------------------------ EXEC */

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

/* The output kept, escaped, without its last newline: `: "..."`, or "". */
static void output_text(const struct attempt *a, char *out, size_t size) {
  size_t n = a->len;
  while (n > 0 && (a->buf[n - 1] == '\n' || a->buf[n - 1] == '\r'))
    n--;
  out[0] = '\0';
  if (n == 0 || size < OUTPUT_MAX * 4 + 8)
    return;
  size_t len = (size_t)snprintf(out, size, ": \"");
  for (size_t i = 0; i < n; i++)
    len += escape_byte(out + len, (unsigned char)a->buf[i]);
  memcpy(out + len, "\"", 2);
}

static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct attempt *a = s->data;
  if (n < 0) {
    uv_read_stop(s);
    return;
  }
  size_t take = (size_t)n < OUTPUT_MAX - a->len ? (size_t)n : OUTPUT_MAX - a->len;
  memcpy(a->buf + a->len, buf->base, take);
  a->len += take;
}

/* What is still in the pipe once the program exited: its last words explain the
 * exit, and the loop may not have polled the pipe yet. Bounded. */
static void drain_out(struct attempt *a) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&a->out, &fd) < 0)
    return;
  for (int i = 0; i < 4 && a->len < OUTPUT_MAX; i++) {
    ssize_t n = read(fd, a->rd, sizeof a->rd);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    uv_buf_t b = uv_buf_init(a->rd, (unsigned)n);
    on_out((uv_stream_t *)&a->out, n, &b);
  }
}

static void on_probe_exit(uv_process_t *h, int64_t status, int sig) {
  struct attempt *a = h->data;
  a->exited = 1;
  a->exit_status = status;
  a->term_signal = sig;
  /* What it left in its group dies with it: the leader was reaped in this very
   * callback, so the pgid is still its own (procsvc.c does the same). */
  kill(-(pid_t)a->pid, SIGKILL);
  if (a->p == NULL) {            /* abandoned: only the process was left open */
    close_handle((uv_handle_t *)&a->h);
    return;
  }
  drain_out(a);
  char text[OUTPUT_MAX * 4 + 8];
  output_text(a, text, sizeof text);
  if (sig != 0)
    attempt_end(a, attempt_error(a->p, ARBOR_ESIGNAL, "killed by signal %d%s", sig, text));
  else if (status != 0)
    attempt_end(a, attempt_error(a->p, ARBOR_EEXIT, "exited with status %lld%s",
                                 (long long)status, text));
  else
    attempt_end(a, NULL);
}

static void spawn(struct attempt *a) {
  struct arbor__probe *p = a->p;
  uv_file fds[2];
  int rc = uv_pipe(fds, 0, 0);   /* both ends close-on-exec; dup2 clears it in the child */
  if (rc < 0) {
    fail_uv(a, "pipe", rc);
    return;
  }
  rc = uv_pipe_init(a->own.rt->loop, &a->out, 0);
  ARBOR_ASSERT(rc == 0);
  attempt_opened(a, (uv_handle_t *)&a->out);
  a->has_out = 1;
  if ((rc = uv_pipe_open(&a->out, fds[0])) < 0) {
    close(fds[0]);
    close(fds[1]);
    fail_uv(a, "pipe", rc);
    return;
  }
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;    /* /dev/null */
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = fds[1];
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = fds[1];
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.exit_cb = on_probe_exit;
  o.file = p->spec.argv[0];
  o.args = (char **)p->spec.argv;
  o.flags = UV_PROCESS_DETACHED; /* its own process group: a timeout kills it all */
  o.stdio_count = 3;
  o.stdio = stdio;
  rc = uv_spawn(a->own.rt->loop, &a->h.process, &o);
  close(fds[1]);
  attempt_opened(a, (uv_handle_t *)&a->h.process);   /* inited even when it failed */
  a->has_h = 1;
  if (rc < 0) {
    a->exited = 1;               /* nothing to reap: close it with the rest */
    fail_uv(a, "cannot run", rc);
    return;
  }
  a->pid = a->h.process.pid;
  (void)uv_read_start((uv_stream_t *)&a->out, on_alloc, on_out);
}

/* ---------------------------------------------------------------- pacing */

static void on_timer(uv_timer_t *h);

static void attempt_begin(struct arbor__probe *p) {
  size_t extra = p->spec.kind == ARBOR_PROBE_HTTP ? p->request_len : 0;
  p->att_start_ms = uv_now(p->svc->rt->loop);   /* the next one paces from here, even
                                                   when this one cannot be made */
  struct attempt *a = malloc(sizeof *a + extra);
  if (a == NULL) {
    probe_result(p, arbor_error_ref(p->svc->rt->oom_error), 0, 0);
    return;
  }
  memset(a, 0, offsetof(struct attempt, buf));
  if (extra > 0)
    memcpy(a->request, p->request, extra);
  a->p = p;
  a->own.rt = p->svc->rt;
  a->t0_ns = uv_hrtime();
  p->att = a;
  uv_timer_start(&p->timer->handle, on_timer, p->spec.timeout_ms, 0);
  if (p->spec.kind == ARBOR_PROBE_EXEC)
    spawn(a);
  else if (p->have_addr)
    connect_to(a, (const struct sockaddr *)&p->addr);
  else
    resolve(a);
}

/* The next attempt at interval_ms from this one's start (at once if that is
 * past: a slow attempt never makes two overlap). */
static void schedule_next(struct arbor__probe *p) {
  uint64_t now = uv_now(p->svc->rt->loop);
  uint64_t due = p->att_start_ms + p->spec.interval_ms;
  uv_timer_start(&p->timer->handle, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *h) {
  struct probe_timer *t = h->data;
  struct arbor__probe *p = t->p;
  if (p == NULL || !p->active)
    return;
  if (p->att == NULL) {
    attempt_begin(p);
    return;
  }
  /* The attempt outlived its timeout: it fails, and is abandoned. */
  struct attempt *a = p->att;
  uint64_t d = uv_hrtime() - a->t0_ns;
  arbor_error_t *err = attempt_error(p, ARBOR_ETIMEDOUT, "timed out after %llu ms",
                                     (unsigned long long)p->spec.timeout_ms);
  attempt_abandon(a);
  probe_result(p, err, 1, d);
}

/* --------------------------------------------------------------- verdicts */

static void probe_result(struct arbor__probe *p, arbor_error_t *err, int timed_out,
                         uint64_t duration_ns) {
  arbor_node_t *svc = p->svc;
  p->last_time_ns = arbor__now();
  p->last_duration_ns = duration_ns;
  p->last_ok = err == NULL;
  if (err == NULL) {
    p->oks++;
    p->oks_row++;
    p->fails_row = 0;
  } else {
    p->fails++;
    p->timeouts += timed_out != 0;
    p->fails_row++;
    p->oks_row = 0;
    arbor_error_unref(p->last_error);
    p->last_error = err;         /* the probe's reference */
    arbor__error_set_node(err, svc->id);   /* only an error nobody else holds yet */
    arbor__record(svc, ARBOR_EVENT_PROBE_FAILED, err);
  }
  schedule_next(p);
  if (p->role == ARBOR_PROBE_LIVENESS) {
    if (err == NULL || p->fails_row < p->spec.failure_threshold)
      return;
    p->passing = 0;
    arbor_error_t *v = arbor_error_new_at(ARBOR_EPROBE, arbor_error_ref(err), "", 0, "",
                                          "liveness probe failed %u times in a row",
                                          (unsigned)p->fails_row);
    /* The run stops: arbor__probes_stop stops this probe from inside. */
    (void)arbor_service_fail(svc, v != NULL ? v : arbor_error_ref(svc->rt->oom_error));
    return;
  }
  if (!p->passing && err == NULL && p->oks_row >= p->spec.success_threshold) {
    p->passing = 1;
    arbor__svc_readiness(svc, 1, NULL);
  } else if (p->passing && err != NULL && p->fails_row >= p->spec.failure_threshold) {
    p->passing = 0;
    arbor_error_t *v = arbor_error_new_at(ARBOR_EPROBE, arbor_error_ref(err), "", 0, "",
                                          "readiness probe failed %u times in a row",
                                          (unsigned)p->fails_row);
    arbor__svc_readiness(svc, 0, v != NULL ? v : arbor_error_ref(svc->rt->oom_error));
  }
}

/* ------------------------------------------------------- service.c's hooks */

/* Before a run's start: the probe's timer exists (ARBOR_ENOMEM), so that
 * starting it cannot fail. */
int arbor__probe_prepare(struct arbor__probe *p, arbor_node_t *svc) {
  if (p == NULL || p->timer != NULL)
    return 0;
  struct probe_timer *t = calloc(1, sizeof *t);
  if (t == NULL)
    return ARBOR_ENOMEM;
  int rc = uv_timer_init(svc->rt->loop, &t->handle);
  ARBOR_ASSERT(rc == 0);
  (void)rc;
  t->handle.data = t;
  t->p = p;
  t->rt = svc->rt;
  svc->rt->handles_open++;
  p->timer = t;
  p->svc = svc;
  return 0;
}

/* A run starts: attempts from initial_delay_ms on, counted afresh. */
void arbor__probe_start(struct arbor__probe *p) {
  if (p == NULL || p->timer == NULL)
    return;
  if (p->att != NULL)
    attempt_abandon(p->att);
  p->active = 1;
  p->passing = p->role == ARBOR_PROBE_LIVENESS;
  p->fails_row = p->oks_row = 0;
  uv_timer_start(&p->timer->handle, on_timer, p->spec.initial_delay_ms, 0);
}

/* The run stops or ended: no more attempts; one in flight is abandoned. */
void arbor__probe_stop(struct arbor__probe *p) {
  if (p == NULL || !p->active)
    return;
  p->active = 0;
  if (p->att != NULL)
    attempt_abandon(p->att);
  if (p->timer != NULL)
    uv_timer_stop(&p->timer->handle);
}

/* The service FINISHED: the timer closes (before the runtime's close waits on
 * it); the rest stays readable until the node is freed. */
void arbor__probe_close(struct arbor__probe *p) {
  if (p != NULL)
    probe_close(p);
}

int arbor__probe_passing(const struct arbor__probe *p) { return p == NULL || p->passing; }

int arbor_service_probe_info(const arbor_node_t *svc, arbor_probe_role_t role,
                             arbor_probe_info_t *info) {
  if (svc == NULL || info == NULL || (unsigned)role > ARBOR_PROBE_READINESS)
    return ARBOR_EINVAL;
  if (svc->kind != ARBOR_KIND_SERVICE)
    return ARBOR_EKIND;
  const struct arbor__probe *p = svc->u.svc->probe[role];
  if (p == NULL)
    return ARBOR_ENOENT;
  memset(info, 0, sizeof *info);
  info->kind = p->spec.kind;
  info->target = p->target;
  info->active = p->active;
  info->passing = p->passing;
  info->failures_in_row = p->fails_row;
  info->successes_in_row = p->oks_row;
  info->successes = p->oks;
  info->failures = p->fails;
  info->timeouts = p->timeouts;
  info->last_time_ns = p->last_time_ns;
  info->last_duration_ns = p->last_duration_ns;
  info->last_ok = p->last_ok;
  info->last_error = p->last_error;
  info->spec = p->spec;
  return 0;
}
