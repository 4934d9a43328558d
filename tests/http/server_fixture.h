/* tests/http/server_fixture.h - one admin server on a fresh runtime, and one
 * request to it through libcurl (httpc.h): the fixture test_server, test_security
 * and test_load share. Static functions in a header, as harness.h does: each test
 * program is one translation unit and uses what it needs.
 *
 * Include after harness.h and "http/httpc.h". */
#ifndef ARBOR_TESTS_SERVER_FIXTURE_H
#define ARBOR_TESTS_SERVER_FIXTURE_H

#include <stdlib.h>

#include "../../http/server.h"

struct fx {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  int port;
  unsigned want;                 /* fx_connections_are's count */
};

static inline void fx_open(struct fx *f, const arbor_admin_opts_t *opts) {
  arbor_test_open(&f->loop, &f->rt, NULL);
  assert_code(arbor_admin_start(f->rt, opts, &f->admin), 0);
  f->port = arbor_admin_port(f->admin);
  assert_true(f->port > 0);
}

/* The runtime's close stops the server too (the closer). */
static inline void fx_close(struct fx *f) {
  int flag;
  arbor_test_close_begin(f->rt, &flag);
  arbor_test_close_end(&f->loop, &flag);
}

/* A predicate for httpc_run_until: the server holds f->want connections. */
static inline int fx_connections_are(void *arg) {
  struct fx *f = arg;
  return f->admin->connections == f->want;
}

struct resp {
  long status;
  char *body, *hdrs;
  int rc;
};

static inline void resp_free(struct resp *r) {
  free(r->body);
  free(r->hdrs);
  r->body = r->hdrs = NULL;
}

static inline struct resp req(struct fx *f, const char *method, const char *path,
                              const char *body, const char *const *headers) {
  char url[8192];
  struct resp r = {0};
  httpc_url(url, sizeof url, f->port, path);
  r.rc = httpc_request(&f->loop, method, url, body, headers, &r.status, &r.body, &r.hdrs);
  return r;
}

#endif
