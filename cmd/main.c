/* cmd/main.c - the arbor program: its command line and subcommands.
 *
 *   arbor run [--check] [--demo] CONFIG.json [--bind ADDR] [--port N]
 *   arbor demo [--bind ADDR] [--port N]
 *   arbor ctl COMMAND ...         (cmd/ctl.c)
 *   arbor --version | help [COMMAND] | COMMAND --help
 *
 * Only parsing and dispatch: daemon.c runs the daemon, ctl.c the client. Exit
 * statuses: 0 ok, 1 something failed, 2 a usage or config error (daemon.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbor.h"
#include "daemon.h"

#include "ctl.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define VERSION STR(ARBOR_VERSION_MAJOR) "." STR(ARBOR_VERSION_MINOR) "." STR(ARBOR_VERSION_PATCH)

static const char usage_main[] =
    "usage: arbor COMMAND [ARGS]\n"
    "\n"
    "A structured-concurrency service supervisor with an HTTP admin API.\n"
    "\n"
    "commands:\n"
    "  run CONFIG.json   supervise the services a config names (docs/config.md)\n"
    "  demo              run the built-in demo tree\n"
    "  ctl COMMAND       talk to a running arbor (tree, status, cancel, restart, events, log,\n"
    "                    trace, add, update, remove: arbor ctl help)\n"
    "  help [COMMAND]    this text, or a command's\n"
    "\n"
    "options:\n"
    "  --version         print the version\n"
    "  -h, --help        this text; COMMAND --help for a command's\n"
    "\n"
    "Both run and demo print \"arbor: dashboard at http://ADDR:PORT/\" once serving.\n"
    "Exit status: 0 ok, 1 something failed, 2 bad usage or config.\n";

/* run and demo share these (docs/tracing.md). */
#define TRACE_OPTIONS                                                                  \
  "  --trace-out FILE       write the trace to FILE at shutdown and on SIGUSR1\n"       \
  "                         (overrides trace_out)\n"                                    \
  "  --trace-format F       chrome or otlp (default: by FILE's name: *.otlp.json is\n"  \
  "                         OTLP/JSON, anything else Chrome/Perfetto JSON)\n"           \
  "  --otlp-endpoint URL    push finished spans to this OTLP/HTTP collector, e.g.\n"    \
  "                         http://127.0.0.1:4318 (overrides otlp_endpoint)\n"

static const char usage_run[] =
    "usage: arbor run [--check] [--demo] CONFIG.json [--bind ADDR] [--port N] [TRACE OPTIONS]\n"
    "\n"
    "Supervises the services and supervisors CONFIG.json names (docs/config.md) and\n"
    "serves the admin API and dashboard, printing its URL on stdout.\n"
    "\n"
    "  --check         check the config and exit (0: ok, 2: the error on stderr)\n"
    "  --demo          also run the built-in demo tree (arbor demo's) beside the\n"
    "                  config's; a reload leaves it alone\n"
    "  --bind ADDR     the admin server's address (overrides admin.bind)\n"
    "  --port N        its port, 0 for any free one (overrides admin.port)\n"
    TRACE_OPTIONS
    "\n"
    "Signals: SIGHUP reloads the config (changed services restart, the rest is left\n"
    "alone); SIGTERM or SIGINT stops every service, newest first (again: at once);\n"
    "SIGUSR1 writes the trace as it is now (to --trace-out, else $TMPDIR).\n"
    "With NOTIFY_SOCKET set (systemd Type=notify), sends READY=1 once every service\n"
    "is started, RELOADING=1 on SIGHUP and STOPPING=1 on shutdown.\n"
    "Exit status: 0 when nothing failed, 1 otherwise, 2 for a bad config.\n";

static const char usage_demo[] =
    "usage: arbor demo [--bind ADDR] [--port N] [TRACE OPTIONS]\n"
    "\n"
    "Runs the built-in demo tree: services that fail, restart and recover on their\n"
    "own, so the dashboard always has something to show. Serves the admin API and\n"
    "dashboard on ADDR (default 127.0.0.1) port N (default 7070; 0: any free one)\n"
    "and prints its URL. SIGTERM or SIGINT stops it; SIGUSR1 writes the trace.\n"
    "\n"
    "  --bind ADDR     the admin server's address\n"
    "  --port N        its port\n"
    TRACE_OPTIONS;

/* One line on stderr and where to read more: a usage error must not scroll the
 * reason away. */
static int usage_error(const char *help, const char *fmt, const char *arg) {
  fprintf(stderr, "arbor: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see arbor %s--help)\n", help);
  return EXIT_USAGE;
}

static int is_help(const char *a) {
  return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

/* A port: 0 to 65535, digits only. */
static int parse_port(const char *s, int *out) {
  if (s == NULL || *s == '\0' || strlen(s) > 5)
    return -1;
  long v = 0;
  for (const char *p = s; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (*p - '0');
  }
  if (v > 65535)
    return -1;
  *out = (int)v;
  return 0;
}

/* "--opt VALUE" or "--opt=VALUE": the value, advancing *i past it; NULL if missing. */
static const char *option_value(int argc, char **argv, int *i, const char *opt) {
  size_t n = strlen(opt);
  const char *a = argv[*i];
  if (strncmp(a, opt, n) != 0)
    return NULL;
  if (a[n] == '=')
    return a + n + 1;
  if (a[n] != '\0' || *i + 1 >= argc)
    return NULL;
  return argv[++*i];
}

static int has_prefix_opt(const char *a, const char *opt) {
  size_t n = strlen(opt);
  return strncmp(a, opt, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

/* run and demo: the same options, a config only for run. */
static int cmd_daemon(int argc, char **argv, int is_run) {
  const char *usage = is_run ? usage_run : usage_demo;
  const char *help = is_run ? "run " : "demo ";
  struct daemon_args a = {0};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(usage, stdout);
      return EXIT_OK;
    }
    if (has_prefix_opt(arg, "--bind")) {
      if ((a.bind = option_value(argc, argv, &i, "--bind")) == NULL || a.bind[0] == '\0')
        return usage_error(help, "%s: expected an address", "--bind");
    } else if (has_prefix_opt(arg, "--port")) {
      const char *v = option_value(argc, argv, &i, "--port");
      if (parse_port(v, &a.port) < 0)
        return usage_error(help, "--port: expected a number from 0 to 65535, not \"%s\"",
                           v != NULL ? v : "");
      a.port_set = 1;
    } else if (has_prefix_opt(arg, "--trace-out")) {
      if ((a.trace_out = option_value(argc, argv, &i, "--trace-out")) == NULL ||
          a.trace_out[0] == '\0')
        return usage_error(help, "%s: expected a file name", "--trace-out");
    } else if (has_prefix_opt(arg, "--trace-format")) {
      const char *v = option_value(argc, argv, &i, "--trace-format");
      if ((a.trace_format = arbor_trace_format_parse(v)) < 0)
        return usage_error(help, "--trace-format: expected chrome or otlp, not \"%s\"",
                           v != NULL ? v : "");
    } else if (has_prefix_opt(arg, "--otlp-endpoint")) {
      const char *v = option_value(argc, argv, &i, "--otlp-endpoint");
      if (v == NULL || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0))
        return usage_error(help, "--otlp-endpoint: expected an http:// or https:// URL, not \"%s\"",
                           v != NULL ? v : "");
      a.otlp_endpoint = v;
    } else if (is_run && strcmp(arg, "--check") == 0) {
      a.check_only = 1;
    } else if (is_run && strcmp(arg, "--demo") == 0) {
      a.with_demo = 1;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      return usage_error(help, "unknown option %s", arg);
    } else if (is_run && a.config == NULL) {
      a.config = arg;
    } else {
      return usage_error(help, "unexpected argument \"%s\"", arg);
    }
  }
  if (is_run && a.config == NULL)
    return usage_error(help, "%s", "run: expected a config file");
  return daemon_main(&a);
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error("", "%s", "expected a command");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    printf("arbor %s\n", VERSION);
    return EXIT_OK;
  }
  if (is_help(cmd)) {
    const char *topic = argc > 2 ? argv[2] : NULL;
    if (topic == NULL)
      fputs(usage_main, stdout);
    else if (strcmp(topic, "run") == 0)
      fputs(usage_run, stdout);
    else if (strcmp(topic, "demo") == 0)
      fputs(usage_demo, stdout);
    else if (strcmp(topic, "ctl") == 0) {
      char *ctl_argv[] = {"ctl", "--help", NULL};
      return arbor_ctl_main(2, ctl_argv);
    } else
      return usage_error("", "help: unknown command \"%s\"", topic);
    return EXIT_OK;
  }
  if (strcmp(cmd, "run") == 0)
    return cmd_daemon(argc - 1, argv + 1, 1);
  if (strcmp(cmd, "demo") == 0)
    return cmd_daemon(argc - 1, argv + 1, 0);
  if (strcmp(cmd, "ctl") == 0)
    return arbor_ctl_main(argc - 1, argv + 1);
  return usage_error("", "unknown command \"%s\"", cmd);
}
