/* supervisor/channel.c - channels: bounded FIFO queues of fixed-size items between
 * fibers, like anyio's memory object streams.
 *
 * A channel is a ring buffer of `capacity` items plus two FIFO wait lists, one of
 * parked senders and one of parked receivers. Two invariants keep it simple:
 *  - receivers wait only while the buffer is empty and no sender waits;
 *  - senders wait only while the buffer is full (always, for capacity 0) and no
 *    receiver waits.
 * So an operation that finds a waiter on the other side completes at once by
 * copying directly: a send hands its item to the first parked receiver (into the
 * receiver's own buffer, before waking it); a receive that frees a slot moves the
 * first parked sender's item into it (or, for capacity 0, takes it directly). A
 * woken fiber therefore never has to look at the channel again: its item was
 * copied before the wake-up, so the order is FIFO among senders and among
 * receivers, and a wake-up can never be stolen by a fiber that came later.
 *
 * Waiter records live on the parked fiber's stack (a fiber's stack stays valid
 * while it is parked). That is safe because nothing touches a record once its
 * fiber can run again: whoever wakes a waiter unlinks it first and copies what the
 * waiter needs before calling arbor__fiber_wake, and when cancellation reaches a
 * parked fiber first, the unhook (waiter_unhook) unlinks the record synchronously
 * before the park returns. After the park returns, the checkpoint does not touch
 * the channel either: it may have been freed meanwhile (every end closed).
 *
 * Ends are caller-owned arbor_channel_end_t structs (as arbor_scope_t); the channel
 * only counts its open ends per side, so cloning allocates nothing and a closed end
 * is detected on every later use. The channel is freed by the close of its last
 * end. Items left in the buffer then are dropped: they are plain bytes.
 *
 * Codes: end of stream is ARBOR_EOF (equal to libuv's UV_EOF, which streams return
 * for the same thing), a broken channel (every receive end closed) ARBOR_EPIPE, and
 * a try_ call that would block ARBOR_EAGAIN (as uv_try_write).
 */
#include <string.h>

#include "internal.h"

struct waiter {
  struct waiter *next, *prev;    /* in the channel's senders or receivers list */
  struct waitlist *list;         /* the list it is in */
  arbor_ctx_t *cx;
  void *item;                    /* a sender's item, or a receiver's destination */
};

/* A circular doubly-linked list with a sentinel: FIFO, O(1) unlink. */
struct waitlist {
  struct waiter head;
  size_t len;
};

struct arbor_channel_s {
  arbor_runtime_t *rt;
  size_t capacity;               /* items; 0: rendezvous */
  size_t item_size;
  size_t first, used;            /* the ring: oldest item's index, item count */
  size_t send_ends, recv_ends;   /* open ends (clones included) */
  struct waitlist senders, receivers;
  unsigned char buf[];           /* capacity * item_size bytes */
};

#define EOS ARBOR_EOF
#define BROKEN ARBOR_EPIPE
#define WOULD_BLOCK ARBOR_EAGAIN

/* ------------------------------------------------------------- wait lists */

static void waitlist_init(struct waitlist *l) {
  l->head.next = l->head.prev = &l->head;
  l->len = 0;
}

static void waitlist_push(struct waitlist *l, struct waiter *w) {
  w->prev = l->head.prev;
  w->next = &l->head;
  l->head.prev->next = w;
  l->head.prev = w;
  l->len++;
}

static void waitlist_unlink(struct waitlist *l, struct waiter *w) {
  ARBOR_ASSERT(l->len > 0 && w->next != NULL);
  w->prev->next = w->next;
  w->next->prev = w->prev;
  w->next = w->prev = NULL;
  l->len--;
}

/* Unlinks and returns the oldest waiter, or NULL. */
static struct waiter *waitlist_pop(struct waitlist *l) {
  struct waiter *w = l->head.next;
  if (w == &l->head)
    return NULL;
  waitlist_unlink(l, w);
  return w;
}

/* Wakes every waiter of l with rc, oldest first. */
static void waitlist_wake_all(struct waitlist *l, int rc) {
  struct waiter *w;
  while ((w = waitlist_pop(l)) != NULL)
    arbor__fiber_wake(w->cx, rc);
}

/* ------------------------------------------------------------------ items */

static void copy_item(const struct arbor_channel_s *ch, void *dst, const void *src) {
  if (ch->item_size > 0)         /* memcpy with NULL is undefined even for 0 bytes */
    memcpy(dst, src, ch->item_size);
}

static unsigned char *slot(struct arbor_channel_s *ch, size_t i) {
  return ch->buf + ((ch->first + i) % ch->capacity) * ch->item_size;
}

static void buffer_push(struct arbor_channel_s *ch, const void *item) {
  ARBOR_ASSERT(ch->used < ch->capacity);
  copy_item(ch, slot(ch, ch->used), item);
  ch->used++;
}

static void buffer_pop(struct arbor_channel_s *ch, void *out) {
  ARBOR_ASSERT(ch->used > 0);
  copy_item(ch, out, slot(ch, 0));
  ch->first = (ch->first + 1) % ch->capacity;
  ch->used--;
}

/* The non-blocking halves, shared by the checkpoints and the try_ calls. Each
 * returns 0 when the operation completed, or the code to return, WOULD_BLOCK
 * meaning "park". */

static int send_now(struct arbor_channel_s *ch, const void *item) {
  if (ch->recv_ends == 0)
    return BROKEN;
  struct waiter *r = waitlist_pop(&ch->receivers);
  if (r != NULL) {
    ARBOR_ASSERT(ch->used == 0);
    copy_item(ch, r->item, item);    /* into the receiver's buffer, then wake it */
    arbor__fiber_wake(r->cx, 0);
    return 0;
  }
  if (ch->used < ch->capacity) {
    buffer_push(ch, item);
    return 0;
  }
  return WOULD_BLOCK;
}

static int recv_now(struct arbor_channel_s *ch, void *out) {
  struct waiter *s;
  if (ch->used > 0) {
    buffer_pop(ch, out);
    /* A slot is free: the oldest parked sender's item takes it, so it stays
     * behind every item already buffered. */
    if ((s = waitlist_pop(&ch->senders)) != NULL) {
      buffer_push(ch, s->item);
      arbor__fiber_wake(s->cx, 0);
    }
    return 0;
  }
  if ((s = waitlist_pop(&ch->senders)) != NULL) {   /* capacity 0: a rendezvous */
    copy_item(ch, out, s->item);
    arbor__fiber_wake(s->cx, 0);
    return 0;
  }
  return ch->send_ends == 0 ? EOS : WOULD_BLOCK;
}

/* ------------------------------------------------------------------- ends */

/* The channel behind an open end of the wanted direction, or NULL with *rc set:
 * ARBOR_EINVAL (NULL, or the wrong direction), ARBOR_ESTATE (closed). */
static struct arbor_channel_s *end_channel(const arbor_channel_end_t *end, int want_send,
                                           int *rc) {
  if (end == NULL) {
    *rc = ARBOR_EINVAL;
    return NULL;
  }
  if (end->channel_ == NULL) {
    *rc = ARBOR_ESTATE;
    return NULL;
  }
  if (want_send >= 0 && end->send_ != want_send) {
    *rc = ARBOR_EINVAL;
    return NULL;
  }
  return end->channel_;
}

/* Checks shared by both checkpoints, in the order the header documents them. */
static struct arbor_channel_s *checkpoint_channel(arbor_ctx_t *cx,
                                                  const arbor_channel_end_t *end,
                                                  const void *item, int want_send,
                                                  int *rc) {
  struct arbor_channel_s *ch = end_channel(end, want_send, rc);
  if (ch == NULL)
    return NULL;
  if (item == NULL && ch->item_size > 0) {
    *rc = ARBOR_EINVAL;
    return NULL;
  }
  if ((*rc = arbor__checkpoint(cx)) < 0)
    return NULL;
  if (cx->task->rt != ch->rt) {  /* a fiber of another runtime */
    *rc = ARBOR_EINVAL;
    return NULL;
  }
  return ch;
}

int arbor_channel_new(arbor_runtime_t *rt, size_t capacity, size_t item_size,
                      arbor_channel_end_t *send_end, arbor_channel_end_t *recv_end) {
  if (rt == NULL || send_end == NULL || recv_end == NULL || send_end == recv_end)
    return ARBOR_EINVAL;
  if (capacity > 0 && item_size > (SIZE_MAX - sizeof(struct arbor_channel_s)) / capacity)
    return ARBOR_ENOMEM;
  struct arbor_channel_s *ch = malloc(sizeof *ch + capacity * item_size);
  if (ch == NULL)
    return ARBOR_ENOMEM;
  ch->rt = rt;
  ch->capacity = capacity;
  ch->item_size = item_size;
  ch->first = ch->used = 0;
  ch->send_ends = ch->recv_ends = 1;
  waitlist_init(&ch->senders);
  waitlist_init(&ch->receivers);
  *send_end = (arbor_channel_end_t){.channel_ = ch, .send_ = 1};
  *recv_end = (arbor_channel_end_t){.channel_ = ch, .send_ = 0};
  return 0;
}

int arbor_channel_clone(const arbor_channel_end_t *end, arbor_channel_end_t *clone) {
  int rc;
  if (clone == NULL || clone == end)
    return ARBOR_EINVAL;
  struct arbor_channel_s *ch = end_channel(end, -1, &rc);
  if (ch == NULL)
    return rc;
  if (end->send_)
    ch->send_ends++;
  else
    ch->recv_ends++;
  *clone = *end;
  return 0;
}

int arbor_channel_close(arbor_channel_end_t *end) {
  if (end == NULL)
    return ARBOR_EINVAL;
  struct arbor_channel_s *ch = end->channel_;
  if (ch == NULL)
    return ARBOR_EALREADY;
  end->channel_ = NULL;
  if (end->send_) {
    ARBOR_ASSERT(ch->send_ends > 0);
    /* The last send end: receivers wait only on an empty buffer with no parked
     * sender, so nothing more will ever come to them. Parked senders (whose end was
     * closed under them) stay: their items are still delivered, before the end. */
    if (--ch->send_ends == 0)
      waitlist_wake_all(&ch->receivers, EOS);
  } else {
    ARBOR_ASSERT(ch->recv_ends > 0);
    /* The last receive end: no item will ever be taken again. Senders learn it is
     * broken; receivers still parked (their end closed under them) get the end of
     * the stream. */
    if (--ch->recv_ends == 0) {
      waitlist_wake_all(&ch->senders, BROKEN);
      waitlist_wake_all(&ch->receivers, EOS);
    }
  }
  if (ch->send_ends == 0 && ch->recv_ends == 0) {
    ARBOR_ASSERT(ch->senders.len == 0 && ch->receivers.len == 0);
    free(ch);
  }
  return 0;
}

int arbor_channel_end_is_send(const arbor_channel_end_t *end) {
  int rc;
  if (end_channel(end, -1, &rc) == NULL)
    return rc;
  return end->send_;
}

int arbor_channel_stats(const arbor_channel_end_t *end, arbor_channel_stats_t *stats) {
  int rc;
  if (stats == NULL)
    return ARBOR_EINVAL;
  const struct arbor_channel_s *ch = end_channel(end, -1, &rc);
  if (ch == NULL)
    return rc;
  *stats = (arbor_channel_stats_t){.buffer_used = ch->used,
                                   .capacity = ch->capacity,
                                   .item_size = ch->item_size,
                                   .open_send_ends = ch->send_ends,
                                   .open_recv_ends = ch->recv_ends,
                                   .waiting_senders = ch->senders.len,
                                   .waiting_receivers = ch->receivers.len};
  return 0;
}

/* ------------------------------------------------------------ checkpoints */

/* The park's unhook: cancellation reached a parked fiber before any wake-up. Runs
 * on whatever stack spread the cancellation; it only unlinks the record, so no
 * one will copy into or out of it, or wake the fiber, again. */
static void waiter_unhook(arbor_ctx_t *cx, void *arg) {
  struct waiter *w = arg;
  (void)cx;
  waitlist_unlink(w->list, w);
}

/* Parks cx on list until a peer completes its operation (0), the other side closes
 * (EOS or BROKEN) or cancellation comes (ARBOR_ECANCELED, and the unhook unlinked
 * the record). The channel may be gone when this returns. */
static int park(arbor_ctx_t *cx, struct waitlist *list, void *item, const char *what,
                const char *file, int line) {
  struct waiter w = {.list = list, .cx = cx, .item = item};
  waitlist_push(list, &w);
  return arbor__fiber_park(cx, what, file, line, waiter_unhook, &w);
}

int arbor_channel_send_at(arbor_ctx_t *cx, const arbor_channel_end_t *end, const void *item,
                          const char *file, int line) {
  int rc;
  struct arbor_channel_s *ch = checkpoint_channel(cx, end, item, 1, &rc);
  if (ch == NULL)
    return rc;
  if ((rc = send_now(ch, item)) != WOULD_BLOCK)
    return rc;
  /* The item stays in the caller's memory while parked: a receiver copies it out
   * before waking us, so it may live on this fiber's stack. */
  return park(cx, &ch->senders, (void *)item, "channel_send", file, line);
}

int arbor_channel_recv_at(arbor_ctx_t *cx, const arbor_channel_end_t *end, void *item,
                          const char *file, int line) {
  int rc;
  struct arbor_channel_s *ch = checkpoint_channel(cx, end, item, 0, &rc);
  if (ch == NULL)
    return rc;
  if ((rc = recv_now(ch, item)) != WOULD_BLOCK)
    return rc;
  /* A sender copies its item straight into `item` before waking us: once woken
   * with 0, the item is ours even if cancellation comes before we run. */
  return park(cx, &ch->receivers, item, "channel_recv", file, line);
}

int arbor_channel_try_send(const arbor_channel_end_t *end, const void *item) {
  int rc;
  struct arbor_channel_s *ch = end_channel(end, 1, &rc);
  if (ch == NULL)
    return rc;
  if (item == NULL && ch->item_size > 0)
    return ARBOR_EINVAL;
  return send_now(ch, item);
}

int arbor_channel_try_recv(const arbor_channel_end_t *end, void *item) {
  int rc;
  struct arbor_channel_s *ch = end_channel(end, 0, &rc);
  if (ch == NULL)
    return rc;
  if (item == NULL && ch->item_size > 0)
    return ARBOR_EINVAL;
  return recv_now(ch, item);
}
