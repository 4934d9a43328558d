/* tests/cmd/arbor_proc.h - run the built `arbor` program from a test.
 *
 * The binary is $ARBOR_BIN, else `arbor` three directories above the test
 * program (build/<variant>/tests/cmd/test_x -> build/<variant>/arbor), so every
 * variant's tests run that variant's daemon (the ASan build's leak check
 * included: a leak makes arbor exit non-zero, which the tests see).
 *
 * Each fixture has its own temporary directory: configs, stamp files, and the
 * daemon's stderr (DIR/stderr). Test services are shell loops that end by
 * themselves once DIR/stop exists, which arbor_proc_cleanup creates, so nothing
 * a test started outlives it even when arbor itself had to be killed.
 */
#ifndef ARBOR_TESTS_CMD_ARBOR_PROC_H
#define ARBOR_TESTS_CMD_ARBOR_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct arbor_proc {
  char dir[128];                 /* the fixture's temporary directory */
  pid_t pid;                     /* the daemon; 0 when not running */
  int out_fd;                    /* its stdout (a pipe), -1 when closed */
  int port;                      /* from "arbor: dashboard at http://...:PORT/" */
  char base[128];                /* "http://127.0.0.1:PORT" */
  int status;                    /* its wait status once reaped */
};

/* Makes the temporary directory. Aborts the test on failure. */
void arbor_proc_init(struct arbor_proc *p);
/* Kills the daemon if it still runs, makes DIR/stop, removes DIR. */
void arbor_proc_cleanup(struct arbor_proc *p);

/* DIR/name, in a static buffer (one of four, rotating). */
const char *arbor_proc_path(struct arbor_proc *p, const char *name);
/* Writes text to DIR/name. */
void arbor_proc_write(struct arbor_proc *p, const char *name, const char *text);
/* DIR/name's content (malloc'd, NUL-terminated), or NULL when it does not exist. */
char *arbor_proc_read(struct arbor_proc *p, const char *name);
/* Lines of DIR/name (0 when missing). */
int arbor_proc_lines(struct arbor_proc *p, const char *name);
/* Waits until DIR/name contains needle (polling; the runner's timeout bounds it). */
void arbor_proc_wait_text(struct arbor_proc *p, const char *name, const char *needle);
/* Waits until DIR/name has at least n lines. */
void arbor_proc_wait_lines(struct arbor_proc *p, const char *name, int n);

/* A service's argv as JSON for a config: a shell loop that appends its pid to
 * DIR/NAME.pids when it starts, appends NAME to DIR/order when SIGTERM stops it
 * (then exits 0), and ends once DIR/stop exists. extra is appended to the
 * script (e.g. "# v2" to change the argv without changing the behaviour). */
const char *arbor_proc_service_argv(struct arbor_proc *p, const char *name, const char *extra);

/* Starts the arbor program with argv (argv[0] is "arbor"; NULL-terminated),
 * stdout on a pipe, stderr into DIR/stderr, stdin /dev/null, in DIR. env
 * (NULL-terminated "K=V", may be NULL) is added to the environment. */
void arbor_proc_start(struct arbor_proc *p, char *const *argv, char *const *env);
/* Reads stdout until the dashboard line; fills port and base. Returns 0, or -1
 * when stdout ended first (the daemon exited). */
int arbor_proc_read_url(struct arbor_proc *p);
/* Sends a signal to the daemon. */
void arbor_proc_kill(struct arbor_proc *p, int sig);
/* Waits for the daemon to exit; returns its exit status, or 128 + signal. */
int arbor_proc_wait(struct arbor_proc *p);
/* Runs arbor with argv to completion; its stdout and stderr into *out and *err
 * (malloc'd) when not NULL. Returns its exit status (128 + signal if killed). A
 * daemon the fixture started stays the fixture's (e.g. `arbor ctl` against it). */
int arbor_proc_run(struct arbor_proc *p, char *const *argv, char **out, char **err);

/* HTTP through libcurl: method "GET" or "POST", path "/api/v1/tree". Returns the
 * status (0 when the request failed) and the body (malloc'd) in *body. */
long arbor_proc_http(struct arbor_proc *p, const char *method, const char *path, char **body);
/* The same with "Authorization: Bearer token" (token may be NULL). */
long arbor_proc_http_token(struct arbor_proc *p, const char *method, const char *path,
                           const char *token, char **body);

/* Any method ("PUT", "DELETE" ...) with req_body (NULL: none) as the body. */
long arbor_proc_http_send(struct arbor_proc *p, const char *method, const char *path,
                          const char *token, const char *req_body, char **body);

#endif /* ARBOR_TESTS_CMD_ARBOR_PROC_H */
