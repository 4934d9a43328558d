/* supervisor/stream.c - TCP streams as fiber checkpoints: connect, accept, read,
 * write (arbor.h, "streams and thread-pool work").
 *
 * Each stream and listener is one heap object holding its uv_tcp_t and the
 * requests libuv may still complete after a fiber stopped waiting (the connect and
 * the write request), so no libuv callback ever needs the fiber's stack. The
 * object records who waits on it (one reader, one writer or connector, one
 * acceptor); a callback wakes that fiber through arbor__fiber_wake and clears the
 * slot, and a cancelled fiber's unhook clears it first, so a callback that comes
 * later finds nobody and touches nothing of the fiber's.
 *
 * What each cancellation undoes, synchronously inside the unhook:
 *  - read: uv_read_stop, so libuv neither asks for the fiber's buffer again nor
 *    writes into it;
 *  - accept: the acceptor slot is cleared; a connection that arrives later waits
 *    in libuv for the next accept;
 *  - connect, write: libuv cannot take them back, so the stream is closed: uv_close
 *    stops its I/O and closes the socket at once (the fiber's buffer is not read
 *    again), and the requests' callbacks run later with UV_ECANCELED, finding the
 *    stream through req->handle, which stays valid until the close callback.
 *
 * Lifetime: an object is freed by its close callback, but only once its owner has
 * let go of it too (arbor_stream_close). A stream closed by a cancelled write is
 * still the owner's to close; one closed by a cancelled or failed connect was
 * never given out, so it goes by itself.
 */
#include <limits.h>
#include <string.h>

#include "internal.h"

struct arbor_stream_s {
  uv_tcp_t tcp;                  /* tcp.data = this */
  uv_connect_t connect_req;
  uv_write_t write_req;
  arbor_ctx_t *reader;           /* parked in read */
  arbor_ctx_t *writer;           /* parked in write or connect */
  char *rbuf;                    /* the reader's buffer while it waits */
  size_t rlen;
  uint8_t writing;               /* write_req is with libuv */
  uint8_t eof;                   /* the peer ended the stream: reads return 0 */
  uint8_t closing;               /* uv_close called */
  uint8_t closed;                /* close callback ran */
  uint8_t owned;                 /* given out; the owner has not closed it yet */
};

struct arbor_listener_s {
  uv_tcp_t tcp;                  /* tcp.data = this */
  arbor_ctx_t *acceptor;         /* parked in accept */
  unsigned pending;              /* connections libuv holds for uv_accept */
  unsigned waiting;              /* fibers inside accept's park, parked or woken */
  uint8_t closing;
  uint8_t closed;                /* its close callback ran: freed once nobody waits */
};

/* ------------------------------------------------------------- addresses */

/* A numeric IPv4 or IPv6 address and a port into addr. ARBOR_EINVAL otherwise. */
static int parse_addr(const char *ip, int port, int min_port, struct sockaddr_storage *addr) {
  if (ip == NULL || port < min_port || port > 65535)
    return ARBOR_EINVAL;
  memset(addr, 0, sizeof *addr);
  if (uv_ip4_addr(ip, port, (struct sockaddr_in *)addr) == 0)
    return 0;
  if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)addr) == 0)
    return 0;
  return ARBOR_EINVAL;
}

/* --------------------------------------------------------------- streams */

static void stream_free_if_done(arbor_stream_t *s) {
  if (s->closed && !s->owned)
    free(s);
}

static void on_stream_closed(uv_handle_t *h) {
  arbor_stream_t *s = h->data;
  s->closed = 1;
  stream_free_if_done(s);
}

/* Closes the handle once and wakes whoever waits on it with UV_EBADF. uv_close
 * stops reading and closes the socket now: neither waiter's buffer is touched
 * again. Safe on any stack. */
static void stream_shut(arbor_stream_t *s) {
  if (s->closing)
    return;
  s->closing = 1;
  uv_close((uv_handle_t *)&s->tcp, on_stream_closed);
  arbor_ctx_t *r = s->reader, *w = s->writer;
  s->reader = s->writer = NULL;
  s->rbuf = NULL;
  if (r != NULL)
    arbor__fiber_wake(r, UV_EBADF);
  if (w != NULL)
    arbor__fiber_wake(w, UV_EBADF);
}

/* A new stream on loop, its handle initialised. NULL with *rc set on failure. */
static arbor_stream_t *stream_new(uv_loop_t *loop, int *rc) {
  arbor_stream_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    *rc = ARBOR_ENOMEM;
    return NULL;
  }
  if ((*rc = uv_tcp_init(loop, &s->tcp)) < 0) {
    free(s);
    return NULL;
  }
  s->tcp.data = s;
  return s;
}

int arbor_stream_close(arbor_stream_t *s) {
  if (s == NULL)
    return ARBOR_EINVAL;
  s->owned = 0;
  if (s->closing)
    stream_free_if_done(s);      /* closed by a cancelled write: free when it can */
  else
    stream_shut(s);
  return 0;
}

/* ---------------------------------------------------------------- connect */

static void on_connect(uv_connect_t *req, int status) {
  arbor_stream_t *s = req->handle->data;
  arbor_ctx_t *cx = s->writer;
  s->writer = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, status);
}

/* Cancelled: libuv cannot drop a connect, so the stream goes; on_connect then runs
 * with UV_ECANCELED and finds no writer. */
static void connect_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  arbor_stream_t *s = arg;
  s->writer = NULL;
  stream_shut(s);
}

int arbor_tcp_connect_at(arbor_ctx_t *cx, const char *ip, int port, arbor_stream_t **out,
                         const char *file, int line) {
  struct sockaddr_storage addr;
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  if (out == NULL || (rc = parse_addr(ip, port, 1, &addr)) < 0)
    return ARBOR_EINVAL;
  arbor_stream_t *s = stream_new(cx->task->rt->loop, &rc);
  if (s == NULL)
    return rc;
  rc = uv_tcp_connect(&s->connect_req, &s->tcp, (const struct sockaddr *)&addr, on_connect);
  if (rc == 0) {
    s->writer = cx;
    rc = arbor__fiber_park(cx, "tcp_connect", file, line, connect_unhook, s);
  }
  /* Cancelled: the unhook closed s already, and its close callback may have freed
   * it by now (only the unhook's uv_close makes libuv report UV_ECANCELED). */
  if (rc == ARBOR_ECANCELED)
    return rc;
  if (rc < 0) {
    stream_shut(s);              /* not given out: freed by its close callback */
    return rc;
  }
  s->owned = 1;
  *out = s;
  return 0;
}

/* ------------------------------------------------------------------- read */

/* libuv asks for memory to read into: the waiting reader's own buffer. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  arbor_stream_t *s = h->data;
  *buf = uv_buf_init(s->rbuf, s->rbuf != NULL ? (unsigned)s->rlen : 0);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  arbor_stream_t *s = h->data;
  if (nread == 0)
    return;                      /* EAGAIN: nothing this time, keep waiting */
  /* One read per wait: stop before waking, so libuv asks for no more memory. */
  uv_read_stop(h);
  int rc;
  if (nread > 0) {
    rc = (int)nread;
  } else if (nread == UV_EOF) {
    s->eof = 1;
    rc = 0;
  } else {
    rc = (int)nread;
  }
  arbor_ctx_t *cx = s->reader;
  s->reader = NULL;
  s->rbuf = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, rc);
}

static void read_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  arbor_stream_t *s = arg;
  uv_read_stop((uv_stream_t *)&s->tcp);
  s->reader = NULL;
  s->rbuf = NULL;
}

int arbor_stream_read_at(arbor_ctx_t *cx, arbor_stream_t *s, void *buf, size_t len,
                         const char *file, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  if (s == NULL || buf == NULL || len == 0)
    return ARBOR_EINVAL;
  if (s->closing)
    return UV_EBADF;
  if (s->reader != NULL)
    return ARBOR_EBUSY;
  if (s->eof)
    return 0;
  s->rbuf = buf;
  s->rlen = len < INT_MAX ? len : INT_MAX;   /* the count must fit the return value */
  if ((rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read)) < 0) {
    s->rbuf = NULL;
    return rc;
  }
  s->reader = cx;
  return arbor__fiber_park(cx, "stream_read", file, line, read_unhook, s);
}

/* ------------------------------------------------------------------ write */

static void on_write(uv_write_t *req, int status) {
  arbor_stream_t *s = req->handle->data;
  arbor_ctx_t *cx = s->writer;
  s->writing = 0;
  s->writer = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, status);
}

/* Cancelled: libuv cannot take back a write it may have half sent, so the stream
 * goes; on_write then runs with UV_ECANCELED and finds no writer. */
static void write_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  arbor_stream_t *s = arg;
  s->writer = NULL;
  stream_shut(s);
}

int arbor_stream_write_at(arbor_ctx_t *cx, arbor_stream_t *s, const void *buf, size_t len,
                          const char *file, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  if (s == NULL || (buf == NULL && len > 0))
    return ARBOR_EINVAL;
  if (s->closing)
    return UV_EBADF;
  if (s->writing)
    return ARBOR_EBUSY;
  if (len == 0)
    return 0;
  /* uv_buf_t holds an unsigned int length on some platforms: write in slices. */
  const char *p = buf;
  while (len > 0) {
    size_t n = len < UINT_MAX ? len : UINT_MAX;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);   /* libuv copies b itself */
    if ((rc = uv_write(&s->write_req, (uv_stream_t *)&s->tcp, &b, 1, on_write)) < 0)
      return rc;
    s->writing = 1;
    s->writer = cx;
    if ((rc = arbor__fiber_park(cx, "stream_write", file, line, write_unhook, s)) < 0)
      return rc;
    p += n;
    len -= n;
  }
  return 0;
}

/* ---------------------------------------------------------------- listener */

/* A fiber woken by a connection may not have run yet when the listener is closed
 * and its close callback comes (a loop callback between poll and the closing
 * phase can close it): such a fiber still reads the listener when it resumes, so
 * the last one out frees it. */
static void on_listener_closed(uv_handle_t *h) {
  arbor_listener_t *l = h->data;
  l->closed = 1;
  if (l->waiting == 0)
    free(l);
}

static void on_connection(uv_stream_t *server, int status) {
  arbor_listener_t *l = server->data;
  if (status == 0)
    l->pending++;                /* libuv holds it, and listens no more until taken */
  arbor_ctx_t *cx = l->acceptor;
  l->acceptor = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, status);
}

int arbor_tcp_listen(arbor_runtime_t *rt, const char *ip, int port, int backlog,
                     arbor_listener_t **out) {
  struct sockaddr_storage addr;
  int rc;
  if (rt == NULL || out == NULL || parse_addr(ip, port, 0, &addr) < 0)
    return ARBOR_EINVAL;
  arbor_listener_t *l = calloc(1, sizeof *l);
  if (l == NULL)
    return ARBOR_ENOMEM;
  if ((rc = uv_tcp_init(rt->loop, &l->tcp)) < 0) {
    free(l);
    return rc;
  }
  l->tcp.data = l;
  if ((rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&l->tcp, backlog > 0 ? backlog : 128, on_connection)) < 0) {
    l->closing = 1;
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    return rc;
  }
  *out = l;
  return 0;
}

int arbor_listener_port(const arbor_listener_t *l) {
  struct sockaddr_storage addr;
  int len = sizeof addr;
  if (l == NULL)
    return ARBOR_EINVAL;
  if (l->closing)
    return UV_EBADF;
  int rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&addr, &len);
  if (rc < 0)
    return rc;
  if (addr.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
  return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

static void accept_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  ((arbor_listener_t *)arg)->acceptor = NULL;
}

int arbor_tcp_accept_at(arbor_ctx_t *cx, arbor_listener_t *l, arbor_stream_t **out,
                        const char *file, int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  if (l == NULL || out == NULL)
    return ARBOR_EINVAL;
  if (l->acceptor != NULL)
    return ARBOR_EBUSY;
  /* Woken by a connection: take it here, on the fiber (libuv keeps it until then).
   * A wake-up for an error ends the wait with that error. */
  while (l->pending == 0) {
    if (l->closing)
      return UV_EBADF;
    l->acceptor = cx;
    l->waiting++;
    rc = arbor__fiber_park(cx, "tcp_accept", file, line, accept_unhook, l);
    if (--l->waiting == 0 && l->closed) {   /* its close callback ran meanwhile */
      free(l);
      return rc < 0 ? rc : UV_EBADF;
    }
    if (rc < 0)
      return rc;
  }
  if (l->closing)
    return UV_EBADF;
  arbor_stream_t *s = stream_new(l->tcp.loop, &rc);
  if (s == NULL)
    return rc;
  l->pending--;
  if ((rc = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&s->tcp)) < 0) {
    stream_shut(s);
    return rc;
  }
  s->owned = 1;
  *out = s;
  return 0;
}

int arbor_listener_close(arbor_listener_t *l) {
  if (l == NULL)
    return ARBOR_EINVAL;
  if (l->closing)
    return 0;
  l->closing = 1;
  uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
  arbor_ctx_t *cx = l->acceptor;
  l->acceptor = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, UV_EBADF);
  return 0;
}
