/* tests/supervisor/test_stream.c - TCP streams as fiber checkpoints
 * (supervisor/stream.c): echo over loopback, end of stream, the close of a stream
 * waking its waiters, and rule 4 for read, accept and write. Servers bind
 * 127.0.0.1 port 0; everything ends by itself; nothing sleeps or times. */
#include "harness.h"

/* What the fibers of one test share. */
typedef struct {
  arbor_listener_t *listener;
  int port;
  arbor_stream_t *server;        /* the accepted end */
  arbor_stream_t *client;        /* the connected end */
  int rounds;                    /* echo round trips the client checked */
  int echoed;                    /* bytes the server echoed */
  int server_rc, client_rc, extra_rc;
  int server_end, client_end;    /* what the last read returned */
  int reading;                   /* a fiber is about to read (then parks) */
  int accepting;
  int writing;
  int done;                      /* fibers finished */
  arbor_ctx_t *cx;               /* the last fiber that recorded its own */
  arbor_node_t *victim;          /* what the canceller fiber cancels */
  int caught;                    /* a scope's deadline cut a read short */
} net_t;

static void on_finish(arbor_node_t *node, void *arg) {
  (void)node;
  ((net_t *)arg)->done++;
}

static arbor_node_t *spawn(arbor_node_t *parent, arbor_fiber_fn fn, net_t *t, const char *name) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = name, .fn = fn, .arg = t, .finish = on_finish};
  assert_code(arbor_fiber_spawn(parent, &spec, &n), 0);
  return n;
}

#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 10000 && !(cond); k_++)                                          \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    assert_true(cond);                                                                 \
  } while (0)

static void listen_any(arbor_runtime_t *rt, net_t *t) {
  assert_code(arbor_tcp_listen(rt, "127.0.0.1", 0, 0, &t->listener), 0);
  t->port = arbor_listener_port(t->listener);
  assert_true(t->port > 0 && t->port <= 65535);
}

/* ------------------------------------------------------------------- echo */

/* Accepts one connection and echoes everything back until the end of stream. */
static int echo_server(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  arbor_stream_t *s;
  char buf[7];                   /* small: a message takes several reads */
  int n, rc;
  if ((rc = arbor_tcp_accept(cx, t->listener, &s)) < 0)
    return t->server_rc = rc;
  while ((n = arbor_stream_read(cx, s, buf, sizeof buf)) > 0) {
    if ((rc = arbor_stream_write(cx, s, buf, (size_t)n)) < 0)
      break;
    t->echoed += n;
  }
  t->server_end = n;
  t->extra_rc = arbor_stream_read(cx, s, buf, sizeof buf);   /* EOF again */
  arbor_stream_close(s);
  return t->server_rc = n < 0 ? n : 0;
}

static int echo_client(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  arbor_stream_t *s;
  int rc;
  if ((rc = arbor_tcp_connect(cx, "127.0.0.1", t->port, &s)) < 0)
    return t->client_rc = rc;
  for (int i = 0; i < 5; i++) {
    char msg[64], back[64];
    int len = snprintf(msg, sizeof msg, "round %d: the quick brown fox", i);
    if ((rc = arbor_stream_write(cx, s, msg, (size_t)len)) < 0)
      break;
    int got = 0;
    while (got < len && (rc = arbor_stream_read(cx, s, back + got, sizeof back - (size_t)got)) > 0)
      got += rc;
    if (rc < 0)
      break;
    rc = 0;
    if (got != len || memcmp(msg, back, (size_t)len) != 0) {
      rc = -EIO;
      break;
    }
    t->rounds++;
  }
  arbor_stream_close(s);         /* the server reads the end of the stream */
  return t->client_rc = rc;
}

static void stream_tcp_echo_round_trips_then_eof(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *srv, *cli;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  srv = spawn(arbor_root(rt), echo_server, &t, "server");
  cli = spawn(arbor_root(rt), echo_client, &t, "client");
  run_once_until(&loop, t.done == 2);
  assert_code(t.client_rc, 0);
  assert_code(t.server_rc, 0);
  assert_int_eq(t.rounds, 5);
  assert_int_eq(t.server_end, 0);          /* end of stream */
  assert_int_eq(t.extra_rc, 0);            /* and again */
  assert_true(t.echoed > 5 * 20);
  assert_outcome(srv, OK);
  assert_outcome(cli, OK);
  assert_code(arbor_listener_close(t.listener), 0);
  arbor_test_close(rt, &loop);
}

/* The same over IPv6 loopback, when the machine has it. */
static int echo_client6(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  arbor_stream_t *s;
  char back[4];
  int rc;
  if ((rc = arbor_tcp_connect(cx, "::1", t->port, &s)) < 0)
    return t->client_rc = rc;
  if ((rc = arbor_stream_write(cx, s, "six", 3)) == 0) {
    int got = 0;
    while (got < 3 && (rc = arbor_stream_read(cx, s, back + got, 3 - (size_t)got)) > 0)
      got += rc;
    if (rc > 0)
      rc = memcmp(back, "six", 3) == 0 ? 0 : -EIO;
    t->rounds = rc == 0;
  }
  arbor_stream_close(s);
  return t->client_rc = rc;
}

static void stream_tcp_echo_ipv6(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_test_open(&loop, &rt, NULL);
  int rc = arbor_tcp_listen(rt, "::1", 0, 8, &t.listener);
  if (rc < 0) {                  /* no IPv6 here */
    arbor_test_close(rt, &loop);
    skip();
  }
  t.port = arbor_listener_port(t.listener);
  spawn(arbor_root(rt), echo_server, &t, "server");
  spawn(arbor_root(rt), echo_client6, &t, "client");
  run_once_until(&loop, t.done == 2);
  assert_code(t.client_rc, 0);
  assert_code(t.server_rc, 0);
  assert_int_eq(t.rounds, 1);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------- read cancellation */

/* Accepts, keeps the stream for the test, then waits in a read nobody answers. */
static int accept_then_read(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  char buf[16];
  int rc;
  if ((rc = arbor_tcp_accept(cx, t->listener, &t->server)) < 0)
    return t->server_rc = rc;
  t->reading = 1;
  return t->server_rc = arbor_stream_read(cx, t->server, buf, sizeof buf);
}

/* Connects, keeps the stream for the test, then reads until the end of stream. */
static int connect_then_read_to_end(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  char buf[16];
  int rc;
  if ((rc = arbor_tcp_connect(cx, "127.0.0.1", t->port, &t->client)) < 0)
    return t->client_rc = rc;
  while ((rc = arbor_stream_read(cx, t->client, buf, sizeof buf)) > 0)
    ;
  t->client_end = rc;
  arbor_stream_close(t->client);
  return t->client_rc = rc;
}

static int write_late(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  return t->extra_rc = arbor_stream_write(cx, t->client, "late", 4);
}

/* A second reader of the server end, after the first was cancelled: it gets the
 * bytes the cancelled read never took, then closes the stream. */
static int read_late(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  char buf[16] = {0};
  int got = 0, rc = 0;
  while (got < 4 && (rc = arbor_stream_read(cx, t->server, buf + got, sizeof buf - (size_t)got)) > 0)
    got += rc;
  t->echoed = got == 4 && memcmp(buf, "late", 4) == 0;
  arbor_stream_close(t->server);
  return rc < 0 ? rc : 0;
}

/* Rule 4: a fiber parked in read wakes with ARBOR_ECANCELED when cancelled. The
 * stream stays usable: data sent afterwards reaches another fiber's read (no byte
 * lost, none written into the cancelled fiber's buffer), and its close gives the
 * other end its end of stream. */
static void rule4_stream_read_cancelled_mid_read(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *srv, *cli, *w, *r;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  srv = spawn(arbor_root(rt), accept_then_read, &t, "server");
  cli = spawn(arbor_root(rt), connect_then_read_to_end, &t, "client");
  run_once_until(&loop, t.reading && t.client != NULL);
  arbor_test_spin(&loop, 5);
  assert_state(srv, STARTED);    /* parked in read, and the snapshot says where */
  arbor_fiber_info_t fi;
  assert_code(arbor_node_fiber_info(srv, &fi), 0);
  assert_string_equal(fi.wait_what, "stream_read");
  assert_string_equal(fi.wait_file, __FILE__);
  assert_code(arbor_node_cancel(srv), 0);
  run_once_until(&loop, t.done == 1);
  assert_code(t.server_rc, ARBOR_ECANCELED);
  assert_outcome(srv, CANCELLED);
  w = spawn(arbor_root(rt), write_late, &t, "writer");
  r = spawn(arbor_root(rt), read_late, &t, "reader");
  run_once_until(&loop, t.done == 4);
  assert_code(t.extra_rc, 0);
  assert_int_eq(t.echoed, 1);
  assert_int_eq(t.client_end, 0);          /* the reader's close: end of stream */
  assert_outcome(w, OK);
  assert_outcome(r, OK);
  assert_outcome(cli, OK);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* A cancelled read, then the runtime closes; the stream is closed by hand while no
 * fiber uses it any more. Nothing leaks (ASan, valgrind). */
static void rule4_stream_read_cancelled_then_closed(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *srv;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  srv = spawn(arbor_root(rt), accept_then_read, &t, "server");
  spawn(arbor_root(rt), connect_then_read_to_end, &t, "client");
  run_once_until(&loop, t.reading && t.client != NULL);
  assert_code(arbor_node_cancel(srv), 0);
  run_once_until(&loop, t.done == 1);
  assert_code(t.server_rc, ARBOR_ECANCELED);
  assert_code(arbor_stream_close(t.server), 0);
  run_once_until(&loop, t.done == 2);
  assert_int_eq(t.client_end, 0);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* ----------------------------------------------- busy, and close wakes waiters */

static int second_reader(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  char buf[4];
  t->extra_rc = arbor_stream_read(cx, t->server, buf, sizeof buf);
  return 0;
}

/* One reader at a time (ARBOR_EBUSY for a second); closing the stream wakes the
 * parked reader with UV_EBADF, and every later call on it says the same. */
static void stream_close_wakes_reader_and_second_reader_is_busy(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *srv, *second;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  srv = spawn(arbor_root(rt), accept_then_read, &t, "server");
  spawn(arbor_root(rt), connect_then_read_to_end, &t, "client");
  run_once_until(&loop, t.reading && t.client != NULL);
  second = spawn(arbor_root(rt), second_reader, &t, "second");
  run_once_until(&loop, t.done == 1);
  assert_code(t.extra_rc, ARBOR_EBUSY);
  assert_outcome(second, OK);
  assert_state(srv, STARTED);
  assert_code(arbor_stream_close(t.server), 0);     /* from the loop */
  run_once_until(&loop, t.done == 3);
  assert_code(t.server_rc, UV_EBADF);
  assert_outcome(srv, FAILED);
  assert_code(arbor_error_code(arbor_node_error(srv)), -EBADF);
  assert_int_eq(t.client_end, 0);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------ accept cancellation */

static int acceptor(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  t->accepting = 1;
  int rc = arbor_tcp_accept(cx, t->listener, &t->server);
  t->server_rc = rc;
  if (rc == 0) {
    /* Reads the client's end of stream, then closes its side. */
    char buf[4];
    t->server_end = arbor_stream_read(cx, t->server, buf, sizeof buf);
    arbor_stream_close(t->server);
  }
  return rc;
}

static int connect_and_close(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  arbor_stream_t *s;
  int rc = arbor_tcp_connect(cx, "127.0.0.1", t->port, &s);
  if (rc == 0)
    arbor_stream_close(s);
  return t->client_rc = rc;
}

/* Rule 4: a fiber parked in accept wakes with ARBOR_ECANCELED; the listener is left
 * as it was, and the next acceptor gets the next connection. */
static void rule4_stream_accept_cancelled(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *a, *b;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  a = spawn(arbor_root(rt), acceptor, &t, "acceptor");
  run_once_until(&loop, t.accepting);
  arbor_test_spin(&loop, 5);
  assert_state(a, STARTED);
  assert_code(arbor_node_cancel(a), 0);
  run_once_until(&loop, t.done == 1);
  assert_code(t.server_rc, ARBOR_ECANCELED);
  assert_outcome(a, CANCELLED);
  assert_null(t.server);
  b = spawn(arbor_root(rt), acceptor, &t, "acceptor2");
  spawn(arbor_root(rt), connect_and_close, &t, "client");
  run_once_until(&loop, t.done == 3);
  assert_code(t.server_rc, 0);
  assert_code(t.client_rc, 0);
  assert_int_eq(t.server_end, 0);
  assert_outcome(b, OK);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* Closing the listener wakes its acceptor with UV_EBADF. */
static void stream_listener_close_wakes_acceptor(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  spawn(arbor_root(rt), acceptor, &t, "acceptor");
  run_once_until(&loop, t.accepting);
  assert_code(arbor_listener_close(t.listener), 0);
  run_once_until(&loop, t.done == 1);
  assert_code(t.server_rc, UV_EBADF);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------- write cancellation */

enum { BIG = 64 << 20 };         /* far more than loopback's socket buffers hold */

static int write_big(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  char *big = calloc(1, BIG);
  char buf[4];
  if (big == NULL)
    return -ENOMEM;
  t->writing = 1;
  t->client_rc = arbor_stream_write(cx, t->client, big, BIG);
  free(big);                     /* libuv is done with it: the stream is closed */
  t->extra_rc = arbor_stream_read(cx, t->client, buf, sizeof buf);
  return t->client_rc;
}

/* Read and write on a stream a cancelled write closed: UV_EBADF. */
static int use_closed(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  char buf[4];
  t->client_rc = arbor_stream_read(cx, t->client, buf, sizeof buf);
  t->extra_rc = arbor_stream_write(cx, t->client, "x", 1);
  return 0;
}

static int connect_only(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  return t->client_rc = arbor_tcp_connect(cx, "127.0.0.1", t->port, &t->client);
}

static int accept_only(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  return t->server_rc = arbor_tcp_accept(cx, t->listener, &t->server);
}

/* Rule 4: a write the peer does not read parks; cancelled, it returns
 * ARBOR_ECANCELED and the stream is closed under it (libuv cannot take a write
 * back): later calls return UV_EBADF, and the owner still closes it once. */
static void rule4_stream_write_cancelled_closes_stream(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *w;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  spawn(arbor_root(rt), accept_only, &t, "server");
  spawn(arbor_root(rt), connect_only, &t, "client");
  run_once_until(&loop, t.done == 2);
  assert_code(t.server_rc, 0);
  assert_code(t.client_rc, 0);
  w = spawn(arbor_root(rt), write_big, &t, "writer");
  run_once_until(&loop, t.writing);
  arbor_test_spin(&loop, 5);
  assert_state(w, STARTED);      /* parked: the peer reads nothing */
  assert_code(arbor_node_cancel(w), 0);
  run_once_until(&loop, t.done == 3);
  assert_code(t.client_rc, ARBOR_ECANCELED);
  assert_code(t.extra_rc, ARBOR_ECANCELED);    /* level-triggered, before anything */
  assert_outcome(w, CANCELLED);
  spawn(arbor_root(rt), use_closed, &t, "after");
  run_once_until(&loop, t.done == 4);
  assert_code(t.client_rc, UV_EBADF);
  assert_code(t.extra_rc, UV_EBADF);
  assert_code(arbor_stream_close(t.client), 0);
  /* The server end sees the connection go: reset or end of stream. */
  assert_code(arbor_stream_close(t.server), 0);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* -------------------------------------------------------- connect, bad input */

/* Runs right after the connector parked, in the same pass of the loop, so the
 * connect is still with libuv. */
static int canceller(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  net_t *t = arg;
  return arbor_node_cancel(t->victim);
}

/* Rule 4: a connect cancelled while libuv still has it returns ARBOR_ECANCELED;
 * the half-made stream (never given out) is closed and freed by arbor, and
 * libuv's late callback touches nothing of the fiber's (ASan, valgrind). */
static void rule4_stream_connect_cancelled(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *c;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  c = spawn(arbor_root(rt), connect_only, &t, "client");
  t.victim = c;
  spawn(arbor_root(rt), canceller, &t, "canceller");
  run_once_until(&loop, t.done == 2);
  assert_code(t.client_rc, ARBOR_ECANCELED);
  assert_null(t.client);
  assert_outcome(c, CANCELLED);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

static void stream_connect_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *c;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);            /* a port that was free a moment ago */
  assert_code(arbor_listener_close(t.listener), 0);
  arbor_test_spin(&loop, 2);
  c = spawn(arbor_root(rt), connect_only, &t, "client");
  run_once_until(&loop, t.done == 1);
  assert_code(t.client_rc, -ECONNREFUSED);
  assert_null(t.client);
  assert_outcome(c, FAILED);
  arbor_test_close(rt, &loop);
}

static int bad_calls(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  arbor_stream_t *s = NULL;
  char buf[4];
  int bad = 0;
  bad += arbor_tcp_connect(cx, "localhost", 80, &s) != ARBOR_EINVAL;   /* no DNS */
  bad += arbor_tcp_connect(cx, "127.0.0.1", 0, &s) != ARBOR_EINVAL;
  bad += arbor_tcp_connect(cx, "127.0.0.1", 65536, &s) != ARBOR_EINVAL;
  bad += arbor_tcp_connect(cx, NULL, 80, &s) != ARBOR_EINVAL;
  bad += arbor_tcp_connect(cx, "127.0.0.1", 80, NULL) != ARBOR_EINVAL;
  bad += arbor_tcp_accept(cx, NULL, &s) != ARBOR_EINVAL;
  bad += arbor_tcp_accept(cx, t->listener, NULL) != ARBOR_EINVAL;
  bad += arbor_stream_read(cx, NULL, buf, sizeof buf) != ARBOR_EINVAL;
  bad += arbor_stream_write(cx, NULL, buf, sizeof buf) != ARBOR_EINVAL;
  bad += arbor_run_in_thread(cx, NULL, NULL) != ARBOR_EINVAL;
  bad += s != NULL;
  t->extra_rc = bad;
  t->cx = cx;
  t->accepting = 1;
  return arbor_tcp_accept(cx, t->listener, &s);   /* parks: for the tests below */
}

/* Bad input gets ARBOR_EINVAL and changes nothing; checkpoints off their fiber get
 * ARBOR_ESTATE. */
static void stream_bad_input_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_listener_t *l = NULL;
  arbor_stream_t *s = NULL;
  arbor_ctx_t *cx;
  arbor_node_t *n;
  char buf[4];
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_tcp_listen(NULL, "127.0.0.1", 0, 0, &l), ARBOR_EINVAL);
  assert_code(arbor_tcp_listen(rt, "nowhere", 0, 0, &l), ARBOR_EINVAL);
  assert_code(arbor_tcp_listen(rt, "127.0.0.1", -1, 0, &l), ARBOR_EINVAL);
  assert_code(arbor_tcp_listen(rt, "127.0.0.1", 70000, 0, &l), ARBOR_EINVAL);
  assert_code(arbor_tcp_listen(rt, "127.0.0.1", 0, 0, NULL), ARBOR_EINVAL);
  assert_null(l);
  assert_code(arbor_listener_port(NULL), ARBOR_EINVAL);
  assert_code(arbor_listener_close(NULL), ARBOR_EINVAL);
  assert_code(arbor_stream_close(NULL), ARBOR_EINVAL);
  listen_any(rt, &t);
  /* The same port twice: libuv's error, and nothing left behind. */
  assert_code(arbor_tcp_listen(rt, "127.0.0.1", t.port, 0, &l), -EADDRINUSE);
  assert_null(l);
  n = spawn(arbor_root(rt), bad_calls, &t, "bad");
  run_once_until(&loop, t.accepting);
  assert_int_eq(t.extra_rc, 0);
  /* Off the fiber (from the loop's stack): ARBOR_ESTATE, checked first. */
  cx = t.cx;
  assert_ptr_equal(arbor_ctx_node(cx), n);
  assert_code(arbor_tcp_connect(cx, "127.0.0.1", t.port, &s), ARBOR_ESTATE);
  assert_code(arbor_tcp_accept(cx, t.listener, &s), ARBOR_ESTATE);
  assert_code(arbor_stream_read(cx, NULL, buf, sizeof buf), ARBOR_ESTATE);
  assert_code(arbor_stream_write(cx, NULL, buf, sizeof buf), ARBOR_ESTATE);
  assert_code(arbor_tcp_connect(NULL, "127.0.0.1", t.port, &s), ARBOR_EINVAL);
  assert_null(s);
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, t.done == 1);
  assert_outcome(n, CANCELLED);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* ---------------------------------------------------------------- deadline */

/* A read under a 1 ms move-on deadline nobody answers: the deadline cancels the
 * scope, the read returns ARBOR_ECANCELED and leaves the stream as it was; past
 * the scope, the same stream carries a whole exchange. */
static int deadline_server(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  arbor_stream_t *s;
  arbor_scope_t scope;
  char buf[8];
  int rc;
  if ((rc = arbor_tcp_accept(cx, t->listener, &s)) < 0)
    return t->server_rc = rc;
  arbor_scope_enter(cx, &scope, &(arbor_scope_opts_t){.move_on_after_ms = 1});
  t->extra_rc = arbor_stream_read(cx, s, buf, sizeof buf);
  arbor_scope_exit(cx, &scope);
  t->caught = arbor_scope_cancelled_caught(&scope);
  if ((rc = arbor_stream_write(cx, s, "go", 2)) == 0 &&
      (rc = arbor_stream_read(cx, s, buf, sizeof buf)) > 0)
    t->echoed = rc == 2 && memcmp(buf, "ok", 2) == 0;
  arbor_stream_close(s);
  return t->server_rc = rc < 0 ? rc : 0;
}

static int deadline_client(arbor_ctx_t *cx, void *arg) {
  net_t *t = arg;
  arbor_stream_t *s;
  char buf[8];
  int rc;
  if ((rc = arbor_tcp_connect(cx, "127.0.0.1", t->port, &s)) < 0)
    return t->client_rc = rc;
  if ((rc = arbor_stream_read(cx, s, buf, 2)) == 2 && memcmp(buf, "go", 2) == 0 &&
      (rc = arbor_stream_write(cx, s, "ok", 2)) == 0)
    rc = arbor_stream_read(cx, s, buf, sizeof buf);   /* the server's close */
  t->client_end = rc;
  arbor_stream_close(s);
  return t->client_rc = rc < 0 ? rc : 0;
}

static void rule5_stream_read_deadline_moves_on(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  net_t t = {0};
  arbor_node_t *srv, *cli;
  arbor_test_open(&loop, &rt, NULL);
  listen_any(rt, &t);
  srv = spawn(arbor_root(rt), deadline_server, &t, "server");
  cli = spawn(arbor_root(rt), deadline_client, &t, "client");
  run_once_until(&loop, t.done == 2);
  assert_code(t.extra_rc, ARBOR_ECANCELED);
  assert_int_eq(t.caught, 1);
  assert_int_eq(t.echoed, 1);
  assert_int_eq(t.client_end, 0);
  assert_outcome(srv, OK);
  assert_outcome(cli, OK);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest stream_tests[] = {
    cmocka_unit_test(stream_tcp_echo_round_trips_then_eof),
    cmocka_unit_test(stream_tcp_echo_ipv6),
    cmocka_unit_test(rule4_stream_read_cancelled_mid_read),
    cmocka_unit_test(rule4_stream_read_cancelled_then_closed),
    cmocka_unit_test(stream_close_wakes_reader_and_second_reader_is_busy),
    cmocka_unit_test(rule4_stream_accept_cancelled),
    cmocka_unit_test(stream_listener_close_wakes_acceptor),
    cmocka_unit_test(rule4_stream_write_cancelled_closes_stream),
    cmocka_unit_test(stream_connect_refused),
    cmocka_unit_test(rule4_stream_connect_cancelled),
    cmocka_unit_test(rule5_stream_read_deadline_moves_on),
    cmocka_unit_test(stream_bad_input_refused),
};

ARBOR_TEST_MAIN(stream_tests)
