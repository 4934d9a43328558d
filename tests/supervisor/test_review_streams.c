/* tests/supervisor/test_review_streams.c - review of supervisor/channel.c and
 * supervisor/stream.c: waiters under cancellation, deadlines and shields, objects
 * closed by other fibers or by loop callbacks while a fiber waits or was woken but
 * has not run yet, and the runtime closing under parked fibers. Servers bind
 * 127.0.0.1 port 0; nothing sleeps and nothing asserts a duration.
 *
 * Some tests close an object from a uv_check_t callback: the check phase runs after
 * the poll phase that woke a fiber and before the closing phase that frees the
 * object, while the woken fiber only runs in the next iteration's idle phase. That
 * is the window in which a woken fiber must not touch the object again. */
#include "harness.h"
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 10000 && !(cond); k_++)                                          \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    assert_true(cond);                                                                 \
  } while (0)

/* ================================================================ streams */

typedef struct {
  arbor_listener_t *listener;
  int port;
  arbor_stream_t *server;        /* accepted end */
  arbor_stream_t *server2;
  arbor_stream_t *stolen;        /* what a second acceptor got */
  arbor_ctx_t *acx;              /* the acceptor's fiber */
  arbor_ctx_t *rcx;              /* the reader's fiber */
  arbor_ctx_t *wcx;              /* the writer's fiber */
  int accept_rc, accept2_rc, read_rc, write_rc, connect_rc, after_rc;
  int accepting, reading, writing, connecting;
  int done;
  char rbuf[16];
  /* check-phase closer */
  int arm;                       /* the check callback acts once armed */
  int acted;                     /* it did */
  int woken_before_close;        /* the waiter was woken already (not parked) */
  arbor_scope_t *scope;          /* the connector's scope, for the canceller */
  int caught;
} rv_t;

static void rv_finish(arbor_node_t *node, void *arg) {
  (void)node;
  ((rv_t *)arg)->done++;
}

static arbor_node_t *rv_spawn(arbor_node_t *parent, arbor_fiber_fn fn, rv_t *t,
                              const char *name) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = name, .fn = fn, .arg = t, .finish = rv_finish};
  assert_code(arbor_fiber_spawn(parent, &spec, &n), 0);
  return n;
}

static void rv_listen(arbor_runtime_t *rt, rv_t *t) {
  assert_code(arbor_tcp_listen(rt, "127.0.0.1", 0, 0, &t->listener), 0);
  t->port = arbor_listener_port(t->listener);
  assert_true(t->port > 0 && t->port <= 65535);
}

/* A plain blocking client socket connected to 127.0.0.1:port. On loopback the
 * handshake is done when connect() returns: the listener is readable. */
static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  assert_true(fd >= 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static int fib_accept(arbor_ctx_t *cx, void *arg) {
  rv_t *t = arg;
  t->acx = cx;
  t->accepting = 1;
  t->accept_rc = arbor_tcp_accept(cx, t->listener, &t->server);
  return 0;
}

static int fib_accept2(arbor_ctx_t *cx, void *arg) {
  rv_t *t = arg;
  t->accept2_rc = arbor_tcp_accept(cx, t->listener, &t->stolen);
  return 0;
}

static int fib_read(arbor_ctx_t *cx, void *arg) {
  rv_t *t = arg;
  t->rcx = cx;
  t->reading = 1;
  t->read_rc = arbor_stream_read(cx, t->server, t->rbuf, sizeof t->rbuf);
  return 0;
}

enum { BIG = 64 << 20 };         /* far more than loopback's socket buffers hold */

/* Writes BIG bytes to server2 (or server if there is no server2): parks, since the
 * raw peer never reads. */
static int fib_write_big(arbor_ctx_t *cx, void *arg) {
  rv_t *t = arg;
  char *big = calloc(1, BIG);
  if (big == NULL)
    return -ENOMEM;
  t->wcx = cx;
  t->writing = 1;
  t->write_rc = arbor_stream_write(cx, t->server2 != NULL ? t->server2 : t->server, big, BIG);
  memset(big, 0xAB, BIG);        /* libuv must be done with it: ASan/valgrind */
  free(big);
  return 0;
}

static int fib_close_server(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  rv_t *t = arg;
  return arbor_stream_close(t->server);
}

/* ---------------------------------------------------------------- accept */

static void check_close_listener(uv_check_t *h) {
  rv_t *t = h->data;
  if (!t->arm || t->acted)
    return;
  t->acted = 1;
  t->woken_before_close = !t->acx->parked;
  arbor_listener_close(t->listener);
}

/* BUG: a connection wakes the parked acceptor (on_connection, poll phase); the
 * listener is closed from a loop callback of the same iteration (check phase) and
 * freed by its close callback (closing phase); the acceptor then resumes in the
 * next iteration and reads l->pending / l->closing of the freed listener
 * (stream.c:354/361). ASan: heap-use-after-free. The header allows the close
 * anywhere on the loop thread and says a fiber waiting on the listener wakes with
 * UV_EBADF. */
static void review_listener_closed_after_connection_woke_acceptor(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rv_t t = {0};
  uv_check_t chk;
  arbor_test_open(&loop, &rt, NULL);
  rv_listen(rt, &t);
  rv_spawn(arbor_root(rt), fib_accept, &t, "acceptor");
  arbor_test_run_until(&loop, t.accepting);
  arbor_test_spin(&loop, 3);
  assert_true(t.acx->parked);
  assert_int_eq(uv_check_init(&loop, &chk), 0);
  chk.data = &t;
  assert_int_eq(uv_check_start(&chk, check_close_listener), 0);
  int fd = raw_connect(t.port);
  t.arm = 1;
  arbor_test_run_until(&loop, t.done == 1);
  assert_int_eq(t.acted, 1);
  assert_int_eq(t.woken_before_close, 1);      /* the window was hit */
  assert_code(t.accept_rc, UV_EBADF);
  assert_null(t.server);
  close(fd);
  uv_close((uv_handle_t *)&chk, NULL);
  arbor_test_close(rt, &loop);
}

/* A connection wakes acceptor A; before A runs, a new acceptor B takes the
 * connection (B starts first in the drain). A waits on (no stolen wake-up lost,
 * no EBUSY for B), and closing the listener then wakes A with UV_EBADF. */
static void review_woken_acceptor_robbed_then_listener_closed(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rv_t t = {0};
  arbor_test_open(&loop, &rt, NULL);
  rv_listen(rt, &t);
  rv_spawn(arbor_root(rt), fib_accept, &t, "A");
  arbor_test_run_until(&loop, t.accepting);
  arbor_test_spin(&loop, 3);
  assert_true(t.acx->parked);
  int fd = raw_connect(t.port);
  arbor_test_run_until(&loop, !t.acx->parked);   /* woken, not yet resumed */
  rv_spawn(arbor_root(rt), fib_accept2, &t, "B");
  arbor_test_run_until(&loop, t.done == 1);
  assert_code(t.accept2_rc, 0);
  assert_non_null(t.stolen);
  arbor_test_spin(&loop, 3);
  assert_true(t.acx->parked);                    /* A parked again */
  assert_code(arbor_listener_close(t.listener), 0);
  arbor_test_run_until(&loop, t.done == 2);
  assert_code(t.accept_rc, UV_EBADF);
  assert_null(t.server);
  assert_code(arbor_stream_close(t.stolen), 0);
  close(fd);
  arbor_test_close(rt, &loop);
}

/* ------------------------------------------------------------------ read */

static void check_close_server(uv_check_t *h) {
  rv_t *t = h->data;
  if (!t->arm || t->acted)
    return;
  t->acted = 1;
  t->woken_before_close = !t->rcx->parked;
  arbor_stream_close(t->server);
}

/* Data wakes the parked reader (poll phase); the owner closes the stream in the
 * same iteration (check phase) and it is freed before the reader runs. The reader
 * returns its bytes and never touches the stream again. */
static void review_stream_closed_after_data_woke_reader(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rv_t t = {0};
  uv_check_t chk;
  arbor_test_open(&loop, &rt, NULL);
  rv_listen(rt, &t);
  rv_spawn(arbor_root(rt), fib_accept, &t, "acceptor");
  int fd = raw_connect(t.port);
  arbor_test_run_until(&loop, t.done == 1);
  assert_code(t.accept_rc, 0);
  rv_spawn(arbor_root(rt), fib_read, &t, "reader");
  arbor_test_run_until(&loop, t.reading);
  arbor_test_spin(&loop, 3);
  assert_true(t.rcx->parked);
  assert_int_eq(uv_check_init(&loop, &chk), 0);
  chk.data = &t;
  assert_int_eq(uv_check_start(&chk, check_close_server), 0);
  assert_int_eq(send(fd, "hi", 2, 0), 2);
  t.arm = 1;
  arbor_test_run_until(&loop, t.done == 2);
  assert_int_eq(t.acted, 1);
  assert_int_eq(t.woken_before_close, 1);
  assert_int_eq(t.read_rc, 2);
  assert_memory_equal(t.rbuf, "hi", 2);
  close(fd);
  uv_close((uv_handle_t *)&chk, NULL);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* ----------------------------------------------------------------- write */

/* Another fiber closes the stream while a write is parked: the writer wakes with
 * UV_EBADF, its buffer is not touched afterwards (ASan), the stream goes once. */
static void review_close_by_other_fiber_wakes_parked_writer(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rv_t t = {0};
  arbor_node_t *w;
  arbor_test_open(&loop, &rt, NULL);
  rv_listen(rt, &t);
  rv_spawn(arbor_root(rt), fib_accept, &t, "acceptor");
  int fd = raw_connect(t.port);
  arbor_test_run_until(&loop, t.done == 1);
  assert_code(t.accept_rc, 0);
  w = rv_spawn(arbor_root(rt), fib_write_big, &t, "writer");
  arbor_test_run_until(&loop, t.writing);
  arbor_test_spin(&loop, 5);
  assert_true(t.wcx->parked);
  rv_spawn(arbor_root(rt), fib_close_server, &t, "closer");
  run_once_until(&loop, t.done == 3);
  assert_code(t.write_rc, UV_EBADF);
  assert_outcome(w, OK);
  close(fd);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* A read and a write wait on one stream in two fibers; the writer is cancelled:
 * the stream is closed (the write may be half sent), so the reader wakes with
 * UV_EBADF; later calls return UV_EBADF; the owner closes it once. */
static int fib_use_after(arbor_ctx_t *cx, void *arg) {
  rv_t *t = arg;
  char b[2];
  t->after_rc = arbor_stream_read(cx, t->server, b, sizeof b);
  return 0;
}

static void review_cancelled_writer_wakes_concurrent_reader(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rv_t t = {0};
  arbor_node_t *w, *r;
  arbor_test_open(&loop, &rt, NULL);
  rv_listen(rt, &t);
  rv_spawn(arbor_root(rt), fib_accept, &t, "acceptor");
  int fd = raw_connect(t.port);
  arbor_test_run_until(&loop, t.done == 1);
  r = rv_spawn(arbor_root(rt), fib_read, &t, "reader");
  w = rv_spawn(arbor_root(rt), fib_write_big, &t, "writer");
  arbor_test_run_until(&loop, t.writing && t.reading);
  arbor_test_spin(&loop, 5);
  assert_true(t.wcx->parked && t.rcx->parked);
  assert_code(arbor_node_cancel(w), 0);
  run_once_until(&loop, t.done == 3);
  assert_code(t.write_rc, ARBOR_ECANCELED);
  assert_code(t.read_rc, UV_EBADF);
  assert_outcome(w, CANCELLED);
  assert_outcome(r, OK);
  rv_spawn(arbor_root(rt), fib_use_after, &t, "after");
  run_once_until(&loop, t.done == 4);
  assert_code(t.after_rc, UV_EBADF);
  assert_code(arbor_stream_close(t.server), 0);
  close(fd);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* --------------------------------------------------------- runtime close */

static int fib_accept_into2(arbor_ctx_t *cx, void *arg) {
  rv_t *t = arg;
  t->accept2_rc = arbor_tcp_accept(cx, t->listener, &t->server2);
  return 0;
}

/* The runtime closes while one fiber reads, one writes and one accepts: each wakes
 * with ARBOR_ECANCELED, the read leaves its stream usable-then-closable, the write
 * closes its stream, nothing leaks, and the owner closes everything afterwards. */
static void review_runtime_close_cancels_reader_writer_acceptor(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rv_t t = {0};
  int flag;
  arbor_test_open(&loop, &rt, NULL);
  rv_listen(rt, &t);
  rv_spawn(arbor_root(rt), fib_accept, &t, "acceptor1");
  int fd1 = raw_connect(t.port);
  arbor_test_run_until(&loop, t.done == 1);
  assert_code(t.accept_rc, 0);
  rv_spawn(arbor_root(rt), fib_accept_into2, &t, "acceptor2");
  int fd2 = raw_connect(t.port);
  arbor_test_run_until(&loop, t.done == 2);
  assert_code(t.accept2_rc, 0);
  t.accepting = 0;
  rv_spawn(arbor_root(rt), fib_read, &t, "reader");
  rv_spawn(arbor_root(rt), fib_write_big, &t, "writer");
  rv_spawn(arbor_root(rt), fib_accept, &t, "acceptor3");
  arbor_test_run_until(&loop, t.reading && t.writing && t.accepting);
  arbor_test_spin(&loop, 5);
  assert_true(t.rcx->parked && t.wcx->parked && t.acx->parked);
  arbor_test_close_begin(rt, &flag);
  arbor_test_run_until(&loop, flag == 1);
  assert_int_eq(t.done, 5);
  assert_code(t.read_rc, ARBOR_ECANCELED);
  assert_code(t.write_rc, ARBOR_ECANCELED);
  assert_code(t.accept_rc, ARBOR_ECANCELED);
  assert_code(arbor_stream_close(t.server), 0);
  assert_code(arbor_stream_close(t.server2), 0);
  assert_code(arbor_listener_close(t.listener), 0);
  close(fd1);
  close(fd2);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_eq(uv_loop_close(&loop), 0);
}

/* --------------------------------------------------------------- connect */

static int fib_connect_in_scope(arbor_ctx_t *cx, void *arg) {
  rv_t *t = arg;
  arbor_scope_t scope;
  arbor_stream_t *s = NULL;
  arbor_scope_enter(cx, &scope, NULL);
  t->scope = &scope;
  t->connecting = 1;
  t->connect_rc = arbor_tcp_connect(cx, "127.0.0.1", t->port, &s);
  t->scope = NULL;
  arbor_scope_exit(cx, &scope);
  t->caught = arbor_scope_cancelled_caught(&scope);
  if (s != NULL)
    arbor_stream_close(s);
  t->after_rc = arbor_yield(cx);   /* past the scope: not cancelled */
  return 0;
}

static int fib_cancel_scope(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  rv_t *t = arg;
  return t->scope != NULL ? arbor_scope_cancel(t->scope) : -1;
}

/* A connect parked inside a scope that another fiber cancels (same pass, so libuv
 * still has the connect): ARBOR_ECANCELED, the half-made stream goes by itself
 * (libuv's late UV_ECANCELED callback finds nobody), and the fiber's own task is
 * not cancelled. */
static void review_connect_cancelled_by_scope_cancel(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  rv_t t = {0};
  arbor_node_t *c, *k;
  arbor_test_open(&loop, &rt, NULL);
  rv_listen(rt, &t);
  c = rv_spawn(arbor_root(rt), fib_connect_in_scope, &t, "connector");
  k = rv_spawn(arbor_root(rt), fib_cancel_scope, &t, "canceller");
  run_once_until(&loop, t.done == 2);
  assert_outcome(k, OK);
  assert_code(t.connect_rc, ARBOR_ECANCELED);
  assert_int_eq(t.caught, 1);
  assert_code(t.after_rc, 0);
  assert_outcome(c, OK);
  arbor_listener_close(t.listener);
  arbor_test_close(rt, &loop);
}

/* =============================================================== channels */

typedef struct {
  arbor_channel_end_t *end;
  int send;                      /* 1: send `item`; 0: receive into `item` */
  int item;
  int rc;
  int parked_once;               /* set just before the call */
  int close_after;               /* close `end` after the call */
  int close_rc;
  int shield;                    /* call inside a shielded scope; then one more recv */
  int rc2;
  int move_on_ms;                /* call inside a move-on scope */
  int caught;
  int returned;
  arbor_ctx_t *cx;
} op_t;

static int op_body(arbor_ctx_t *cx, void *arg) {
  op_t *o = arg;
  arbor_scope_t scope;
  int scoped = o->shield || o->move_on_ms;
  o->cx = cx;
  if (scoped)
    arbor_scope_enter(cx, &scope,
                      &(arbor_scope_opts_t){.shield = o->shield,
                                            .move_on_after_ms = (uint64_t)o->move_on_ms});
  o->parked_once = 1;
  if (o->send)
    o->rc = arbor_channel_send(cx, o->end, &o->item);
  else
    o->rc = arbor_channel_recv(cx, o->end, &o->item);
  if (scoped) {
    arbor_scope_exit(cx, &scope);
    o->caught = arbor_scope_cancelled_caught(&scope);
  }
  if (o->shield) {
    int x = -1;
    o->rc2 = arbor_channel_recv(cx, o->end, &x);   /* outside the shield now */
  }
  if (o->close_after)
    o->close_rc = arbor_channel_close(o->end);
  o->returned = 1;
  return 0;
}

static arbor_node_t *op_spawn(arbor_runtime_t *rt, op_t *o) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = "op", .fn = op_body, .arg = o};
  assert_code(arbor_fiber_spawn(arbor_root(rt), &spec, &n), 0);
  return n;
}

static arbor_channel_stats_t stats_of(const arbor_channel_end_t *e) {
  arbor_channel_stats_t st;
  assert_code(arbor_channel_stats(e, &st), 0);
  return st;
}

/* Three senders parked on a full channel; the middle one is cancelled: it returns
 * ARBOR_ECANCELED, its item is never received, the others keep their order. */
static void review_channel_cancel_middle_parked_sender_keeps_fifo(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  op_t s[3] = {{0}};
  arbor_node_t *n[3];
  int got;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 1, sizeof(int), &tx, &rx), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){100}), 0);
  for (int i = 0; i < 3; i++) {
    s[i] = (op_t){.end = &tx, .send = 1, .item = i + 1};
    n[i] = op_spawn(rt, &s[i]);
  }
  arbor_test_run_until(&loop, stats_of(&tx).waiting_senders == 3);
  assert_code(arbor_node_cancel(n[1]), 0);
  assert_uint_eq(stats_of(&tx).waiting_senders, 2);     /* unlinked at once */
  arbor_test_run_until(&loop, s[1].returned);
  assert_code(s[1].rc, ARBOR_ECANCELED);
  int want[] = {100, 1, 3};
  for (int i = 0; i < 3; i++) {
    assert_code(arbor_channel_try_recv(&rx, &got), 0);
    assert_int_eq(got, want[i]);
  }
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EAGAIN);
  arbor_test_run_until(&loop, s[0].returned && s[2].returned);
  assert_code(s[0].rc, 0);
  assert_code(s[2].rc, 0);
  assert_outcome(n[0], OK);
  assert_outcome(n[1], CANCELLED);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
}

/* A receive whose scope's deadline expires while it waits: ARBOR_ECANCELED, the
 * scope caught it, the record is gone, and an item sent afterwards is buffered for
 * the next receiver (not written into the gone fiber's memory). */
static void review_channel_recv_deadline_expires_item_not_lost(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  op_t r = {.send = 0, .item = -1, .move_on_ms = 1};
  arbor_node_t *n;
  int got = 0;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 2, sizeof(int), &tx, &rx), 0);
  r.end = &rx;
  n = op_spawn(rt, &r);
  run_once_until(&loop, r.returned);
  assert_code(r.rc, ARBOR_ECANCELED);
  assert_int_eq(r.caught, 1);
  assert_int_eq(r.item, -1);                       /* untouched on error */
  assert_uint_eq(stats_of(&rx).waiting_receivers, 0);
  assert_code(arbor_channel_try_send(&tx, &(int){42}), 0);
  assert_uint_eq(stats_of(&rx).buffer_used, 1);
  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 42);
  arbor_test_run_until(&loop, arbor_node_state(n) == ARBOR_STATE_FINISHED);
  assert_outcome(n, OK);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
}

/* A receiver woken with ARBOR_EOF closes the last end, freeing the channel while
 * it runs on after its park; nothing touches the channel afterwards (ASan). */
static void review_channel_woken_receiver_closes_last_end(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  op_t r = {.send = 0, .item = -1, .close_after = 1};
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  r.end = &rx;
  op_spawn(rt, &r);
  arbor_test_run_until(&loop, stats_of(&rx).waiting_receivers == 1);
  assert_code(arbor_channel_close(&tx), 0);
  arbor_test_run_until(&loop, r.returned);
  assert_code(r.rc, ARBOR_EOF);
  assert_code(r.close_rc, 0);
  assert_int_eq(r.item, -1);
  arbor_test_close(rt, &loop);
}

/* Capacity 0: a sender parks; its own send end is closed under it (it stays
 * parked, its item is still delivered before the end of stream); a receiver gets
 * the item, then ARBOR_EOF. */
static void review_channel_sender_on_closed_end_still_delivers(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  op_t s = {.send = 1, .item = 7};
  int got = 0;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  s.end = &tx;
  op_spawn(rt, &s);
  arbor_test_run_until(&loop, stats_of(&rx).waiting_senders == 1);
  assert_code(arbor_channel_close(&tx), 0);
  arbor_test_spin(&loop, 3);
  assert_int_eq(s.returned, 0);
  assert_uint_eq(stats_of(&rx).open_send_ends, 0);
  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 7);
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EOF);
  arbor_test_run_until(&loop, s.returned);
  assert_code(s.rc, 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
}

/* Capacity 0: a sender parked on a send end closed under it; then the receive side
 * closes: the sender wakes with ARBOR_EPIPE and the channel is freed by that very
 * close while the sender is still parked-woken (ASan: it does not look back). */
static void review_channel_sender_on_closed_end_broken_when_channel_freed(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  op_t s = {.send = 1, .item = 7};
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  s.end = &tx;
  op_spawn(rt, &s);
  arbor_test_run_until(&loop, stats_of(&rx).waiting_senders == 1);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);       /* frees the channel */
  assert_code(arbor_channel_close(&rx), ARBOR_EALREADY);
  arbor_test_run_until(&loop, s.returned);
  assert_code(s.rc, ARBOR_EPIPE);
  arbor_test_close(rt, &loop);
}

/* Rule 6: a receive parked inside a shield survives the cancellation of its task
 * (stays on the wait list), gets an item a loop callback sends, returns 0; the
 * next receive, outside the shield, returns ARBOR_ECANCELED at once. */
static void review_channel_shielded_recv_survives_cancel(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  op_t r = {.send = 0, .item = -1, .shield = 1};
  arbor_node_t *n;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 1, sizeof(int), &tx, &rx), 0);
  r.end = &rx;
  n = op_spawn(rt, &r);
  arbor_test_run_until(&loop, stats_of(&rx).waiting_receivers == 1);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_spin(&loop, 5);
  assert_int_eq(r.returned, 0);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 1);
  assert_code(arbor_channel_try_send(&tx, &(int){5}), 0);
  assert_uint_eq(stats_of(&rx).buffer_used, 0);  /* handed over, not buffered */
  arbor_test_run_until(&loop, r.returned);
  assert_code(r.rc, 0);
  assert_int_eq(r.item, 5);
  assert_code(r.rc2, ARBOR_ECANCELED);
  assert_outcome(n, CANCELLED);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
}

/* A receiver is handed an item by a loop callback (check phase), then both ends
 * are closed there too, freeing the channel before the receiver runs: it returns
 * 0 with the item and never looks at the channel. */
typedef struct {
  arbor_channel_end_t *tx, *rx;
  op_t *r;
  int arm, acted, send_rc;
} chk_chan_t;

static void check_send_and_close(uv_check_t *h) {
  chk_chan_t *c = h->data;
  if (!c->arm || c->acted)
    return;
  c->acted = 1;
  c->send_rc = arbor_channel_try_send(c->tx, &(int){9});
  arbor_channel_close(c->tx);
  arbor_channel_close(c->rx);
}

static void review_channel_handoff_then_freed_before_receiver_runs(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  op_t r = {.send = 0, .item = -1};
  uv_check_t chk;
  chk_chan_t c = {&tx, &rx, &r, 0, 0, 0};
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  r.end = &rx;
  op_spawn(rt, &r);
  arbor_test_run_until(&loop, stats_of(&rx).waiting_receivers == 1);
  assert_int_eq(uv_check_init(&loop, &chk), 0);
  chk.data = &c;
  assert_int_eq(uv_check_start(&chk, check_send_and_close), 0);
  c.arm = 1;
  arbor_test_run_until(&loop, r.returned);
  assert_code(c.send_rc, 0);
  assert_code(r.rc, 0);
  assert_int_eq(r.item, 9);
  uv_close((uv_handle_t *)&chk, NULL);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest review_streams_tests[] = {
    cmocka_unit_test(review_listener_closed_after_connection_woke_acceptor),
    cmocka_unit_test(review_woken_acceptor_robbed_then_listener_closed),
    cmocka_unit_test(review_stream_closed_after_data_woke_reader),
    cmocka_unit_test(review_close_by_other_fiber_wakes_parked_writer),
    cmocka_unit_test(review_cancelled_writer_wakes_concurrent_reader),
    cmocka_unit_test(review_runtime_close_cancels_reader_writer_acceptor),
    cmocka_unit_test(review_connect_cancelled_by_scope_cancel),
    cmocka_unit_test(review_channel_cancel_middle_parked_sender_keeps_fifo),
    cmocka_unit_test(review_channel_recv_deadline_expires_item_not_lost),
    cmocka_unit_test(review_channel_woken_receiver_closes_last_end),
    cmocka_unit_test(review_channel_sender_on_closed_end_still_delivers),
    cmocka_unit_test(review_channel_sender_on_closed_end_broken_when_channel_freed),
    cmocka_unit_test(review_channel_shielded_recv_survives_cancel),
    cmocka_unit_test(review_channel_handoff_then_freed_before_receiver_runs),
};

ARBOR_TEST_MAIN(review_streams_tests)
