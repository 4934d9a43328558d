/* cmd/daemon.c - the run loop of `arbor run` and `arbor demo` (daemon.h).
 *
 * Everything runs on one loop thread: the runtime, the admin server and the
 * daemon's own four signal watchers, one timer and the idle handle of trace
 * dumps (tracefile.h). The timer (every 100 ms, not
 * keeping the loop alive) logs failures and restarts from the event ring and
 * watches for readiness: READY=1 goes out once every service and supervisor is
 * STARTED. The watchers and the timer take part in the runtime's close
 * (supervisor/extension.h), so they are closed before arbor_run frees the
 * runtime and no callback of ours ever sees a freed runtime.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "arbor.h"
#include "config.h"
#include "daemon.h"
#include "extension.h"

#include "demo.h"
#include "tracefile.h"

#define TICK_MS 100
#define EVENTS_PER_TICK 256

struct daemon {
  const struct daemon_args *args;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  struct config cfg;
  int have_cfg;
  struct config_live live;       /* the admin API's live service changes, on cfg */
  arbor_admin_services_t services;
  uint64_t top_id;               /* the config's supervisor, or 0 (demo) */

  uv_signal_t sigterm, sigint, sighup, sigusr1;
  uv_timer_t tick;
  struct tracefile tf;           /* SIGUSR1's dumps; its idle handle is ours */
  const char *trace_out;         /* --trace-out, else the config's; NULL: none */
  arbor_trace_format_t trace_format;
  struct arbor__closer closer;
  int handles_closed;            /* the closer ran: the runtime is going away */
  int stopping;                  /* SIGTERM/SIGINT seen */
  int ready;                     /* READY=1 sent since the last (re)load */
  uint64_t cursor;               /* the next event to log */
  uint64_t last_failed_id, last_failed_time;   /* the failure logged last */

  int notify_fd;                 /* $NOTIFY_SOCKET's socket, or -1 */
  struct sockaddr_un notify_addr;
  socklen_t notify_len;
};

/* One line on stderr: "arbor: ...". */
__attribute__((format(printf, 1, 2))) static void logf_(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "arbor: %s\n", line);
  fflush(stderr);
}

/* ---------------------------------------------------------------- notify
 *
 * systemd's sd_notify protocol without libsystemd: datagrams of "KEY=VALUE"
 * lines to the unix socket named by $NOTIFY_SOCKET ('@' first: the abstract
 * namespace). The variable is removed from the environment so that the programs
 * arbor runs do not talk to systemd in arbor's name.
 */
static void notify_open(struct daemon *d) {
  d->notify_fd = -1;
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0')
    return;
  size_t len = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof d->notify_addr.sun_path) {
    logf_("NOTIFY_SOCKET=%s: expected an absolute path or @name; not notifying", path);
    unsetenv("NOTIFY_SOCKET");
    return;
  }
  memset(&d->notify_addr, 0, sizeof d->notify_addr);
  d->notify_addr.sun_family = AF_UNIX;
  memcpy(d->notify_addr.sun_path, path, len);
  if (path[0] == '@')
    d->notify_addr.sun_path[0] = '\0';
  d->notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
  d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (d->notify_fd < 0)
    logf_("NOTIFY_SOCKET: socket: %s; not notifying", strerror(errno));
  unsetenv("NOTIFY_SOCKET");
}

static void notify(struct daemon *d, const char *msg) {
  if (d->notify_fd < 0)
    return;
  if (sendto(d->notify_fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&d->notify_addr,
             d->notify_len) < 0)
    logf_("NOTIFY_SOCKET: cannot send %.*s: %s", (int)strcspn(msg, "\n"), msg, strerror(errno));
}

static void notify_close(struct daemon *d) {
  if (d->notify_fd >= 0)
    close(d->notify_fd);
  d->notify_fd = -1;
}

/* ------------------------------------------------------------ readiness */

static int not_started(arbor_node_t *n, int depth, void *arg) {
  (void)depth;
  (void)arg;
  arbor_kind_t k = arbor_node_kind(n);
  if ((k == ARBOR_KIND_SERVICE || k == ARBOR_KIND_SUPERVISOR) && !arbor_node_is_finished(n) &&
      arbor_node_state(n) != ARBOR_STATE_STARTED)
    return -1;
  return 0;
}

/* READY=1 once every live service and supervisor is STARTED (as /readyz). */
static void check_ready(struct daemon *d) {
  if (d->ready || d->stopping)
    return;
  if (arbor_tree_walk(arbor_root(d->rt), -1, not_started, NULL) < 0)
    return;
  d->ready = 1;
  logf_("ready: every service is started");
  notify(d, "READY=1\nSTATUS=every service is started");
}

/* ------------------------------------------------------------- event log */

static const char *name_of(arbor_runtime_t *rt, uint64_t id) {
  arbor_node_t *n = arbor_node_find(rt, id);
  return n != NULL ? arbor_node_name(n) : "?";
}

/* A failure worth a line: a service's run (its incarnation: a program, or a
 * fiber under a service), a service or a supervisor. Tasks inside a run report
 * through the run. */
static void log_failed(struct daemon *d, const arbor_event_t *e) {
  const char *what = e->error != NULL ? arbor_error_message(e->error) : "failed";
  /* A supervisor that gives up records its failure, then fails with it: once. */
  uint64_t t = e->error != NULL ? arbor_error_time_ns(e->error) : 0;
  if (e->node_id == d->last_failed_id && t == d->last_failed_time)
    return;
  d->last_failed_id = e->node_id;
  d->last_failed_time = t;
  if (e->kind == ARBOR_KIND_SERVICE || e->kind == ARBOR_KIND_SUPERVISOR) {
    logf_("%s %s (id %llu) failed: %s", arbor_kind_name(e->kind), name_of(d->rt, e->node_id),
          (unsigned long long)e->node_id, what);
    return;
  }
  arbor_node_t *parent = arbor_node_find(d->rt, e->parent_id);
  if (parent == NULL || arbor_node_kind(parent) != ARBOR_KIND_SERVICE)
    return;
  /* "run api#3 (id 9)": the incarnation's own name counts the runs; its id is
   * what the API and arbor ctl take. */
  logf_("service %s (id %llu): run %s (id %llu) failed: %s", arbor_node_name(parent),
        (unsigned long long)e->parent_id, name_of(d->rt, e->node_id),
        (unsigned long long)e->node_id, what);
}

static void log_events(struct daemon *d) {
  arbor_event_t ev[32];
  for (int total = 0; total < EVENTS_PER_TICK;) {
    int n = arbor_events_read(d->rt, &d->cursor, ev, sizeof ev / sizeof ev[0], NULL);
    if (n <= 0)
      return;
    for (int i = 0; i < n; i++) {
      if (ev[i].type == ARBOR_EVENT_FAILED)
        log_failed(d, &ev[i]);
      else if (ev[i].type == ARBOR_EVENT_RESTART && !d->stopping)
        logf_("%s %s (id %llu) restarting", arbor_kind_name(ev[i].kind),
              name_of(d->rt, ev[i].node_id), (unsigned long long)ev[i].node_id);
    }
    total += n;
  }
}

/* A log file's trouble gets one line when it starts and one when it ends (the
 * library says the same in the service's log ring), not one per write. Polled
 * on the tick that already runs; only services with a log_file are looked at. */
static void log_file_errors(struct daemon *d, struct config_node *n) {
  for (size_t i = 0; i < n->nchildren; i++)
    log_file_errors(d, &n->children[i]);
  if (n->is_supervisor || n->log_file == NULL || n->id == 0)
    return;
  arbor_node_t *node = arbor_node_find(d->rt, n->id);
  arbor_log_file_info_t lf;
  if (node == NULL || arbor_service_log_file_info(node, &lf) < 0 || !lf.enabled ||
      lf.error == n->log_file_told)
    return;
  if (lf.error != 0)
    logf_("service %s (id %llu): log file %s: %s; output dropped until it can be written "
          "(tried again at the service's next start)",
          n->name, (unsigned long long)n->id, n->log_file, uv_strerror(lf.error));
  else
    logf_("service %s (id %llu): log file %s: writing again (%llu bytes dropped in all)",
          n->name, (unsigned long long)n->id, n->log_file,
          (unsigned long long)lf.bytes_dropped);
  n->log_file_told = lf.error;
}

static void on_tick(uv_timer_t *t) {
  struct daemon *d = t->data;
  log_events(d);
  check_ready(d);
  if (d->have_cfg)
    log_file_errors(d, &d->cfg.top);
}

/* ---------------------------------------------------------------- reload */

static void apply_overrides(struct daemon *d, struct config *cfg) {
  if (d->args->bind != NULL) {
    char *b = strdup(d->args->bind);
    if (b != NULL) {
      free(cfg->bind);
      cfg->bind = b;
    }
  }
  if (d->args->port_set)
    cfg->port = d->args->port;
}

static void reload(struct daemon *d) {
  if (!d->have_cfg) {
    logf_("SIGHUP: nothing to reload (the demo has no config)");
    return;
  }
  if (d->stopping) {
    logf_("SIGHUP: not reloading: shutting down");
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char msg[128];
  snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
  notify(d, msg);
  d->ready = 0;                  /* READY=1 again once the tree is ready */

  struct config next;
  char err[CONFIG_ERR_MAX];
  if (config_load(d->args->config, &next, err, sizeof err) < 0) {
    logf_("reload failed, still running the previous config: %s", err);
    return;
  }
  apply_overrides(d, &next);
  struct config_diff diff;
  int rc = config_reload(&d->cfg, &next, d->rt, &diff, err, sizeof err);
  config_free(&d->cfg);
  d->cfg = next;
  if (rc < 0 && diff.failed == 0)
    logf_("reload incomplete: %s", err);
  logf_("reloaded: %u restarted, %u added, %u removed%s", diff.restarted, diff.added,
        diff.removed, diff.failed > 0 ? " (some changes failed: see above)" : "");
  if (diff.admin_changed)
    logf_("restart needed for admin, shutdown_timeout_ms or event_capacity changes");
}

/* --------------------------------------------------------------- signals */

/* SIGUSR1: the trace as it is now, to --trace-out (else a file in $TMPDIR),
 * written in the background. */
static void dump_trace(struct daemon *d) {
  char fallback[512];
  const char *path = d->trace_out;
  if (path == NULL) {
    const char *dir = getenv("TMPDIR");
    snprintf(fallback, sizeof fallback, "%s/arbor-%d.trace%s.json",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp", (int)getpid(),
             d->trace_format == ARBOR_TRACE_OTLP ? ".otlp" : "");
    path = fallback;
  }
  int rc = tracefile_start(&d->tf, path, d->trace_format);
  if (rc < 0)
    logf_("SIGUSR1: cannot write the trace to %s: %s", path, arbor_strerror(rc));
  else
    logf_("SIGUSR1: writing the trace to %s", path);
}

static void on_signal(uv_signal_t *s, int signum) {
  struct daemon *d = s->data;
  if (signum == SIGHUP) {
    reload(d);
    return;
  }
  if (signum == SIGUSR1) {
    dump_trace(d);
    return;
  }
  const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
  if (!d->stopping) {
    d->stopping = 1;
    logf_("%s: shutting down (send it again to stop at once)", name);
    notify(d, "STOPPING=1");
    (void)arbor_shutdown(d->rt, 0);
  } else {
    logf_("%s again: stopping at once", name);
    (void)arbor_shutdown(d->rt, 1);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  struct daemon *d = h->data;
  arbor__runtime_release(d->rt);
}

static void on_idle_closed(uv_handle_t *h) {
  struct tracefile *tf = h->data;
  arbor__runtime_release(tf->rt);
}

/* Why the tree ended, while its nodes can still be read. */
static void report_failures(struct daemon *d) {
  for (arbor_node_t *n = arbor_node_first_child(arbor_root(d->rt)); n != NULL;
       n = arbor_node_next_sibling(n)) {
    const arbor_error_t *e = arbor_node_error(n);
    if (arbor_node_outcome(n) != ARBOR_OUTCOME_FAILED || e == NULL)
      continue;
    logf_("stopping because %s %s (id %llu) failed:", arbor_kind_name(arbor_node_kind(n)), arbor_node_name(n),
          (unsigned long long)arbor_node_id(n));
    arbor_error_print(e, stderr);
  }
}

/* The runtime's close: every node has FINISHED. */
static void on_runtime_closing(struct arbor__closer *c) {
  struct daemon *d = (struct daemon *)((char *)c - offsetof(struct daemon, closer));
  d->handles_closed = 1;
  log_events(d);
  report_failures(d);
  if (!d->stopping)
    notify(d, "STOPPING=1");
  /* Nothing recorded is lost: the tree has ended and can still be read. */
  tracefile_abort(&d->tf);
  if (d->trace_out != NULL) {
    size_t bytes = 0;
    int rc = tracefile_write_now(d->rt, d->trace_out, d->trace_format, &bytes);
    if (rc < 0)
      logf_("cannot write the trace to %s: %s", d->trace_out, arbor_strerror(rc));
    else
      logf_("trace written to %s (%zu bytes)", d->trace_out, bytes);
  }
  uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
  uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
  uv_close((uv_handle_t *)&d->sighup, on_handle_closed);
  uv_close((uv_handle_t *)&d->sigusr1, on_handle_closed);
  uv_close((uv_handle_t *)&d->tick, on_handle_closed);
  uv_close((uv_handle_t *)&d->tf.idle, on_idle_closed);   /* its data is the tracefile */
}

static void on_init_failed_closed(uv_handle_t *h) { (void)h; }

/* Our watchers and timer. All or nothing: once they run, the runtime's close
 * closes them (on_runtime_closing). */
static int start_handles(struct daemon *d) {
  uv_signal_t *sigs[] = {&d->sigterm, &d->sigint, &d->sighup, &d->sigusr1};
  int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
  uv_handle_t *all[] = {(uv_handle_t *)&d->sigterm, (uv_handle_t *)&d->sigint,
                        (uv_handle_t *)&d->sighup,  (uv_handle_t *)&d->sigusr1,
                        (uv_handle_t *)&d->tick,    (uv_handle_t *)&d->tf.idle};
  int rc = 0;
  size_t i;
  for (i = 0; i < 4 && rc == 0; i++)
    rc = uv_signal_init(&d->loop, sigs[i]);
  if (rc == 0 && (rc = uv_timer_init(&d->loop, &d->tick)) < 0)
    i++;                         /* not initialised: not to be closed below */
  if (rc == 0 && (rc = tracefile_init(&d->tf, &d->loop, d->rt)) < 0)
    i += 2;                      /* the timer is closed, the idle handle is not */
  if (rc < 0) {
    for (size_t k = 0; k + 1 < i; k++)
      uv_close(all[k], on_init_failed_closed);
    return rc;
  }
  arbor__runtime_hold(d->rt);    /* the idle handle */
  for (i = 0; i < 4; i++) {
    sigs[i]->data = d;
    uv_signal_start(sigs[i], on_signal, nums[i]);
    uv_unref((uv_handle_t *)sigs[i]);   /* they must not keep an ended tree running */
    arbor__runtime_hold(d->rt);
  }
  d->tick.data = d;
  uv_timer_start(&d->tick, on_tick, 0, TICK_MS);
  uv_unref((uv_handle_t *)&d->tick);
  arbor__runtime_hold(d->rt);
  d->closer.close = on_runtime_closing;
  arbor__runtime_add_closer(d->rt, &d->closer);
  /* A write to a client that went away must not kill the supervisor. */
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

/* --------------------------------------------------------------- startup */

/* The URL a browser on this machine opens: a wildcard bind is reachable on
 * loopback; IPv6 goes in brackets. */
static void print_url(const char *bind, int port) {
  const char *host = bind;
  if (strcmp(bind, "0.0.0.0") == 0)
    host = "127.0.0.1";
  else if (strcmp(bind, "::") == 0)
    host = "::1";
  int v6 = strchr(host, ':') != NULL;
  printf("arbor: dashboard at http://%s%s%s:%d/\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
  fflush(stdout);
}

static int start_admin(struct daemon *d) {
  arbor_admin_opts_t o = {.bind = "127.0.0.1", .port = 7070};
  if (d->have_cfg) {
    o.bind = d->cfg.bind;
    o.port = d->cfg.port;
    o.token = d->cfg.token;
    o.token_file = d->cfg.token_file;
    o.max_connections = d->cfg.max_connections;
    o.cors_origin = d->cfg.cors_origin;
    /* cfg is replaced in place by a reload (d->cfg = next): the pointer holds. */
    d->live.cfg = &d->cfg;
    d->live.rt = d->rt;
    config_live_callbacks(&d->live, &d->services);
    o.services = &d->services;
  } else {
    if (d->args->bind != NULL)
      o.bind = d->args->bind;
    if (d->args->port_set)
      o.port = d->args->port;
  }
  int rc = arbor_admin_start(d->rt, &o, &d->admin);
  if (rc < 0) {
    logf_("cannot start the admin server on %s port %d: %s%s", o.bind, o.port,
          arbor_strerror(rc),
          rc == ARBOR_EACCES ? " (a non-loopback address needs a token)" : "");
    return rc == ARBOR_EINVAL || rc == ARBOR_EACCES ? EXIT_USAGE : EXIT_FAILED;
  }
  return EXIT_OK;
}

static int build_tree(struct daemon *d) {
  char err[CONFIG_ERR_MAX];
  int rc;
  if (d->have_cfg) {
    if ((rc = config_build(&d->cfg, arbor_root(d->rt), err, sizeof err)) < 0) {
      logf_("%s", err);
      return rc;
    }
    d->top_id = d->cfg.top.id;
    /* `run --demo`: fibers and callback tasks (which a config cannot name) beside
     * the config's programs, under the root, where a reload never looks: one
     * daemon with every kind of node, for tests/chaos/ and the soak. */
    if (!d->args->with_demo)
      return 0;
  }
  if ((rc = arbor_demo_build(d->rt, arbor_root(d->rt), NULL)) < 0) {
    logf_("cannot build the demo: %s", arbor_strerror(rc));
    return rc;
  }
  return 0;
}

/* A runtime on our loop, with the config's limits. */
static int open_runtime(struct daemon *d) {
  arbor_runtime_opts_t o = {.no_signals = 1};   /* ours: SIGHUP and the log too */
  char helper[PATH_MAX];
  o.exec_helper = daemon_exec_helper(helper, sizeof helper);
  if (d->have_cfg) {
    o.event_capacity = d->cfg.event_capacity;
    o.shutdown_timeout_ms = d->cfg.shutdown_timeout_ms;
  }
  int rc = uv_loop_init(&d->loop);
  if (rc < 0)
    return rc;
  if ((rc = arbor_runtime_new(&d->rt, &d->loop, &o)) < 0) {
    uv_loop_close(&d->loop);
    return rc;
  }
  arbor_events_stats_t st;
  arbor_events_stats(d->rt, &st);
  d->cursor = st.first_seq;
  return 0;
}

int daemon_main(const struct daemon_args *args) {
  struct daemon d = {.args = args, .notify_fd = -1};
  char err[CONFIG_ERR_MAX];
  if (args->config != NULL) {
    if (config_load(args->config, &d.cfg, err, sizeof err) < 0) {
      fprintf(stderr, "arbor: %s\n", err);
      return EXIT_USAGE;
    }
    d.have_cfg = 1;
    apply_overrides(&d, &d.cfg);
    if (args->check_only) {
      printf("%s: ok\n", args->config);
      config_free(&d.cfg);
      return EXIT_OK;
    }
  }
  notify_open(&d);
  int rc = open_runtime(&d);
  if (rc < 0) {
    logf_("cannot start: %s", arbor_strerror(rc));
    config_free(&d.cfg);
    notify_close(&d);
    return EXIT_FAILED;
  }
  d.trace_out = args->trace_out != NULL ? args->trace_out : d.cfg.trace_out;
  d.trace_format = args->trace_format != 0     ? (arbor_trace_format_t)args->trace_format
                   : d.cfg.trace_format != 0 ? (arbor_trace_format_t)d.cfg.trace_format
                                             : arbor_trace_format_for_path(d.trace_out);
  /* Who the traces say they come from (OTLP's service.name). */
  (void)arbor_node_attr_set(arbor_root(d.rt), "service.name",
                            d.cfg.service_name != NULL ? d.cfg.service_name : "arbor");
  const char *endpoint = args->otlp_endpoint != NULL ? args->otlp_endpoint : d.cfg.otlp_endpoint;
  if (endpoint != NULL) {
    arbor_otlp_t *otlp;
    rc = arbor_otlp_start(d.rt,
                          &(arbor_otlp_opts_t){.endpoint = endpoint,
                                               .service_name = d.cfg.service_name},
                          &otlp);
    if (rc < 0)
      logf_("cannot push spans to %s: %s", endpoint, arbor_strerror(rc));
    else
      logf_("pushing finished spans to %s (OTLP/HTTP JSON)", endpoint);
  }
  /* The admin server first: a port in use must start nothing. The tree starts
   * from the loop, so nothing of it runs unless arbor_run is reached. */
  int status = start_admin(&d);
  if (status == EXIT_OK && build_tree(&d) < 0)
    status = EXIT_FAILED;
  if (status == EXIT_OK && (rc = start_handles(&d)) < 0) {
    logf_("cannot watch signals: %s", arbor_strerror(rc));
    status = EXIT_FAILED;
  }
  if (status == EXIT_OK)
    print_url(d.have_cfg ? d.cfg.bind : args->bind != NULL ? args->bind : "127.0.0.1",
              arbor_admin_port(d.admin));
  else
    (void)arbor_shutdown(d.rt, 1);   /* nothing of it may run */
  rc = arbor_run(d.rt);          /* frees the runtime */
  d.rt = NULL;
  if (status == EXIT_OK && rc < 0) {
    status = EXIT_FAILED;
    logf_("stopped: %s", arbor_strerror(rc));
  } else if (status == EXIT_OK) {
    logf_("stopped");
  }
  uv_run(&d.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&d.loop) != 0)
    logf_("the loop still had handles open at exit");
  config_free(&d.cfg);
  notify_close(&d);
  return status;
}
