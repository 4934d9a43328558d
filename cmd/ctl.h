/* cmd/ctl.h - `arbor ctl`, the operator's client of the admin API (docs/ctl.md).
 *
 * A synchronous libcurl + cJSON program: each command is one request (or one
 * followed stream) against the admin server's /api/v1, printed for a person.
 * Nothing here links against the core: ctl only speaks HTTP.
 */
#ifndef ARBOR_CMD_CTL_H
#define ARBOR_CMD_CTL_H

/* Exit statuses of `arbor ctl` (documented in docs/ctl.md). */
enum {
  ARBOR_CTL_OK = 0,        /* the command did what it was asked */
  ARBOR_CTL_REFUSED = 1,   /* the server refused (4xx/5xx) or answered nonsense;
                              also a local failure such as out of memory */
  ARBOR_CTL_USAGE = 2,     /* bad command line, URL or token file */
  ARBOR_CTL_CONNECT = 3    /* could not reach the server, or lost it */
};

/* Runs `arbor ctl ARGS...` and returns its exit status. argv[0] is "ctl" (what
 * cmd/main.c dispatched on); the rest are global options then a command. Writes
 * to stdout and stderr; the follow commands (events, log -f) run until SIGINT or
 * SIGTERM, which end them cleanly with status 0. */
int arbor_ctl_main(int argc, char **argv);

#endif /* ARBOR_CMD_CTL_H */
