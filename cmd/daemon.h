/* cmd/daemon.h - the run loop `arbor run` and `arbor demo` share.
 *
 * A runtime on its own loop, the admin server, the tree (from a config or the
 * demo), the dashboard URL on stdout, then arbor_run until the tree has ended:
 * SIGTERM/SIGINT shut down gracefully (a second one at once), SIGHUP reloads the
 * config, SIGUSR1 writes the trace (and the trace file is written at shutdown
 * when one is asked for), and a systemd Type=notify unit is told READY=1, RELOADING=1 and
 * STOPPING=1 over $NOTIFY_SOCKET. One line on stderr per notable thing.
 */
#ifndef ARBOR_CMD_DAEMON_H
#define ARBOR_CMD_DAEMON_H

/* Exit statuses of the arbor program. */
#define EXIT_OK 0                /* nothing failed */
#define EXIT_FAILED 1            /* something failed (the tree, or starting up) */
#define EXIT_USAGE 2             /* bad command line or config: nothing was started */

struct daemon_args {
  const char *config;            /* `arbor run CONFIG`; NULL for the demo */
  const char *bind;              /* --bind: overrides the config's admin.bind */
  int port;                      /* --port, when port_set */
  int port_set;
  int check_only;                /* `arbor run --check`: load the config, start nothing */
  int with_demo;                 /* `arbor run --demo`: the demo tree beside the config's */
  const char *trace_out;         /* --trace-out: overrides the config's trace_out */
  int trace_format;              /* --trace-format (arbor_trace_format_t), 0: not given */
  const char *otlp_endpoint;     /* --otlp-endpoint: overrides the config's */
};

/* The arbor-exec beside this executable (build tree, or PREFIX/libexec/arbor
 * from PREFIX/bin), in buf; NULL: none there (libarbor's installed path then).
 * cmd/exec_helper.c. */
const char *daemon_exec_helper(char *buf, size_t size);

/* Runs the daemon to its end. Returns the exit status. */
int daemon_main(const struct daemon_args *args);

#endif /* ARBOR_CMD_DAEMON_H */
