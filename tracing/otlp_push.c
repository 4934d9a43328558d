/* tracing/otlp_push.c - OTLP/HTTP push: every node that FINISHES becomes one
 * span, queued, batched and POSTed to <endpoint>/v1/traces from the loop.
 *
 * Transport. libcurl's multi "socket" interface driven by the runtime's uv loop
 * (the pattern of libcurl's docs/examples/multi-uv.c): libcurl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket, struct
 * sock) and when to call it back (CURLMOPT_TIMERFUNCTION: one uv_timer_t), and
 * we call curl_multi_socket_action on readiness and timeouts. libcurl never
 * blocks there: connecting, TLS, sending and reading all happen in those
 * calls, a little at a time. CURLOPT_NOSIGNAL because signals belong to the
 * program (and libcurl's alarm()-based DNS timeout would interrupt the loop);
 * a numeric endpoint needs no resolver at all, a name goes through libcurl's
 * threaded resolver in the Debian build.
 *
 * Spans. The events subscription (supervisor/extension.h) only starts a zero
 * timer (it is called from inside whatever tree operation records the event);
 * the timer reads the ring with our own cursor and, for each STATE event to
 * FINISHED, finds the node and writes it as one OTLP span (tracing/otlp.c).
 * The root never FINISHES: its span is queued at the runtime's close. A node evicted from retention before we read its event
 * can no longer be written: it counts as dropped. The span's text is copied
 * into the queue, which is bounded twice (max_queue spans, max_queue_bytes
 * bytes): a span that does not fit is dropped and counted, never waited for.
 * A full queue drops without writing the span first, so a dead collector costs
 * the loop a counter increment per finished node.
 *
 * Batches. One request in flight at a time. A batch leaves when max_batch spans
 * are queued or flush_ms after its oldest span was queued. Its body is
 * otlp_begin + the span texts (jw puts the commas) + otlp_end; the span texts
 * are freed then and the body is kept until the batch is settled, so that a
 * retry sends the same bytes. The spans of the batch in flight still count in
 * queue_len / queue_bytes and against the bounds: the bounds are the memory
 * the exporter holds in spans, whatever the collector does.
 *   2xx                                   exported
 *   429, 502, 503, 504, no answer (connect
 *   error, timeout, reset ...)            failed; the same body again after a
 *                                         backoff: backoff_ms doubling up to
 *                                         backoff_max_ms, or Retry-After
 *                                         (seconds) when the answer has it,
 *                                         capped at backoff_max_ms
 *   anything else (other 4xx/5xx, 3xx)    failed; the batch is dropped (the
 *                                         collector will not take it later)
 * A batch that keeps failing is retried as long as the runtime lives: spans
 * that finish meanwhile queue up to the bounds and are dropped past them.
 *
 * One timer, `flush`, serves three purposes that never overlap: the batching
 * deadline (nothing in flight, no backoff), the backoff (a batch waits to be
 * retried) and, at the runtime's close, the final flush's deadline.
 *
 * Lifetime. Every uv handle (two timers, an idle handle, one poll per socket libcurl opens)
 * is counted with arbor__runtime_hold / release, so the runtime frees itself
 * only after the exporter has closed them all, and the exporter frees itself
 * with its last handle. At the runtime's close (struct arbor__closer, called
 * once every node has FINISHED) the ring is read one last time, and what is
 * queued gets one last flush: batch after batch with no backoff, until the
 * queue is empty, a request fails, or timeout_ms passed; what is left is
 * dropped and counted, and the exporter shuts down. arbor_otlp_stop shuts down
 * at once.
 *
 * curl_global_init. libcurl wants it called once per process before any other
 * libcurl call; arbor calls it (through pthread_once) at the first
 * arbor_otlp_start and never calls curl_global_cleanup (the process ends
 * first). curl_global_init is thread-safe only from libcurl 7.84.0 on, and only
 * when curl_version_info reports CURL_VERSION_THREADSAFE (Debian 12's 7.88
 * does). With an older libcurl, a program that uses libcurl from other threads
 * must call curl_global_init itself before starting them (a second call is a
 * counted no-op).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "extension.h"
#include "trace.h"

#define DEFAULT_MAX_QUEUE 2048
#define DEFAULT_MAX_QUEUE_BYTES (4u << 20)
#define DEFAULT_MAX_BATCH 512
#define DEFAULT_FLUSH_MS 1000
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_BACKOFF_MS 500
#define DEFAULT_BACKOFF_MAX_MS 30000
/* Events read per arbor_events_read call, and per timer callback: past the
 * latter the timer is started again for the next loop iteration, so that a
 * burst of finishes is written out over several iterations. */
#define READ_CHUNK 256
#define READ_TURN_MAX 4096

/* One socket libcurl asked us to watch. */
struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct arbor_otlp_s *otlp;
  struct sock *next, *prev;
};

/* A queued span: its JSON text (one object) and when it was queued. */
struct span {
  char *text;
  size_t len;
  uint64_t at_ms;                /* uv_now when queued */
};

enum { RUNNING, FINAL, DOWN };

struct arbor_otlp_s {
  arbor_runtime_t *rt;
  uv_loop_t *loop;
  arbor_otlp_opts_t opts;        /* defaults filled in; strings are ours (below) */
  char *url;                     /* endpoint + "/v1/traces" */
  char *service_name;
  struct curl_slist *headers;
  struct trace_resource res;
  uint64_t root_id;

  CURLM *multi;
  CURL *easy;                    /* one, reused: one request in flight at most */
  int in_flight;
  struct sock *socks;

  uv_idle_t wake;                /* reads the ring on the next loop iteration */
  uv_timer_t flush;              /* batch deadline, backoff, final deadline */
  uv_timer_t curl_timer;         /* libcurl's timeout */
  int handles;                   /* open uv handles (each holds the runtime) */

  struct arbor__events_sub events;
  struct arbor__closer closer;
  uint64_t cursor;               /* the next event seq to read */
  int phase;                     /* RUNNING, FINAL (the last flush), DOWN */

  struct span *q;                /* ring of queued spans */
  size_t qcap, qhead, qlen, qbytes;

  struct jw span_w;              /* scratch: one span's text */
  struct jw body;                /* the batch's request body */
  size_t batch_n, batch_bytes;   /* spans (and their bytes) in body; 0: no batch */
  int retry_wait;                /* the batch waits for its retry (flush timer) */
  uint64_t backoff_next_ms;

  arbor_otlp_stats_t stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void pump(struct arbor_otlp_s *o);
static void shut_down(struct arbor_otlp_s *o);

/* ------------------------------------------------------------ handles */

/* Each handle's close callback: the exporter goes with the last one, then the
 * runtime may free itself (our hold on it is released after we are done). */
static void handle_gone(struct arbor_otlp_s *o) {
  arbor_runtime_t *rt = o->rt;
  if (--o->handles == 0) {
    free(o->q);
    free(o);
  }
  arbor__runtime_release(rt);
}

static void on_timer_closed(uv_handle_t *h) { handle_gone(h->data); }

static void on_sock_closed(uv_handle_t *h) {
  struct sock *s = h->data;
  struct arbor_otlp_s *o = s->otlp;
  free(s);
  handle_gone(o);
}

static void sock_close(struct arbor_otlp_s *o, struct sock *s) {
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    o->socks = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ------------------------------------------------------------ libcurl */

static void on_done(struct arbor_otlp_s *o, CURLcode result);

/* Hands libcurl's finished transfer (there is one at most) to on_done. */
static void check_done(struct arbor_otlp_s *o) {
  CURLMsg *msg;
  int pending, done = 0;
  CURLcode result = CURLE_OK;
  while ((msg = curl_multi_info_read(o->multi, &pending)) != NULL) {
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == o->easy) {
      result = msg->data.result;
      done = 1;
    }
  }
  if (done && o->in_flight)
    on_done(o, result);
}

static CURLM *multi_new(struct arbor_otlp_s *o);

/* Lets libcurl act on fd (or its timeouts). When the call itself fails
 * (CURLM_OUT_OF_MEMORY: libcurl could not record a socket to watch), libcurl
 * told us nothing of the socket, so nothing would ever wake the transfer, not
 * even its timeout: the request stayed in flight for good and every later span
 * was dropped. And the multi handle cannot be trusted after that: libcurl 7.88
 * leaves that socket's record with a table of 0 slots, and the next transfer
 * to use it divides by zero inside libcurl. So the multi handle is replaced by
 * a new one (the old one's connections close with it) and the request fails
 * now, to be retried after its backoff like any request that got no answer. */
static void socket_action(struct arbor_otlp_s *o, curl_socket_t fd, int flags) {
  int running;
  CURLMcode mc = curl_multi_socket_action(o->multi, fd, flags, &running);
  check_done(o);
  if (mc == CURLM_OK || o->phase == DOWN)
    return;
  if (o->in_flight)
    curl_multi_remove_handle(o->multi, o->easy);
  /* Our polls go first, as in shut_down. */
  while (o->socks != NULL) {
    curl_multi_assign(o->multi, o->socks->fd, NULL);
    sock_close(o, o->socks);
  }
  curl_multi_cleanup(o->multi);
  uv_timer_stop(&o->curl_timer);
  o->multi = multi_new(o);
  if (o->multi == NULL) {        /* no memory for a new one: as arbor_otlp_stop */
    o->in_flight = 0;
    shut_down(o);
    return;
  }
  if (o->in_flight)
    on_done(o, CURLE_OUT_OF_MEMORY);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  struct sock *s = p->data;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  socket_action(s->otlp, s->fd, flags);
}

static void on_curl_timer(uv_timer_t *t) { socket_action(t->data, CURL_SOCKET_TIMEOUT, 0); }

/* CURLMOPT_TIMERFUNCTION: called from inside libcurl, so it only (re)arms the
 * timer; the timer's callback calls libcurl. */
static int curl_timer_fn(CURLM *multi, long timeout_ms, void *arg) {
  (void)multi;
  struct arbor_otlp_s *o = arg;
  if (o->phase == DOWN)
    return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&o->curl_timer);
  else
    uv_timer_start(&o->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* CURLMOPT_SOCKETFUNCTION: what to watch on socket fd. -1 fails the transfers
 * (a poll handle we could not make). */
static int curl_socket_fn(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp) {
  (void)easy;
  struct arbor_otlp_s *o = arg;
  struct sock *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      curl_multi_assign(o->multi, fd, NULL);
      sock_close(o, s);
    }
    return 0;
  }
  if (o->phase == DOWN)
    return -1;
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL)
      return -1;
    if (uv_poll_init_socket(o->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->otlp = o;
    s->poll.data = s;
    s->next = o->socks;
    if (s->next != NULL)
      s->next->prev = s;
    o->socks = s;
    o->handles++;
    arbor__runtime_hold(o->rt);
    curl_multi_assign(o->multi, fd, s);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    events |= UV_WRITABLE;
  return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

/* A multi handle that tells us its sockets and timeouts. NULL when out of
 * memory. */
static CURLM *multi_new(struct arbor_otlp_s *o) {
  CURLM *m = curl_multi_init();
  if (m != NULL &&
      (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, curl_socket_fn) != CURLM_OK ||
       curl_multi_setopt(m, CURLMOPT_SOCKETDATA, o) != CURLM_OK ||
       curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, curl_timer_fn) != CURLM_OK ||
       curl_multi_setopt(m, CURLMOPT_TIMERDATA, o) != CURLM_OK)) {
    curl_multi_cleanup(m);
    m = NULL;
  }
  return m;
}

/* The collector's answer body is not needed: read and forget it. */
static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg) {
  (void)ptr, (void)arg;
  return size * nmemb;
}

/* ------------------------------------------------------------- queue */

static size_t pending_spans(const struct arbor_otlp_s *o) { return o->qlen + o->batch_n; }
static size_t pending_bytes(const struct arbor_otlp_s *o) { return o->qbytes + o->batch_bytes; }

/* Starts a new document in w, keeping its buffer (jw_init would drop it). */
static void jw_restart(struct jw *w, size_t max) {
  char *buf = w->buf;
  size_t cap = w->cap;
  jw_init(w, max);
  w->buf = buf;
  w->cap = cap;
}

/* Room for one more span in the ring (it grows by doubling, up to max_queue). */
static int queue_reserve(struct arbor_otlp_s *o) {
  if (o->qlen < o->qcap)
    return 0;
  size_t cap = o->qcap > 0 ? o->qcap * 2 : 64;
  if (cap > o->opts.max_queue)
    cap = o->opts.max_queue;
  struct span *q = malloc(cap * sizeof *q);
  if (q == NULL)
    return ARBOR_ENOMEM;
  for (size_t i = 0; i < o->qlen; i++)
    q[i] = o->q[(o->qhead + i) % o->qcap];
  free(o->q);
  o->q = q;
  o->qcap = cap;
  o->qhead = 0;
  return 0;
}

/* Writes the node of a FINISHED event as a span and queues it, or counts it
 * dropped: the queue is full, the node was evicted, or memory ran out. */
static void export_node(struct arbor_otlp_s *o, uint64_t id) {
  if (pending_spans(o) >= o->opts.max_queue) {
    o->stats.spans_dropped++;
    return;
  }
  arbor_node_t *node = arbor_node_find(o->rt, id);
  int is_root = id == o->root_id;   /* at close only: never FINISHED, ends now */
  if (node == NULL || (!is_root && !arbor_node_is_finished(node))) {
    o->stats.spans_dropped++;    /* evicted (or its id reused: not the node we saw) */
    return;
  }
  struct trace_node tn;
  struct trace_attr attrs[ARBOR_ATTRS_MAX];
  trace_node_fill(&tn, node, attrs);
  jw_restart(&o->span_w, o->opts.max_queue_bytes);
  otlp_span(&o->span_w, &o->res, &tn, is_root ? uv_hrtime() : 0);
  size_t len;
  const char *text = jw_text(&o->span_w, &len);
  char *copy;
  if (text == NULL || pending_bytes(o) + len > o->opts.max_queue_bytes ||
      queue_reserve(o) < 0 || (copy = malloc(len)) == NULL) {
    o->stats.spans_dropped++;
    return;
  }
  memcpy(copy, text, len);
  struct span *sp = &o->q[(o->qhead + o->qlen) % o->qcap];
  sp->text = copy;
  sp->len = len;
  sp->at_ms = uv_now(o->loop);
  o->qlen++;
  o->qbytes += len;
  o->stats.spans_queued++;
}

/* Reads new events; returns 1 when it stopped at READ_TURN_MAX with more to
 * read. */
static int read_events(struct arbor_otlp_s *o) {
  arbor_event_t ev[READ_CHUNK];
  size_t turn = 0;
  int n;
  uint64_t missed;
  while ((n = arbor_events_read(o->rt, &o->cursor, ev, READ_CHUNK, &missed)) > 0) {
    o->stats.events_missed += missed;
    for (int i = 0; i < n; i++)
      if (ev[i].type == ARBOR_EVENT_STATE && ev[i].to == ARBOR_STATE_FINISHED &&
          ev[i].node_id != o->root_id)
        export_node(o, ev[i].node_id);
    turn += (size_t)n;
    if (turn >= READ_TURN_MAX && o->phase == RUNNING)
      return 1;
  }
  return 0;
}

/* An idle handle, not a zero timer: on libuv before 1.48 a zero timer started
 * from a timer callback runs again in the same iteration (libuv/libuv#4245),
 * so READ_TURN_MAX would not let the loop poll between turns. */
static void on_wake(uv_idle_t *h) {
  struct arbor_otlp_s *o = h->data;
  uv_idle_stop(h);
  arbor__events_arm(o->rt, &o->events);   /* first: an event recorded later fires */
  if (read_events(o))
    uv_idle_start(&o->wake, on_wake);     /* more: on the next iteration */
  pump(o);
}

/* The subscription: called inside the tree operation that records an event. */
static void on_event(void *arg) {
  struct arbor_otlp_s *o = arg;
  if (o->phase == RUNNING)
    uv_idle_start(&o->wake, on_wake);
}

/* --------------------------------------------------------- requests */

/* Moves up to max_batch spans from the queue into the request body. */
static void take_batch(struct arbor_otlp_s *o) {
  size_t n = o->qlen < o->opts.max_batch ? o->qlen : o->opts.max_batch;
  jw_restart(&o->body, 0);
  otlp_begin(&o->body, &o->res);
  for (size_t i = 0; i < n; i++) {
    struct span *sp = &o->q[o->qhead];
    jw_raw(&o->body, sp->text, sp->len);
    o->batch_bytes += sp->len;
    o->qbytes -= sp->len;
    free(sp->text);
    o->qhead = (o->qhead + 1) % o->qcap;
    o->qlen--;
  }
  otlp_end(&o->body);
  o->batch_n = n;
}

static void batch_settled(struct arbor_otlp_s *o, int exported) {
  if (exported)
    o->stats.spans_exported += o->batch_n;
  else
    o->stats.spans_dropped += o->batch_n;
  o->batch_n = o->batch_bytes = 0;
}

/* POSTs the batch in body. */
static void send_batch(struct arbor_otlp_s *o) {
  size_t len;
  const char *text = jw_text(&o->body, &len);
  if (text == NULL) {            /* the body ran out of memory */
    batch_settled(o, 0);
    return;
  }
  long timeout = (long)o->opts.timeout_ms;
  if (o->phase == FINAL) {       /* what is left of the final flush's time */
    uint64_t left = uv_timer_get_due_in(&o->flush);
    timeout = left > 0 ? (long)left : 1;
  }
  curl_easy_setopt(o->easy, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(o->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(o->easy, CURLOPT_TIMEOUT_MS, timeout);
  o->stats.requests++;
  if (curl_multi_add_handle(o->multi, o->easy) != CURLM_OK) {
    o->stats.requests_failed++;
    batch_settled(o, 0);
    return;
  }
  o->in_flight = 1;
}

static int retryable(CURLcode result, long status) {
  if (result != CURLE_OK)
    return 1;                    /* no answer: refused, reset, timed out ... */
  return status == 429 || status == 502 || status == 503 || status == 504;
}

static void on_flush_timer(uv_timer_t *t);

static void on_done(struct arbor_otlp_s *o, CURLcode result) {
  long status = 0;
  curl_off_t retry_after = 0;
  curl_easy_getinfo(o->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(o->easy, CURLINFO_RETRY_AFTER, &retry_after);
  curl_multi_remove_handle(o->multi, o->easy);
  o->in_flight = 0;
  if (result == CURLE_OK && status >= 200 && status < 300) {
    batch_settled(o, 1);
    o->backoff_next_ms = o->opts.backoff_ms;
  } else {
    o->stats.requests_failed++;
    if (o->phase == RUNNING && retryable(result, status)) {
      uint64_t delay = o->backoff_next_ms;
      if (retry_after > 0)
        delay = (uint64_t)retry_after * 1000;
      if (delay > o->opts.backoff_max_ms)
        delay = o->opts.backoff_max_ms;
      o->backoff_next_ms *= 2;
      if (o->backoff_next_ms > o->opts.backoff_max_ms)
        o->backoff_next_ms = o->opts.backoff_max_ms;
      o->retry_wait = 1;
      uv_timer_start(&o->flush, on_flush_timer, delay, 0);
      return;
    }
    batch_settled(o, 0);
    if (o->phase == FINAL) {     /* the collector failed the last flush: give up */
      shut_down(o);
      return;
    }
  }
  pump(o);
}

static void on_flush_timer(uv_timer_t *t) {
  struct arbor_otlp_s *o = t->data;
  if (o->phase == FINAL) {       /* the final flush's time is up */
    shut_down(o);
    return;
  }
  o->retry_wait = 0;
  pump(o);
}

/* Decides the next step: send a batch (a retry, a full one, or one whose oldest
 * span waited flush_ms), or arm the batching deadline. */
static void pump(struct arbor_otlp_s *o) {
  if (o->phase == DOWN || o->in_flight || o->retry_wait)
    return;
  if (o->batch_n == 0 && o->qlen > 0) {
    uint64_t due = o->q[o->qhead].at_ms + o->opts.flush_ms, now = uv_now(o->loop);
    if (o->phase == RUNNING && o->qlen < o->opts.max_batch && now < due) {
      uv_timer_start(&o->flush, on_flush_timer, due - now, 0);
      return;
    }
    take_batch(o);
  }
  if (o->batch_n > 0) {
    send_batch(o);
    if (o->in_flight)
      return;
    pump(o);                     /* the batch could not be sent: dropped, next */
    return;
  }
  if (o->phase == FINAL)         /* everything went out */
    shut_down(o);
  else
    uv_timer_stop(&o->flush);
}

/* ------------------------------------------------------------ lifetime */

/* Abandons the request in flight, drops what is queued (counted), frees
 * libcurl's state and closes every handle; the memory goes with the last
 * handle's close callback. */
static void shut_down(struct arbor_otlp_s *o) {
  if (o->phase == DOWN)
    return;
  o->phase = DOWN;
  arbor_runtime_t *rt = o->rt;
  if (arbor__runtime_otlp(rt) == o)
    arbor__runtime_set_otlp(rt, NULL);
  arbor__runtime_remove_closer(rt, &o->closer);
  arbor__events_unsubscribe(rt, &o->events);
  if (o->in_flight) {
    curl_multi_remove_handle(o->multi, o->easy);
    o->in_flight = 0;
  }
  batch_settled(o, 0);
  while (o->qlen > 0) {
    free(o->q[o->qhead].text);
    o->qhead = (o->qhead + 1) % o->qcap;
    o->qlen--;
    o->stats.spans_dropped++;
  }
  o->qbytes = 0;
  curl_easy_cleanup(o->easy);
  o->easy = NULL;
  /* Our polls go before libcurl closes the sockets they watch; libcurl's own
   * CURL_POLL_REMOVE calls during cleanup then find no socket pointer. */
  while (o->socks != NULL) {
    curl_multi_assign(o->multi, o->socks->fd, NULL);
    sock_close(o, o->socks);
  }
  curl_multi_cleanup(o->multi);
  o->multi = NULL;
  curl_slist_free_all(o->headers);
  o->headers = NULL;
  jw_free(&o->span_w);
  jw_free(&o->body);
  free(o->url);
  free(o->service_name);
  o->url = o->service_name = NULL;
  uv_close((uv_handle_t *)&o->wake, on_timer_closed);
  uv_close((uv_handle_t *)&o->flush, on_timer_closed);
  uv_close((uv_handle_t *)&o->curl_timer, on_timer_closed);
}

/* The runtime closes (every node FINISHED): read the last events, then one
 * last flush of what is queued, bounded by timeout_ms. */
static void on_runtime_close(struct arbor__closer *c) {
  struct arbor_otlp_s *o =
      (struct arbor_otlp_s *)((char *)c - offsetof(struct arbor_otlp_s, closer));
  arbor__events_unsubscribe(o->rt, &o->events);
  read_events(o);
  /* The root's span last: the top nodes name it as their parent, and it never
   * FINISHES (it ends with the runtime), so without it every pushed trace would
   * have a dangling parent. */
  export_node(o, o->root_id);
  o->phase = FINAL;
  o->retry_wait = 0;
  uv_idle_stop(&o->wake);
  uv_timer_start(&o->flush, on_flush_timer, o->opts.timeout_ms, 0);
  pump(o);
}

/* ----------------------------------------------------------- public API */

/* http:// or https:// and something after it. */
static int endpoint_ok(const char *e) {
  size_t n = strncmp(e, "http://", 7) == 0 ? 7 : strncmp(e, "https://", 8) == 0 ? 8 : 0;
  return n > 0 && e[n] != '\0' && e[n] != '/';
}

static char *make_url(const char *endpoint) {
  size_t n = strlen(endpoint);
  if (n > 0 && endpoint[n - 1] == '/')
    n--;
  static const char path[] = "/v1/traces";
  char *url = malloc(n + sizeof path);
  if (url != NULL) {
    memcpy(url, endpoint, n);
    memcpy(url + n, path, sizeof path);
  }
  return url;
}

static void fill_opts(arbor_otlp_opts_t *o) {
  if (o->max_queue == 0)
    o->max_queue = DEFAULT_MAX_QUEUE;
  if (o->max_queue_bytes == 0)
    o->max_queue_bytes = DEFAULT_MAX_QUEUE_BYTES;
  if (o->max_batch == 0)
    o->max_batch = DEFAULT_MAX_BATCH;
  if (o->flush_ms == 0)
    o->flush_ms = DEFAULT_FLUSH_MS;
  if (o->timeout_ms == 0)
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
  if (o->backoff_ms == 0)
    o->backoff_ms = DEFAULT_BACKOFF_MS;
  if (o->backoff_max_ms == 0)
    o->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
  if (o->backoff_max_ms < o->backoff_ms)
    o->backoff_max_ms = o->backoff_ms;
}

/* The easy handle's options that stay the same for every request. */
static int setup_easy(struct arbor_otlp_s *o) {
  CURL *e = o->easy;
  int bad = 0;
  bad |= curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
  /* A collector that is slow to connect is a timeout like any other. */
  bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->opts.timeout_ms) != CURLE_OK;
  return bad ? ARBOR_ENOMEM : 0;
}

int arbor_otlp_start(arbor_runtime_t *rt, const arbor_otlp_opts_t *opts, arbor_otlp_t **out) {
  if (out != NULL)
    *out = NULL;
  if (rt == NULL || opts == NULL || opts->endpoint == NULL || !endpoint_ok(opts->endpoint))
    return ARBOR_EINVAL;
  if (arbor__runtime_otlp(rt) != NULL)
    return ARBOR_EALREADY;
  if (arbor__runtime_closing(rt))
    return ARBOR_ECLOSING;
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return ARBOR_ENOMEM;

  struct arbor_otlp_s *o = calloc(1, sizeof *o);
  if (o == NULL)
    return ARBOR_ENOMEM;
  o->rt = rt;
  o->loop = arbor_runtime_loop(rt);
  o->opts = *opts;
  fill_opts(&o->opts);
  o->url = make_url(opts->endpoint);
  o->service_name = strdup(opts->service_name != NULL ? opts->service_name : "arbor");
  int rc = ARBOR_ENOMEM;
  if (o->url == NULL || o->service_name == NULL)
    goto fail;
  o->opts.endpoint = NULL;       /* the caller's strings may go away: ours are above */
  o->opts.service_name = o->service_name;
  o->opts.headers = NULL;
  /* "Expect:" turns off libcurl's Expect: 100-continue for bodies over 1 KiB,
   * which costs a round trip (or a 1 s wait on a server that ignores it). */
  static const char *const ours[] = {"Content-Type: application/json", "Expect:"};
  struct curl_slist *h;
  for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
    if ((h = curl_slist_append(o->headers, ours[i])) == NULL)
      goto fail;
    o->headers = h;
  }
  for (const char *const *p = opts->headers; p != NULL && *p != NULL; p++) {
    if ((h = curl_slist_append(o->headers, *p)) == NULL)
      goto fail;
    o->headers = h;
  }
  o->multi = multi_new(o);
  o->easy = curl_easy_init();
  if (o->multi == NULL || o->easy == NULL || setup_easy(o) < 0)
    goto fail;
  jw_init(&o->span_w, o->opts.max_queue_bytes);
  jw_init(&o->body, 0);
  trace_resource_init(&o->res, rt, o->service_name);
  o->root_id = arbor_node_id(arbor_root(rt));
  o->backoff_next_ms = o->opts.backoff_ms;
  arbor_events_stats_t es;
  arbor_events_stats(rt, &es);
  o->cursor = es.recorded + 1;   /* nodes that finish from now on */

  /* Nothing below can fail: timers init without error (libuv returns 0). */
  uv_idle_init(o->loop, &o->wake);
  uv_timer_init(o->loop, &o->flush);
  uv_timer_init(o->loop, &o->curl_timer);
  o->wake.data = o->flush.data = o->curl_timer.data = o;
  o->handles = 3;
  for (int i = 0; i < 3; i++)
    arbor__runtime_hold(rt);
  o->closer.close = on_runtime_close;
  arbor__runtime_add_closer(rt, &o->closer);
  o->events.fn = on_event;
  o->events.arg = o;
  arbor__events_subscribe(rt, &o->events);
  arbor__events_arm(rt, &o->events);
  arbor__runtime_set_otlp(rt, o);
  *out = o;
  return 0;

fail:
  if (o->easy != NULL)
    curl_easy_cleanup(o->easy);
  if (o->multi != NULL)
    curl_multi_cleanup(o->multi);
  curl_slist_free_all(o->headers);
  free(o->url);
  free(o->service_name);
  free(o);
  return rc;
}

void arbor_otlp_stats(const arbor_otlp_t *otlp, arbor_otlp_stats_t *stats) {
  if (stats == NULL)
    return;
  if (otlp == NULL) {
    memset(stats, 0, sizeof *stats);
    return;
  }
  *stats = otlp->stats;
  stats->queue_len = pending_spans(otlp);
  stats->queue_bytes = pending_bytes(otlp);
}

int arbor_otlp_stop(arbor_otlp_t *otlp) {
  if (otlp == NULL)
    return ARBOR_EINVAL;
  shut_down(otlp);
  return 0;
}

arbor_otlp_t *arbor_otlp_of(arbor_runtime_t *rt) {
  return rt != NULL ? arbor__runtime_otlp(rt) : NULL;
}
