/* tests/http/httpc.h - a small HTTP client for tests of servers on a uv loop.
 *
 * The admin server runs on the test's own loop, on the test's thread, so a
 * blocking client on that thread would deadlock. httpc runs each request with
 * libcurl on a helper pthread and lets the calling thread drive the loop
 * (uv_run ONCE) until the request is done; the helper wakes the loop through a
 * uv_async_t whenever bytes arrive and when it finishes, so nothing spins and
 * nothing sleeps. The async handle is closed before the call returns: the
 * loop still closes cleanly (uv_loop_close == 0).
 *
 *   long status; char *body, *hdrs;
 *   assert_int_eq(httpc_request(&loop, "GET", url, NULL, NULL, &status, &body, &hdrs), 0);
 *   ... free(body); free(hdrs);
 *
 * Streams (SSE): httpc_begin with a limit on events or bytes, drive the loop
 * with httpc_wait (until a predicate on what arrived so far holds), then
 * httpc_end (which stops the transfer if still going). A transfer the limit
 * cut short counts as a success.
 *
 * URLs: httpc_url(buf, port, "/healthz") -> "http://127.0.0.1:PORT/healthz".
 * Proxies from the environment are ignored. No timeouts: the test runner's
 * timeout catches a hang.
 */
#ifndef ARBOR_TESTS_HTTPC_H
#define ARBOR_TESTS_HTTPC_H

#include <stddef.h>
#include <uv.h>

struct httpc_call;

typedef struct {
  const char *method;            /* "GET" (NULL), "HEAD" (no body), "POST", any other */
  const char *url;
  const char *body;              /* request body (POST ...); NULL: none */
  size_t body_len;               /* 0 with body set: strlen(body) */
  const char *const *headers;    /* "Name: value" lines, NULL-terminated; may be NULL */
  size_t max_events;             /* stop after this many "\n\n"-ended blocks; 0: no limit */
  size_t max_bytes;              /* stop after this many body bytes; 0: no limit */
  int chunked;                   /* send the body with Transfer-Encoding: chunked */
} httpc_opts_t;

/* One request, start to end. status: the HTTP status (0 when none came);
 * resp_body / resp_headers (raw header block) are malloc'd, NUL-terminated and
 * the caller frees them; either pointer may be NULL. Returns 0, or libcurl's
 * error code (e.g. CURLE_COULDNT_CONNECT = 7) when the transfer failed. */
int httpc_request(uv_loop_t *loop, const char *method, const char *url, const char *body,
                  const char *const *headers, long *status, char **resp_body,
                  char **resp_headers);

/* SSE / any stream: reads until max_events blocks or max_bytes bytes arrived (or
 * the server ended the response). Same outputs as httpc_request. */
int httpc_stream(uv_loop_t *loop, const char *url, const char *const *headers,
                 size_t max_events, size_t max_bytes, long *status, char **resp_body,
                 char **resp_headers);

/* The asynchronous form. begin starts the transfer (NULL when out of memory). */
struct httpc_call *httpc_begin(uv_loop_t *loop, const httpc_opts_t *opts);
/* Runs the loop until pred(body so far, its length, arg) holds or the transfer
 * ended; returns whether pred held (pred NULL: waits for the end, returns 1). */
int httpc_wait(struct httpc_call *c, int (*pred)(const char *body, size_t len, void *arg),
               void *arg);
/* Body bytes and "\n\n"-ended blocks received so far (thread-safe snapshots). */
size_t httpc_received(struct httpc_call *c);
size_t httpc_events(struct httpc_call *c);
/* Stops the transfer if it still runs, drives the loop until the helper ended,
 * closes the async handle and frees c. Outputs as httpc_request. */
int httpc_end(struct httpc_call *c, long *status, char **resp_body, char **resp_headers);

/* Runs the loop until pred(arg) holds, blocking while nothing happens. A plain
 * uv_run(ONCE) loop is not enough when the loop itself makes pred true (a timer
 * that fires at the start of an iteration: the poll after it may then block
 * for as long as the next timer is away): a uv_prepare_t checks pred right
 * before each poll and uv_stop()s the loop, which makes that poll not wait. */
void httpc_run_until(uv_loop_t *loop, int (*pred)(void *arg), void *arg);

/* Helpers. */
char *httpc_url(char *buf, size_t size, int port, const char *path_and_query);
/* A response header's value (first of that name, case-insensitive), malloc'd,
 * or NULL. */
char *httpc_header(const char *resp_headers, const char *name);
/* Opens a plain TCP connection to 127.0.0.1:port (blocking connect; the kernel
 * completes it from the backlog while the loop is not running). Returns the fd
 * or -errno. */
int httpc_connect_raw(int port);

/* Raw mode, for requests curl will not send (duplicate Content-Length, NUL in a
 * header, a header block of any size): opens a connection, sends req[0..len)
 * as the socket takes it, reads what comes back until the server closes the
 * connection (end of file or reset), and keeps the first cap - 1 bytes of it in
 * out (NUL-terminated). The loop runs meanwhile (a uv_poll_t on the socket).
 * Returns the bytes kept, -ETIMEDOUT when the server still held the connection
 * open bound_ms after the start (it did not close: a bound, not a sleep), or
 * -errno from the connect. */
long httpc_raw_exchange(uv_loop_t *loop, int port, const void *req, size_t len, char *out,
                        size_t cap, unsigned bound_ms);

#endif /* ARBOR_TESTS_HTTPC_H */
