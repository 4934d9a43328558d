/* fuzz/support.h - what the libFuzzer drivers of fuzz/ share (docs/RELIABILITY.md, "Fuzzing").
 *
 * - fz_tmpdir(): one private temporary directory per driver process, made on
 *   first use and removed at exit; drivers write nothing anywhere else.
 * - fz_loop_*: a fresh uv loop and runtime per input, closed to uv_loop_close ==
 *   0 at the end of it (an unclosed handle aborts: a leak the fuzzer found).
 * - fz_http_*: an admin server on that loop and a raw HTTP/1.1 client for it,
 *   on the same thread: the client is a non-blocking loopback socket and the
 *   loop is driven (UV_RUN_NOWAIT) until the server closes the connection, or
 *   until neither side moved for a few turns (a stream: SSE, a followed log),
 *   which nothing in-process can change any more. Deterministic: no timers
 *   are waited for, nothing sleeps.
 */
#ifndef ARBOR_FUZZ_SUPPORT_H
#define ARBOR_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "arbor.h"

/* The driver's temporary directory ("/tmp/arbor-fuzz-XXXXXX"); aborts if it
 * cannot be made. fz_tmpfile writes len bytes into a file of that name there
 * and returns its path (a static buffer of the caller's: path, pathlen). */
const char *fz_tmpdir(void);
void fz_tmpfile(const char *name, const void *data, size_t len, char *path, size_t pathlen);

/* A loop and a runtime with a small event ring. */
struct fz_loop {
  uv_loop_t loop;
  arbor_runtime_t *rt;
};
void fz_loop_open(struct fz_loop *l);
/* Runs the loop until nothing is queued that can run now. */
void fz_loop_settle(struct fz_loop *l);
/* Closes the runtime (cancelling the tree), runs the loop until it is gone and
 * aborts unless uv_loop_close returns 0. */
void fz_loop_close(struct fz_loop *l);

/* One response as the client saw it. */
struct fz_resp {
  char *data;                    /* NUL-terminated; malloc'ed, up to FZ_RESP_MAX */
  size_t len;
  int ended;                     /* 1: the server closed the connection */
  unsigned status;               /* from the status line; 0: none */
  const char *body;              /* after the header block (into data); NULL: none */
  size_t body_len;
};
#define FZ_RESP_MAX (4u << 20)

/* Starts an admin server on l's runtime (opts copied; port forced to 0). */
arbor_admin_t *fz_http_start(struct fz_loop *l, const arbor_admin_opts_t *opts);
/* Sends req (raw bytes, as they are) on a new connection, half-closes it when
 * shut is 1, and reads the answer into *resp (fz_resp_free it). A response
 * that did not end (a stream) is cut there: the client closes; the server's
 * side, suspended, is closed with the runtime (fz_loop_close). */
void fz_http_roundtrip(struct fz_loop *l, arbor_admin_t *admin, const char *req, size_t len,
                       int shut, struct fz_resp *resp);
void fz_resp_free(struct fz_resp *resp);

/* abort() with a message on stderr: an invariant a driver checks failed. */
void fz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* ARBOR_FUZZ_SUPPORT_H */

/* Output checks: each aborts (fz_die, naming what) unless text[0..len) is
 * - fz_check_json: one JSON value (cJSON parses it) that is also strict
 *   RFC 8259: valid UTF-8 (RFC 3629: no overlong forms, surrogates or code
 *   points past U+10FFFF) and no control character unescaped inside a string;
 * - fz_check_exposition: Prometheus text format 0.0.4 as /metrics promises it:
 *   valid UTF-8, every line "# HELP|TYPE name ...", or a sample
 *   `name{label="value",...} number`, label values escaped (\\, \", \n only). */
void fz_check_json(const char *what, const char *text, size_t len);
void fz_check_exposition(const char *what, const char *text, size_t len);
/* 1 when s[0..len) is valid UTF-8 (RFC 3629). */
int fz_utf8_valid(const unsigned char *s, size_t len);
