/* tests/supervisor/test_channel.c - channels (supervisor/channel.c): ordering,
 * rendezvous, capacity, exactly-once delivery, closing (end of stream vs broken),
 * clone counting, statistics, rule 4 for send and receive, misuse. Counts and order
 * only: nothing sleeps and nothing asserts a duration. */
#include "harness.h"

/* What a fiber does, see chan_body(). */
enum {
  DO_SEND,                       /* sends items[0..n), records each result */
  DO_RECV,                       /* receives up to n items (n = 0: until an error) */
  DO_SEND_THEN_CLOSE,            /* DO_SEND, then closes its end (a clone) */
  DO_RECV_THEN_CLOSE,            /* DO_RECV until an error, then closes its end */
};

typedef struct {
  int plan;
  arbor_channel_end_t *end;      /* the end it uses */
  int items[8192];               /* sent, or received, in order */
  int n;                         /* how many to send / receive (0: until an error) */
  int done;                      /* items sent or received successfully */
  int rc;                        /* the call that stopped it (0 if none did) */
  int close_rc;                  /* the close of its end, for the _THEN_CLOSE plans */
  int site;                      /* __LINE__ of its last send or receive call */
  int returned;                  /* the body returned */
  int finishes;
  arbor_ctx_t *cx;
} chan_fib_t;

static int chan_body(arbor_ctx_t *cx, void *arg) {
  chan_fib_t *f = arg;
  f->cx = cx;
  switch (f->plan) {
  case DO_SEND:
  case DO_SEND_THEN_CLOSE:
    for (int i = 0; i < f->n; i++) {
      int item = f->items[i];            /* a local: copied in by the send */
      if ((f->site = __LINE__, f->rc = arbor_channel_send(cx, f->end, &item)) < 0)
        break;
      f->done++;
    }
    break;
  case DO_RECV:
  case DO_RECV_THEN_CLOSE:
    while (f->n == 0 || f->done < f->n) {
      int item = -1;
      if ((f->site = __LINE__, f->rc = arbor_channel_recv(cx, f->end, &item)) < 0)
        break;
      f->items[f->done++] = item;
    }
    break;
  }
  /* No cmocka assertion on a fiber's stack (its failure longjmps): record. */
  if (f->plan == DO_SEND_THEN_CLOSE || f->plan == DO_RECV_THEN_CLOSE)
    f->close_rc = arbor_channel_close(f->end);
  f->returned = 1;
  return f->rc == ARBOR_EOF || f->rc == ARBOR_EPIPE ? 0 : f->rc;
}

static void chan_finish(arbor_node_t *node, void *arg) {
  (void)node;
  ((chan_fib_t *)arg)->finishes++;
}

static arbor_node_t *spawn_chan(arbor_node_t *parent, chan_fib_t *f, int plan,
                                arbor_channel_end_t *end, int n) {
  arbor_node_t *node = NULL;
  f->plan = plan;
  f->end = end;
  f->n = n;
  arbor_fiber_spec_t spec = {.name = "chan", .fn = chan_body, .arg = f,
                             .finish = chan_finish};
  assert_code(arbor_fiber_spawn(parent, &spec, &node), 0);
  return node;
}

static chan_fib_t *new_fib(void) {
  chan_fib_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  return f;
}

static arbor_channel_stats_t stats_of(const arbor_channel_end_t *end) {
  arbor_channel_stats_t st;
  assert_code(arbor_channel_stats(end, &st), 0);
  return st;
}

/* Runs the loop a few passes: enough for every woken fiber to run and park again. */
#define settle(loop) arbor_test_spin((loop), 8)

/* Items come out in the order they went in, through a buffer smaller than the
 * stream; parked receivers are served first-parked first, and so are parked
 * senders. */
static void channel_order_is_fifo(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *s = new_fib(), *r = new_fib(), *rs[3], *ss[3];
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  /* One stream through a 4-item buffer. */
  assert_code(arbor_channel_new(rt, 4, sizeof(int), &tx, &rx), 0);
  for (int i = 0; i < 1000; i++)
    s->items[i] = i * 7;
  spawn_chan(arbor_root(rt), s, DO_SEND, &tx, 1000);
  spawn_chan(arbor_root(rt), r, DO_RECV, &rx, 1000);
  arbor_test_run_until(&loop, s->returned && r->returned);
  assert_int_eq(s->done, 1000);
  assert_int_eq(r->done, 1000);
  for (int i = 0; i < 1000; i++)
    assert_int_eq(r->items[i], i * 7);

  /* Three parked receivers, served in the order they parked. */
  for (int i = 0; i < 3; i++) {
    rs[i] = new_fib();
    spawn_chan(arbor_root(rt), rs[i], DO_RECV, &rx, 1);
    settle(&loop);               /* parked before the next one comes */
  }
  assert_uint_eq(stats_of(&rx).waiting_receivers, 3);
  for (int i = 0; i < 3; i++)
    assert_code(arbor_channel_try_send(&tx, &(int){100 + i}), 0);
  arbor_test_run_until(&loop, rs[0]->returned && rs[1]->returned && rs[2]->returned);
  for (int i = 0; i < 3; i++)
    assert_int_eq(rs[i]->items[0], 100 + i);

  /* Three senders parked on a full buffer, taken in the order they parked. */
  assert_code(arbor_channel_try_send(&tx, &(int){-1}), 0);
  for (int i = 0; i < 3; i++)
    assert_code(arbor_channel_try_send(&tx, &(int){-2 - i}), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){0}), ARBOR_EAGAIN);
  for (int i = 0; i < 3; i++) {
    ss[i] = new_fib();
    ss[i]->items[0] = 200 + i;
    spawn_chan(arbor_root(rt), ss[i], DO_SEND, &tx, 1);
    settle(&loop);
  }
  assert_uint_eq(stats_of(&tx).waiting_senders, 3);
  int want[] = {-1, -2, -3, -4, 200, 201, 202};
  for (int i = 0; i < 7; i++) {
    int got = 0;
    assert_code(arbor_channel_try_recv(&rx, &got), 0);
    assert_int_eq(got, want[i]);
  }
  arbor_test_run_until(&loop, ss[0]->returned && ss[1]->returned && ss[2]->returned);
  for (int i = 0; i < 3; i++)
    assert_int_eq(ss[i]->rc, 0);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
  for (int i = 0; i < 3; i++) {
    free(rs[i]);
    free(ss[i]);
  }
  free(s);
  free(r);
}

/* Capacity 0: a send completes only when a receiver takes the item. */
static void channel_rendezvous_blocks_sender_until_receiver(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *s = new_fib(), *r = new_fib();
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){1}), ARBOR_EAGAIN);   /* nobody takes it */

  s->items[0] = 42;
  s->items[1] = 43;
  spawn_chan(arbor_root(rt), s, DO_SEND, &tx, 2);
  settle(&loop);
  assert_int_eq(s->done, 0);     /* parked: nobody received */
  assert_false(s->returned);
  arbor_channel_stats_t st = stats_of(&tx);
  assert_uint_eq(st.buffer_used, 0);
  assert_uint_eq(st.capacity, 0);
  assert_uint_eq(st.waiting_senders, 1);

  /* A receive takes the parked sender's item directly; the sender moves on and
   * parks with its second item. */
  int got = 0;
  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 42);
  settle(&loop);
  assert_int_eq(s->done, 1);
  assert_false(s->returned);

  spawn_chan(arbor_root(rt), r, DO_RECV, &rx, 1);
  arbor_test_run_until(&loop, s->returned && r->returned);
  assert_int_eq(s->done, 2);
  assert_int_eq(r->items[0], 43);

  /* The other way round: a parked receiver, then a try_send hands the item over. */
  chan_fib_t *r2 = new_fib();
  spawn_chan(arbor_root(rt), r2, DO_RECV, &rx, 1);
  settle(&loop);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 1);
  assert_code(arbor_channel_try_send(&tx, &(int){44}), 0);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 0);
  arbor_test_run_until(&loop, r2->returned);
  assert_int_eq(r2->items[0], 44);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
  free(s);
  free(r);
  free(r2);
}

/* A buffered channel takes `capacity` items without a receiver, then parks the
 * sender; each receive makes room for exactly one more. */
static void channel_buffer_holds_capacity_items(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *s = new_fib();
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 3, sizeof(int), &tx, &rx), 0);
  for (int i = 0; i < 6; i++)
    s->items[i] = i;
  spawn_chan(arbor_root(rt), s, DO_SEND, &tx, 6);
  settle(&loop);
  assert_int_eq(s->done, 3);
  arbor_channel_stats_t st = stats_of(&rx);
  assert_uint_eq(st.buffer_used, 3);
  assert_uint_eq(st.capacity, 3);
  assert_uint_eq(st.waiting_senders, 1);

  int got;
  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 0);
  /* The parked sender's item went into the freed slot at once. */
  assert_uint_eq(stats_of(&rx).buffer_used, 3);
  assert_uint_eq(stats_of(&rx).waiting_senders, 0);
  settle(&loop);
  assert_int_eq(s->done, 4);     /* its 5th item waits again */
  assert_uint_eq(stats_of(&rx).waiting_senders, 1);

  for (int want = 1; want < 6; want++) {
    assert_code(arbor_channel_try_recv(&rx, &got), 0);
    assert_int_eq(got, want);
    settle(&loop);
  }
  assert_true(s->returned);
  assert_int_eq(s->done, 6);
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EAGAIN);
  assert_uint_eq(stats_of(&rx).buffer_used, 0);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
  free(s);
}

/* Three senders and three receivers on cloned ends: every item arrives exactly
 * once, each sender's items in its order, and every receiver ends with end of
 * stream once the last send clone is closed. */
static void channel_each_item_delivered_exactly_once(void **state) {
  enum { PER_SENDER = 2000, NS = 3, NR = 3 };
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx, txc[NS], rxc[NR];
  chan_fib_t *s[NS], *r[NR];
  static int seen[NS * PER_SENDER];
  arbor_node_t *g;
  (void)state;
  memset(seen, 0, sizeof seen);
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 2, sizeof(int), &tx, &rx), 0);
  g = arbor_test_group(arbor_root(rt), "g");
  for (int i = 0; i < NS; i++) {
    assert_code(arbor_channel_clone(&tx, &txc[i]), 0);
    s[i] = new_fib();
    for (int k = 0; k < PER_SENDER; k++)
      s[i]->items[k] = i * PER_SENDER + k;
    spawn_chan(g, s[i], DO_SEND_THEN_CLOSE, &txc[i], PER_SENDER);
  }
  for (int i = 0; i < NR; i++) {
    assert_code(arbor_channel_clone(&rx, &rxc[i]), 0);
    r[i] = new_fib();
    spawn_chan(g, r[i], DO_RECV_THEN_CLOSE, &rxc[i], 0);
  }
  /* Only the clones are used: the originals go now, the channel stays open. */
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  arbor_test_run_until(&loop, arbor_node_is_finished(g));
  assert_outcome(g, OK);

  int total = 0;
  for (int i = 0; i < NS; i++) {
    assert_int_eq(s[i]->rc, 0);
    assert_int_eq(s[i]->done, PER_SENDER);
    assert_code(s[i]->close_rc, 0);
  }
  for (int i = 0; i < NR; i++) {
    int last[NS] = {-1, -1, -1};
    assert_code(r[i]->rc, ARBOR_EOF);
    assert_code(r[i]->close_rc, 0);
    for (int k = 0; k < r[i]->done; k++) {
      int item = r[i]->items[k];
      assert_true(item >= 0 && item < NS * PER_SENDER);
      seen[item]++;
      /* Per sender, a receiver sees that sender's items in increasing order. */
      assert_true(item > last[item / PER_SENDER]);
      last[item / PER_SENDER] = item;
    }
    total += r[i]->done;
  }
  assert_int_eq(total, NS * PER_SENDER);
  for (int k = 0; k < NS * PER_SENDER; k++)
    assert_int_eq(seen[k], 1);
  arbor_test_close(rt, &loop);   /* the last close freed the channel: no leak */
  for (int i = 0; i < NS; i++)
    free(s[i]);
  for (int i = 0; i < NR; i++)
    free(r[i]);
}

/* Closing the send side: the buffer is drained first, then every parked receiver
 * wakes with end of stream, and every later receive returns it at once. */
static void channel_close_send_side_wakes_receivers_with_eof_after_drain(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *r[3];
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 4, sizeof(int), &tx, &rx), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){1}), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){2}), 0);
  for (int i = 0; i < 3; i++) {
    r[i] = new_fib();
    spawn_chan(arbor_root(rt), r[i], DO_RECV, &rx, 0);
  }
  settle(&loop);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 3);   /* buffer drained, all parked */
  assert_int_eq(r[0]->done + r[1]->done + r[2]->done, 2);

  assert_code(arbor_channel_close(&tx), 0);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 0);   /* woken at once */
  assert_uint_eq(stats_of(&rx).open_send_ends, 0);
  arbor_test_run_until(&loop, r[0]->returned && r[1]->returned && r[2]->returned);
  for (int i = 0; i < 3; i++)
    assert_code(r[i]->rc, ARBOR_EOF);

  /* Buffered items still come out before the end of the stream. */
  int got;
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EOF);
  chan_fib_t *late = new_fib();
  spawn_chan(arbor_root(rt), late, DO_RECV, &rx, 0);
  arbor_test_run_until(&loop, late->returned);
  assert_code(late->rc, ARBOR_EOF);
  assert_int_eq(late->done, 0);
  assert_code(arbor_channel_close(&rx), 0);

  /* Drain-before-end with items in the buffer when the send side closes. */
  assert_code(arbor_channel_new(rt, 4, sizeof(int), &tx, &rx), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){7}), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){8}), 0);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 7);
  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 8);
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EOF);
  assert_code(arbor_channel_close(&rx), 0);

  arbor_test_close(rt, &loop);
  for (int i = 0; i < 3; i++)
    free(r[i]);
  free(late);
}

/* Closing the receive side: every parked sender wakes with ARBOR_EPIPE (broken), its
 * item not sent, and every later send fails at once. */
static void channel_close_recv_side_wakes_senders_with_broken(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *s[3];
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 1, sizeof(int), &tx, &rx), 0);
  for (int i = 0; i < 3; i++) {
    s[i] = new_fib();
    s[i]->items[0] = i;
    spawn_chan(arbor_root(rt), s[i], DO_SEND, &tx, 1);
  }
  settle(&loop);
  arbor_channel_stats_t st = stats_of(&tx);
  assert_uint_eq(st.buffer_used, 1);
  assert_uint_eq(st.waiting_senders, 2);

  assert_code(arbor_channel_close(&rx), 0);
  assert_uint_eq(stats_of(&tx).waiting_senders, 0);
  assert_uint_eq(stats_of(&tx).open_recv_ends, 0);
  arbor_test_run_until(&loop, s[0]->returned && s[1]->returned && s[2]->returned);
  assert_int_eq(s[0]->rc, 0);    /* its item went into the buffer */
  assert_code(s[1]->rc, ARBOR_EPIPE);
  assert_code(s[2]->rc, ARBOR_EPIPE);
  assert_int_eq(s[1]->done + s[2]->done, 0);

  assert_code(arbor_channel_try_send(&tx, &(int){9}), ARBOR_EPIPE);
  chan_fib_t *late = new_fib();
  spawn_chan(arbor_root(rt), late, DO_SEND, &tx, 1);
  arbor_test_run_until(&loop, late->returned);
  assert_code(late->rc, ARBOR_EPIPE);
  assert_int_eq(late->done, 0);

  assert_code(arbor_channel_close(&tx), 0);  /* frees it, with its buffered item */
  arbor_test_close(rt, &loop);
  for (int i = 0; i < 3; i++)
    free(s[i]);
  free(late);
}

/* An end closes only when all its clones are closed; closing one twice is
 * refused; the channel is freed by the very last close (ASan and valgrind see a
 * leak otherwise). */
static void channel_clone_counting(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, tx1, tx2, rx, rx1;
  int got;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 2, sizeof(int), &tx, &rx), 0);
  assert_code(arbor_channel_clone(&tx, &tx1), 0);
  assert_code(arbor_channel_clone(&tx1, &tx2), 0);    /* a clone of a clone */
  assert_code(arbor_channel_clone(&rx, &rx1), 0);
  assert_int_eq(arbor_channel_end_is_send(&tx2), 1);
  assert_int_eq(arbor_channel_end_is_send(&rx1), 0);
  assert_uint_eq(stats_of(&rx).open_send_ends, 3);
  assert_uint_eq(stats_of(&tx).open_recv_ends, 2);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&tx), ARBOR_EALREADY);
  assert_uint_eq(stats_of(&rx).open_send_ends, 2);
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EAGAIN);     /* still open */
  assert_code(arbor_channel_try_send(&tx2, &(int){5}), 0);      /* a clone works */
  assert_code(arbor_channel_close(&tx1), 0);
  assert_code(arbor_channel_try_recv(&rx1, &got), 0);
  assert_int_eq(got, 5);
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EAGAIN);
  assert_code(arbor_channel_close(&tx2), 0);                    /* the last one */
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EOF);
  assert_uint_eq(stats_of(&rx).open_send_ends, 0);

  assert_code(arbor_channel_close(&rx1), 0);
  assert_code(arbor_channel_close(&rx), 0);   /* the last end: freed */

  /* Receive side: the same. */
  assert_code(arbor_channel_new(rt, 2, sizeof(int), &tx, &rx), 0);
  assert_code(arbor_channel_clone(&rx, &rx1), 0);
  assert_code(arbor_channel_close(&rx), 0);
  assert_code(arbor_channel_close(&rx), ARBOR_EALREADY);
  assert_code(arbor_channel_try_send(&tx, &(int){1}), 0);
  assert_uint_eq(stats_of(&tx).open_recv_ends, 1);
  assert_code(arbor_channel_close(&rx1), 0);
  assert_code(arbor_channel_try_send(&tx, &(int){2}), ARBOR_EPIPE);
  assert_uint_eq(stats_of(&tx).open_recv_ends, 0);
  assert_code(arbor_channel_close(&tx), 0);

  arbor_test_close(rt, &loop);
}

/* Every statistic, through a send side and a receive side with fibers parked on
 * each in turn. */
static void channel_stats_report_buffer_ends_and_waiters(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx, rx1;
  chan_fib_t *r[2], *s[3];
  arbor_channel_stats_t st;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 2, sizeof(double), &tx, &rx), 0);
  assert_code(arbor_channel_clone(&rx, &rx1), 0);
  st = stats_of(&tx);
  assert_uint_eq(st.buffer_used, 0);
  assert_uint_eq(st.capacity, 2);
  assert_uint_eq(st.item_size, sizeof(double));
  assert_uint_eq(st.open_send_ends, 1);
  assert_uint_eq(st.open_recv_ends, 2);
  assert_uint_eq(st.waiting_senders, 0);
  assert_uint_eq(st.waiting_receivers, 0);
  assert_code(arbor_channel_stats(&tx, NULL), ARBOR_EINVAL);

  arbor_channel_end_t txi, rxi;   /* an int channel for the fibers */
  assert_code(arbor_channel_new(rt, 2, sizeof(int), &txi, &rxi), 0);
  for (int i = 0; i < 2; i++) {
    r[i] = new_fib();
    spawn_chan(arbor_root(rt), r[i], DO_RECV, &rxi, 1);
  }
  settle(&loop);
  st = stats_of(&rxi);
  assert_uint_eq(st.waiting_receivers, 2);
  assert_uint_eq(st.waiting_senders, 0);
  assert_uint_eq(st.buffer_used, 0);
  assert_code(arbor_channel_try_send(&txi, &(int){1}), 0);
  assert_uint_eq(stats_of(&rxi).waiting_receivers, 1);
  assert_code(arbor_channel_try_send(&txi, &(int){2}), 0);
  assert_uint_eq(stats_of(&rxi).waiting_receivers, 0);
  assert_uint_eq(stats_of(&rxi).buffer_used, 0);      /* handed over, not buffered */

  for (int i = 0; i < 3; i++) {
    s[i] = new_fib();
    s[i]->items[0] = i;
    spawn_chan(arbor_root(rt), s[i], DO_SEND, &txi, 1);
  }
  arbor_test_run_until(&loop, r[0]->returned && r[1]->returned);
  settle(&loop);
  st = stats_of(&txi);
  assert_uint_eq(st.buffer_used, 2);
  assert_uint_eq(st.waiting_senders, 1);
  assert_uint_eq(st.waiting_receivers, 0);

  int got;
  for (int i = 0; i < 3; i++)
    assert_code(arbor_channel_try_recv(&rxi, &got), 0);
  st = stats_of(&rxi);
  assert_uint_eq(st.buffer_used, 0);
  assert_uint_eq(st.waiting_senders, 0);
  arbor_test_run_until(&loop, s[0]->returned && s[1]->returned && s[2]->returned);

  assert_code(arbor_channel_close(&txi), 0);
  assert_code(arbor_channel_close(&rxi), 0);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  assert_uint_eq(stats_of(&rx1).open_send_ends, 0);
  assert_uint_eq(stats_of(&rx1).open_recv_ends, 1);
  assert_code(arbor_channel_close(&rx1), 0);
  arbor_test_close(rt, &loop);
  for (int i = 0; i < 2; i++)
    free(r[i]);
  for (int i = 0; i < 3; i++)
    free(s[i]);
}

/* Rule 4: a fiber parked in send that is cancelled returns ARBOR_ECANCELED, its
 * item not sent; the channel forgets it (no waiter left behind), and the item
 * that was buffered before is still there. Level-triggered: later sends return
 * ARBOR_ECANCELED even when there is room. */
static void rule4_channel_send_cancelled_returns_ecanceled_item_not_sent(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *s = new_fib();
  arbor_node_t *n;
  int got;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 1, sizeof(int), &tx, &rx), 0);
  s->items[0] = 10;
  s->items[1] = 11;
  s->items[2] = 12;
  n = spawn_chan(arbor_root(rt), s, DO_SEND, &tx, 3);
  settle(&loop);
  assert_int_eq(s->done, 1);
  assert_uint_eq(stats_of(&tx).waiting_senders, 1);

  assert_code(arbor_node_cancel(n), 0);
  assert_uint_eq(stats_of(&tx).waiting_senders, 0);   /* unhooked synchronously */
  arbor_test_run_until(&loop, s->finishes == 1);
  assert_code(s->rc, ARBOR_ECANCELED);
  assert_int_eq(s->done, 1);
  assert_outcome(n, CANCELLED);

  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 10);
  assert_code(arbor_channel_try_recv(&rx, &got), ARBOR_EAGAIN);   /* 11 was not sent */

  /* Rendezvous: the same, and a receiver that comes later finds no sender. */
  arbor_channel_end_t tx0, rx0;
  chan_fib_t *s0 = new_fib();
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx0, &rx0), 0);
  s0->items[0] = 20;
  n = spawn_chan(arbor_root(rt), s0, DO_SEND, &tx0, 1);
  settle(&loop);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_until(&loop, s0->finishes == 1);
  assert_code(s0->rc, ARBOR_ECANCELED);
  assert_code(arbor_channel_try_recv(&rx0, &got), ARBOR_EAGAIN);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  assert_code(arbor_channel_close(&tx0), 0);
  assert_code(arbor_channel_close(&rx0), 0);
  arbor_test_close(rt, &loop);
  free(s);
  free(s0);
}

/* A body for rule4_channel_recv_*: parks in recv, then after the cancel keeps
 * trying (level-triggered: each try returns ARBOR_ECANCELED, takes nothing). */
typedef struct {
  arbor_channel_end_t *rx;
  int first_rc, got, later_ecanceled, returned;
  arbor_ctx_t *cx;
} persistent_t;

static int persistent_recv(arbor_ctx_t *cx, void *arg) {
  persistent_t *f = arg;
  f->cx = cx;
  f->first_rc = arbor_channel_recv(cx, f->rx, &f->got);
  for (int i = 0; i < 3; i++) {
    int item = -1;
    if (arbor_channel_recv(cx, f->rx, &item) == ARBOR_ECANCELED && item == -1)
      f->later_ecanceled++;
  }
  f->returned = 1;
  return f->first_rc;
}

static arbor_node_t *spawn_persistent(arbor_runtime_t *rt, persistent_t *f) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = "persistent", .fn = persistent_recv, .arg = f};
  assert_code(arbor_fiber_spawn(arbor_root(rt), &spec, &n), 0);
  return n;
}

/* Rule 4: a fiber parked in recv that is cancelled returns ARBOR_ECANCELED and
 * takes nothing: the next item goes to the buffer (or the next receiver), and
 * later receives return ARBOR_ECANCELED even with an item waiting. */
static void rule4_channel_recv_cancelled_returns_ecanceled_takes_nothing(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  persistent_t f = {.rx = &rx, .got = -1};
  arbor_node_t *n;
  int got;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 1, sizeof(int), &tx, &rx), 0);
  n = spawn_persistent(rt, &f);
  settle(&loop);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 1);
  assert_code(arbor_node_cancel(n), 0);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 0);
  assert_code(arbor_channel_try_send(&tx, &(int){30}), 0);     /* buffered, not taken */
  arbor_test_run_until(&loop, f.returned);
  assert_code(f.first_rc, ARBOR_ECANCELED);
  assert_int_eq(f.got, -1);
  assert_int_eq(f.later_ecanceled, 3);
  assert_uint_eq(stats_of(&rx).buffer_used, 1);
  assert_code(arbor_channel_try_recv(&rx, &got), 0);
  assert_int_eq(got, 30);
  settle(&loop);
  assert_outcome(n, CANCELLED);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
}

/* Rule 4's other half: an item handed to a parked receiver is its, even when the
 * cancellation comes before the fiber runs again; likewise a parked sender whose
 * item was taken returns 0. Nothing is lost either way. */
static void rule4_channel_completed_wait_survives_later_cancel(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  persistent_t f = {.rx = &rx, .got = -1};
  chan_fib_t *s = new_fib();
  arbor_node_t *n;
  int got = 0;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);

  n = spawn_persistent(rt, &f);
  settle(&loop);
  assert_code(arbor_channel_try_send(&tx, &(int){40}), 0);     /* handed over */
  assert_code(arbor_node_cancel(n), 0);                       /* before it runs */
  arbor_test_run_until(&loop, f.returned);
  assert_code(f.first_rc, 0);
  assert_int_eq(f.got, 40);
  assert_int_eq(f.later_ecanceled, 3);

  s->items[0] = 41;
  n = spawn_chan(arbor_root(rt), s, DO_SEND, &tx, 1);
  settle(&loop);
  assert_code(arbor_channel_try_recv(&rx, &got), 0);           /* taken */
  assert_int_eq(got, 41);
  assert_code(arbor_node_cancel(n), 0);
  arbor_test_run_until(&loop, s->returned);
  assert_code(s->rc, 0);
  assert_int_eq(s->done, 1);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  arbor_test_close(rt, &loop);
  free(s);
}

/* Closing the runtime cancels fibers parked in send and recv (rule 3, 4): they
 * wake with ARBOR_ECANCELED, close their ends on the way out, and the channel is
 * freed by the last close. */
static void rule4_channel_waiters_cancelled_by_runtime_close(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx, txc, rxc[2];
  chan_fib_t *s = new_fib(), *r[2];
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  assert_code(arbor_channel_clone(&tx, &txc), 0);
  spawn_chan(arbor_root(rt), s, DO_SEND_THEN_CLOSE, &txc, 1);
  settle(&loop);
  assert_uint_eq(stats_of(&rx).waiting_senders, 1);
  assert_code(arbor_channel_close(&tx), 0);

  /* A second channel with two parked receivers. */
  arbor_channel_end_t tx2, rx2;
  assert_code(arbor_channel_new(rt, 4, sizeof(int), &tx2, &rx2), 0);
  for (int i = 0; i < 2; i++) {
    r[i] = new_fib();
    assert_code(arbor_channel_clone(&rx2, &rxc[i]), 0);
    spawn_chan(arbor_root(rt), r[i], DO_RECV_THEN_CLOSE, &rxc[i], 0);
  }
  assert_code(arbor_channel_close(&rx2), 0);
  settle(&loop);
  assert_uint_eq(stats_of(&tx2).waiting_receivers, 2);

  /* The rendezvous sender is parked; its receive end closes only after it. */
  arbor_test_close(rt, &loop);
  assert_code(s->rc, ARBOR_ECANCELED);
  assert_int_eq(s->finishes, 1);
  for (int i = 0; i < 2; i++) {
    assert_code(r[i]->rc, ARBOR_ECANCELED);
    assert_int_eq(r[i]->finishes, 1);
  }
  assert_uint_eq(stats_of(&rx).open_send_ends, 0);
  assert_uint_eq(stats_of(&rx).waiting_senders, 0);
  assert_uint_eq(stats_of(&tx2).open_recv_ends, 0);
  assert_code(arbor_channel_try_send(&tx2, &(int){1}), ARBOR_EPIPE);
  assert_code(arbor_channel_close(&rx), 0);    /* the channels outlive the runtime */
  assert_code(arbor_channel_close(&tx2), 0);
  free(s);
  for (int i = 0; i < 2; i++)
    free(r[i]);
}

/* A fiber that parks in recv on an end someone else closes under it: when that
 * closes the receive side, it wakes with end of stream (the channel can be freed
 * with nobody left on its lists). */
static void channel_close_under_parked_receiver_wakes_it(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *r = new_fib();
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 1, sizeof(int), &tx, &rx), 0);
  spawn_chan(arbor_root(rt), r, DO_RECV, &rx, 0);
  settle(&loop);
  assert_code(arbor_channel_close(&rx), 0);
  assert_uint_eq(stats_of(&tx).waiting_receivers, 0);
  assert_code(arbor_channel_close(&tx), 0);     /* frees it while r is queued */
  arbor_test_run_until(&loop, r->returned);
  assert_code(r->rc, ARBOR_EOF);
  arbor_test_close(rt, &loop);
  free(r);
}

/* The snapshot shows where a fiber waits: "channel_send" / "channel_recv" at the
 * call's file:line. */
static void channel_wait_site_reported(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx;
  chan_fib_t *s = new_fib(), *r = new_fib();
  arbor_node_t *sn, *rn;
  arbor_fiber_info_t fi;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  sn = spawn_chan(arbor_root(rt), s, DO_SEND, &tx, 1);
  arbor_channel_end_t tx2, rx2;
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx2, &rx2), 0);
  rn = spawn_chan(arbor_root(rt), r, DO_RECV, &rx2, 1);
  settle(&loop);

  assert_code(arbor_node_fiber_info(sn, &fi), 0);
  assert_non_null(fi.wait_what);
  assert_string_equal(fi.wait_what, "channel_send");
  assert_non_null(strstr(fi.wait_file, "test_channel.c"));
  assert_int_eq(fi.wait_line, s->site);
  assert_code(arbor_node_fiber_info(rn, &fi), 0);
  assert_non_null(fi.wait_what);
  assert_string_equal(fi.wait_what, "channel_recv");
  assert_int_eq(fi.wait_line, r->site);

  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  assert_code(arbor_channel_close(&tx2), 0);
  assert_code(arbor_channel_close(&rx2), 0);
  arbor_test_run_until(&loop, s->returned && r->returned);
  assert_code(s->rc, ARBOR_EPIPE);
  assert_code(r->rc, ARBOR_EOF);
  assert_code(arbor_node_fiber_info(sn, &fi), 0);
  assert_null(fi.wait_what);
  arbor_test_close(rt, &loop);
  free(s);
  free(r);
}

/* Misuse: NULL arguments, the wrong end, a closed or never-opened end, a
 * checkpoint called off its fiber (ARBOR_ESTATE), items of size 0. */
typedef struct {
  arbor_channel_end_t *tx, *rx;
  int wrong_send, wrong_recv, null_item, null_cx_rc;
  arbor_ctx_t *cx;
  int returned;
} misuse_t;

static int misuse_body(arbor_ctx_t *cx, void *arg) {
  misuse_t *m = arg;
  int item = 0;
  m->cx = cx;
  m->wrong_send = arbor_channel_send(cx, m->rx, &item);
  m->wrong_recv = arbor_channel_recv(cx, m->tx, &item);
  m->null_item = arbor_channel_send(cx, m->tx, NULL);
  m->null_cx_rc = arbor_channel_send(NULL, m->tx, &item);
  arbor_channel_recv(cx, m->rx, &item);         /* parks until the test closes */
  m->returned = 1;
  return 0;
}

static void channel_misuse_is_refused(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_channel_end_t tx, rx, zero = {0}, c;
  misuse_t m = {.tx = &tx, .rx = &rx};
  arbor_node_t *n;
  int item = 0;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  assert_code(arbor_channel_new(NULL, 1, 4, &tx, &rx), ARBOR_EINVAL);
  assert_code(arbor_channel_new(rt, 1, 4, NULL, &rx), ARBOR_EINVAL);
  assert_code(arbor_channel_new(rt, 1, 4, &tx, NULL), ARBOR_EINVAL);
  assert_code(arbor_channel_new(rt, 1, 4, &tx, &tx), ARBOR_EINVAL);
  assert_code(arbor_channel_new(rt, SIZE_MAX / 2, 4, &tx, &rx), ARBOR_ENOMEM);
  assert_code(arbor_channel_new(rt, 1, sizeof(int), &tx, &rx), 0);

  arbor_fiber_spec_t spec = {.name = "misuse", .fn = misuse_body, .arg = &m};
  assert_code(arbor_fiber_spawn(arbor_root(rt), &spec, &n), 0);
  settle(&loop);
  assert_code(m.wrong_send, ARBOR_EINVAL);
  assert_code(m.wrong_recv, ARBOR_EINVAL);
  assert_code(m.null_item, ARBOR_EINVAL);
  assert_code(m.null_cx_rc, ARBOR_EINVAL);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 1);
  /* Off the fiber (the loop's stack): ARBOR_ESTATE, nothing changes. */
  assert_code(arbor_channel_send(m.cx, &tx, &item), ARBOR_ESTATE);
  assert_code(arbor_channel_recv(m.cx, &rx, &item), ARBOR_ESTATE);
  assert_uint_eq(stats_of(&rx).waiting_receivers, 1);
  assert_uint_eq(stats_of(&rx).buffer_used, 0);

  assert_code(arbor_channel_try_send(NULL, &item), ARBOR_EINVAL);
  assert_code(arbor_channel_try_send(&rx, &item), ARBOR_EINVAL);
  assert_code(arbor_channel_try_send(&tx, NULL), ARBOR_EINVAL);
  assert_code(arbor_channel_try_recv(&tx, &item), ARBOR_EINVAL);
  assert_code(arbor_channel_try_recv(&rx, NULL), ARBOR_EINVAL);
  assert_code(arbor_channel_clone(&tx, NULL), ARBOR_EINVAL);
  assert_code(arbor_channel_clone(&tx, &tx), ARBOR_EINVAL);
  assert_code(arbor_channel_clone(NULL, &c), ARBOR_EINVAL);
  assert_code(arbor_channel_close(NULL), ARBOR_EINVAL);
  assert_code(arbor_channel_stats(NULL, &(arbor_channel_stats_t){0}), ARBOR_EINVAL);
  assert_code(arbor_channel_end_is_send(NULL), ARBOR_EINVAL);

  /* A never-opened end and a closed one. */
  assert_code(arbor_channel_try_send(&zero, &item), ARBOR_ESTATE);
  assert_code(arbor_channel_close(&zero), ARBOR_EALREADY);
  assert_code(arbor_channel_clone(&tx, &c), 0);
  assert_code(arbor_channel_close(&c), 0);
  assert_code(arbor_channel_close(&c), ARBOR_EALREADY);
  assert_code(arbor_channel_try_send(&c, &item), ARBOR_ESTATE);
  assert_code(arbor_channel_clone(&c, &zero), ARBOR_ESTATE);
  assert_code(arbor_channel_stats(&c, &(arbor_channel_stats_t){0}), ARBOR_ESTATE);
  assert_code(arbor_channel_end_is_send(&c), ARBOR_ESTATE);
  assert_code(arbor_channel_send(m.cx, &c, &item), ARBOR_ESTATE);
  assert_uint_eq(stats_of(&tx).open_send_ends, 1);

  /* Items of size 0: a signal channel; NULL items are fine. */
  arbor_channel_end_t sig_tx, sig_rx;
  assert_code(arbor_channel_new(rt, 1, 0, &sig_tx, &sig_rx), 0);
  assert_code(arbor_channel_try_send(&sig_tx, NULL), 0);
  assert_code(arbor_channel_try_send(&sig_tx, NULL), ARBOR_EAGAIN);
  assert_code(arbor_channel_try_recv(&sig_rx, NULL), 0);
  assert_code(arbor_channel_close(&sig_tx), 0);
  assert_code(arbor_channel_try_recv(&sig_rx, NULL), ARBOR_EOF);
  assert_code(arbor_channel_close(&sig_rx), 0);

  arbor_test_close(rt, &loop);   /* cancels the parked fiber */
  assert_true(m.returned);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
}

/* Shutdown's give-up (rule 8's shutdown half) on a shielded fiber parked in a
 * receive: the fiber must leave the channel's wait list before it is woken, or the
 * channel keeps a waiter on a dead stack (a later send would write into it). */
static arbor_channel_end_t *shielded_rx;
static int shielded_rc;

static int shielded_recv(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_scope_t shield;
  int item;
  arbor_scope_enter(cx, &shield, &(arbor_scope_opts_t){.shield = 1});
  shielded_rc = arbor_channel_recv(cx, shielded_rx, &item);
  arbor_scope_exit(cx, &shield);
  return 0;
}

static void rule8_abandoned_receiver_leaves_the_wait_list(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_channel_end_t tx, rx;
  arbor_channel_stats_t st;
  arbor_fiber_spec_t spec = {.name = "shielded", .fn = shielded_recv};
  (void)state;
  opts.no_signals = 1;
  arbor_test_open(&loop, &rt, &opts);
  assert_code(arbor_channel_new(rt, 0, sizeof(int), &tx, &rx), 0);
  shielded_rx = &rx;
  shielded_rc = 1;
  assert_code(arbor_fiber_spawn(arbor_root(rt), &spec, NULL), 0);
  assert_code(arbor_run(rt), ARBOR_EDEADLK);     /* nothing could ever wake it */
  assert_int_eq(shielded_rc, ARBOR_ECANCELED);
  assert_code(arbor_channel_stats(&tx, &st), 0);
  assert_uint_eq(st.waiting_receivers, 0);
  assert_code(arbor_channel_try_send(&tx, &(int){7}), ARBOR_EAGAIN);
  assert_code(arbor_channel_close(&tx), 0);
  assert_code(arbor_channel_close(&rx), 0);
  assert_int_eq(uv_loop_close(&loop), 0);
}

static const struct CMUnitTest channel_tests[] = {
    cmocka_unit_test(rule8_abandoned_receiver_leaves_the_wait_list),
    cmocka_unit_test(channel_order_is_fifo),
    cmocka_unit_test(channel_rendezvous_blocks_sender_until_receiver),
    cmocka_unit_test(channel_buffer_holds_capacity_items),
    cmocka_unit_test(channel_each_item_delivered_exactly_once),
    cmocka_unit_test(channel_close_send_side_wakes_receivers_with_eof_after_drain),
    cmocka_unit_test(channel_close_recv_side_wakes_senders_with_broken),
    cmocka_unit_test(channel_clone_counting),
    cmocka_unit_test(channel_stats_report_buffer_ends_and_waiters),
    cmocka_unit_test(rule4_channel_send_cancelled_returns_ecanceled_item_not_sent),
    cmocka_unit_test(rule4_channel_recv_cancelled_returns_ecanceled_takes_nothing),
    cmocka_unit_test(rule4_channel_completed_wait_survives_later_cancel),
    cmocka_unit_test(rule4_channel_waiters_cancelled_by_runtime_close),
    cmocka_unit_test(channel_close_under_parked_receiver_wakes_it),
    cmocka_unit_test(channel_wait_site_reported),
    cmocka_unit_test(channel_misuse_is_refused),
};

ARBOR_TEST_MAIN(channel_tests)
