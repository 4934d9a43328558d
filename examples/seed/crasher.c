/* examples/seed/crasher.c - a real program that crashes now and then, run as a
 * process service: readiness through a notification fd (s6's notification-fd),
 * its output captured in the service's log ring, its exit status 3 turned into
 * the run's error (ARBOR_EEXIT, with the last lines of its stderr), and the
 * supervisor restarting it after a backoff. */
#include <inttypes.h>
#include <stdio.h>

#include "seed.h"

/* /bin/sh is POSIX sh (dash on Debian): no $RANDOM, so the pid picks how long a
 * run lasts, and sleep gets decimal seconds (GNU and busybox sleep take them). */
static const char script_fmt[] =
    "echo \"crasher $$: starting\"\n"
    "sleep %" PRIu64 ".%03" PRIu64 "\n"
    "echo >&3\n"
    "echo \"crasher $$: ready\"\n"
    "ms=$(( %" PRIu64 " * (1 + $$ %% 4) ))\n"
    "sleep $(printf '%%d.%%03d' $((ms / 1000)) $((ms %% 1000)))\n"
    "echo \"fatal: simulated crash\" >&2\n"
    "exit 3\n";

/* Adds the process service "crasher" under sup. Errors: ARBOR_EINVAL (NULL c),
 * then as arbor_service_add (which copies argv). */
int seed_crasher_add(arbor_node_t *sup, seed_crasher_t *c, arbor_node_t **out) {
  if (c == NULL)
    return ARBOR_EINVAL;
  if (c->ready_ms == 0)
    c->ready_ms = 200;
  if (c->up_ms == 0)
    c->up_ms = 1000;
  snprintf(c->script, sizeof c->script, script_fmt, c->ready_ms / 1000, c->ready_ms % 1000,
           c->up_ms);
  c->argv[0] = "/bin/sh";
  c->argv[1] = "-c";
  c->argv[2] = c->script;
  c->argv[3] = NULL;
  return arbor_service_add(sup,
                           &(arbor_service_spec_t){.name = "crasher", .argv = c->argv,
                                                   .notify_fd = 3, .shutdown_timeout_ms = 2000,
                                                   .log_size = 16 * 1024},
                           out);
}
