/* tests/http/httpc.c - see httpc.h. */
#include "httpc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct buf {
  char *data;
  size_t len, cap;
};

struct httpc_call {
  uv_loop_t *loop;
  uv_async_t async;
  int async_closed;
  pthread_t thread;
  pthread_mutex_t mu;
  /* set up by begin, read by the helper */
  char *method, *url, *body;
  size_t body_len;
  struct curl_slist *headers;
  size_t max_events, max_bytes;
  int head, chunked;
  /* shared, under mu */
  struct buf resp, hdrs;
  size_t events;
  int cut;                       /* the limit stopped the transfer */
  int done;
  int cancel;                    /* httpc_end asked it to stop */
  int curl_rc;
  long status;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_cleanup_at_exit(void) { curl_global_cleanup(); }

static void curl_init_once(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  atexit(curl_cleanup_at_exit);
}

static int buf_add(struct buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL)
      return -1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* Counts "\n\n" ends of blocks in the body from byte `from` on (a pair that
 * straddles `from` counts: data[from - 1] is looked at). Only the new bytes
 * are scanned each time, so a long stream in small pieces stays linear. */
static size_t count_blocks(const struct buf *b, size_t from) {
  size_t n = 0;
  for (size_t i = from > 1 ? from : 1; i < b->len; i++)
    if (b->data[i] == '\n' && b->data[i - 1] == '\n')
      n++;
  return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg) {
  struct httpc_call *c = arg;
  size_t n = size * nmemb;
  pthread_mutex_lock(&c->mu);
  int stop = c->cancel;
  size_t had = c->resp.len;
  if (!stop && buf_add(&c->resp, p, n) != 0)
    stop = 1;
  if (!stop) {
    c->events += count_blocks(&c->resp, had);
    if ((c->max_events > 0 && c->events >= c->max_events) ||
        (c->max_bytes > 0 && c->resp.len >= c->max_bytes)) {
      c->cut = 1;
      stop = 1;
    }
  }
  if (c->cancel)
    c->cut = 1;
  pthread_mutex_unlock(&c->mu);
  uv_async_send(&c->async);
  return stop ? 0 : n;           /* 0: curl ends the transfer (CURLE_WRITE_ERROR) */
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg) {
  struct httpc_call *c = arg;
  size_t n = size * nmemb;
  pthread_mutex_lock(&c->mu);
  int rc = buf_add(&c->hdrs, p, n);
  pthread_mutex_unlock(&c->mu);
  return rc == 0 ? n : 0;
}

/* Lets a cancelled transfer that receives nothing end too. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  struct httpc_call *c = arg;
  pthread_mutex_lock(&c->mu);
  int stop = c->cancel;
  if (stop)
    c->cut = 1;
  pthread_mutex_unlock(&c->mu);
  return stop;
}

static void *run(void *arg) {
  struct httpc_call *c = arg;
  CURL *h = curl_easy_init();
  CURLcode rc = CURLE_FAILED_INIT;
  long status = 0;
  struct curl_slist *extra = c->headers;
  if (h != NULL) {
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (c->chunked)
      extra = curl_slist_append(extra, "Transfer-Encoding: chunked");
    c->headers = extra;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, extra);
    if (c->head) {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(c->method, "GET") != 0) {
      if (strcmp(c->method, "POST") == 0 || c->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body != NULL ? c->body : "");
        if (!c->chunked)
          curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
      }
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    }
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
  }
  pthread_mutex_lock(&c->mu);
  c->status = status;
  c->curl_rc = (rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK) && c->cut ? 0 : (int)rc;
  c->done = 1;
  pthread_mutex_unlock(&c->mu);
  uv_async_send(&c->async);
  return NULL;
}

static void on_async(uv_async_t *a) { (void)a; }

static void on_async_closed(uv_handle_t *h) {
  struct httpc_call *c = h->data;
  c->async_closed = 1;
}

static void call_free(struct httpc_call *c) {
  free(c->method);
  free(c->url);
  free(c->body);
  curl_slist_free_all(c->headers);
  free(c->resp.data);
  free(c->hdrs.data);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

struct httpc_call *httpc_begin(uv_loop_t *loop, const httpc_opts_t *o) {
  pthread_once(&curl_once, curl_init_once);
  struct httpc_call *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  pthread_mutex_init(&c->mu, NULL);
  c->loop = loop;
  const char *method = o->method != NULL ? o->method : "GET";
  c->method = strdup(method);
  c->url = strdup(o->url);
  c->head = strcmp(method, "HEAD") == 0;
  c->chunked = o->chunked;
  c->max_events = o->max_events;
  c->max_bytes = o->max_bytes;
  if (o->body != NULL) {
    c->body_len = o->body_len ? o->body_len : strlen(o->body);
    c->body = malloc(c->body_len + 1);
    if (c->body != NULL) {
      memcpy(c->body, o->body, c->body_len);
      c->body[c->body_len] = '\0';
    }
  }
  int ok = c->method != NULL && c->url != NULL && (o->body == NULL || c->body != NULL);
  for (const char *const *hp = o->headers; ok && hp != NULL && *hp != NULL; hp++) {
    struct curl_slist *l = curl_slist_append(c->headers, *hp);
    if (l == NULL)
      ok = 0;
    else
      c->headers = l;
  }
  if (!ok || uv_async_init(loop, &c->async, on_async) != 0) {
    call_free(c);
    return NULL;
  }
  c->async.data = c;
  if (pthread_create(&c->thread, NULL, run, c) != 0) {
    uv_close((uv_handle_t *)&c->async, on_async_closed);
    while (!c->async_closed)
      uv_run(loop, UV_RUN_ONCE);
    call_free(c);
    return NULL;
  }
  return c;
}

size_t httpc_received(struct httpc_call *c) {
  pthread_mutex_lock(&c->mu);
  size_t n = c->resp.len;
  pthread_mutex_unlock(&c->mu);
  return n;
}

size_t httpc_events(struct httpc_call *c) {
  pthread_mutex_lock(&c->mu);
  size_t n = c->events;
  pthread_mutex_unlock(&c->mu);
  return n;
}

int httpc_wait(struct httpc_call *c, int (*pred)(const char *body, size_t len, void *arg),
               void *arg) {
  for (;;) {
    pthread_mutex_lock(&c->mu);
    int done = c->done;
    int held = pred != NULL && pred(c->resp.data != NULL ? c->resp.data : "", c->resp.len, arg);
    pthread_mutex_unlock(&c->mu);
    if (held)
      return 1;
    if (done)
      return pred == NULL;
    /* The async handle keeps the loop alive: ONCE blocks until the helper (or
     * the server's own handles) have something. */
    uv_run(c->loop, UV_RUN_ONCE);
  }
}

int httpc_end(struct httpc_call *c, long *status, char **resp_body, char **resp_headers) {
  pthread_mutex_lock(&c->mu);
  c->cancel = !c->done;
  pthread_mutex_unlock(&c->mu);
  httpc_wait(c, NULL, NULL);
  pthread_join(c->thread, NULL);
  uv_close((uv_handle_t *)&c->async, on_async_closed);
  while (!c->async_closed)
    uv_run(c->loop, UV_RUN_ONCE);
  int rc = c->curl_rc;
  if (status != NULL)
    *status = c->status;
  if (resp_body != NULL) {
    *resp_body = c->resp.data != NULL ? c->resp.data : strdup("");
    c->resp.data = NULL;
  }
  if (resp_headers != NULL) {
    *resp_headers = c->hdrs.data != NULL ? c->hdrs.data : strdup("");
    c->hdrs.data = NULL;
  }
  call_free(c);
  return rc;
}

int httpc_request(uv_loop_t *loop, const char *method, const char *url, const char *body,
                  const char *const *headers, long *status, char **resp_body,
                  char **resp_headers) {
  httpc_opts_t o = {.method = method, .url = url, .body = body, .headers = headers};
  struct httpc_call *c = httpc_begin(loop, &o);
  if (c == NULL)
    return CURLE_OUT_OF_MEMORY;
  httpc_wait(c, NULL, NULL);
  return httpc_end(c, status, resp_body, resp_headers);
}

int httpc_stream(uv_loop_t *loop, const char *url, const char *const *headers,
                 size_t max_events, size_t max_bytes, long *status, char **resp_body,
                 char **resp_headers) {
  httpc_opts_t o = {.url = url, .headers = headers, .max_events = max_events,
                    .max_bytes = max_bytes};
  struct httpc_call *c = httpc_begin(loop, &o);
  if (c == NULL)
    return CURLE_OUT_OF_MEMORY;
  httpc_wait(c, NULL, NULL);
  return httpc_end(c, status, resp_body, resp_headers);
}

char *httpc_url(char *buf, size_t size, int port, const char *path_and_query) {
  snprintf(buf, size, "http://127.0.0.1:%d%s", port, path_and_query);
  return buf;
}

char *httpc_header(const char *hdrs, const char *name) {
  size_t nlen = strlen(name);
  for (const char *line = hdrs; line != NULL && *line != '\0';) {
    const char *end = strchr(line, '\n');
    size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
    if (len > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
      const char *v = line + nlen + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      size_t vlen = (size_t)(line + len - v);
      while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
        vlen--;
      return strndup(v, vlen);
    }
    line = end != NULL ? end + 1 : NULL;
  }
  return NULL;
}

int httpc_connect_raw(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

struct until {
  int (*pred)(void *arg);
  void *arg;
  int held;
};

static void until_check(uv_prepare_t *p) {
  struct until *u = p->data;
  if (u->pred(u->arg)) {
    u->held = 1;
    uv_stop(p->loop);
  }
}

void httpc_run_until(uv_loop_t *loop, int (*pred)(void *arg), void *arg) {
  struct until u = {pred, arg, 0};
  uv_prepare_t prep;
  uv_prepare_init(loop, &prep);
  prep.data = &u;
  uv_prepare_start(&prep, until_check);
  u.held = pred(arg);
  while (!u.held)
    uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&prep, NULL);
  uv_run(loop, UV_RUN_NOWAIT);   /* the close completes at the end of this pass */
}

/* ------------------------------------------------------------ raw mode */

struct raw {
  uv_poll_t poll;
  uv_timer_t bound;
  int fd;
  const char *req;
  size_t len, sent;
  char *out;
  size_t cap, got;
  int closed, timed_out, closes;
};

static void raw_poll_cb(uv_poll_t *p, int status, int events) {
  struct raw *x = p->data;
  /* An error on the socket (the server closed it with our bytes unread: a
   * reset) comes as status < 0 and no events: read what arrived before it. */
  if (status < 0)
    events = UV_READABLE;
  if (x->sent < x->len && (events & UV_WRITABLE)) {
    ssize_t n = send(x->fd, x->req + x->sent, x->len - x->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
      x->sent += (size_t)n;
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      x->sent = x->len;          /* the server closed on us: read what it said */
    if (x->sent == x->len)
      uv_poll_start(p, UV_READABLE | UV_DISCONNECT, raw_poll_cb);
  }
  if (events & (UV_READABLE | UV_DISCONNECT)) {
    char sink[4096];
    for (;;) {
      char *dst = x->got + 1 < x->cap ? x->out + x->got : sink;
      size_t room = x->got + 1 < x->cap ? x->cap - 1 - x->got : sizeof sink;
      ssize_t n = recv(x->fd, dst, room, MSG_DONTWAIT);
      if (n > 0) {
        if (dst != sink)
          x->got += (size_t)n;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        x->closed = 1;           /* end of file, or reset */
      break;
    }
    x->out[x->got] = '\0';
  }
  if (x->closed)
    uv_poll_stop(p);
}

static void raw_bound_cb(uv_timer_t *t) {
  struct raw *x = t->data;
  x->timed_out = 1;
}

static void raw_closed_cb(uv_handle_t *h) {
  struct raw *x = h->data;
  x->closes++;
}

static int raw_done(void *arg) {
  struct raw *x = arg;
  return x->closed || x->timed_out;
}

static int raw_handles_closed(void *arg) { return ((struct raw *)arg)->closes == 2; }

long httpc_raw_exchange(uv_loop_t *loop, int port, const void *req, size_t len, char *out,
                        size_t cap, unsigned bound_ms) {
  if (cap == 0)
    return -EINVAL;
  out[0] = '\0';
  int fd = httpc_connect_raw(port);
  if (fd < 0)
    return fd;
  struct raw x = {.fd = fd, .req = req, .len = len, .out = out, .cap = cap};
  uv_poll_init(loop, &x.poll, fd);
  uv_timer_init(loop, &x.bound);
  x.poll.data = x.bound.data = &x;
  uv_poll_start(&x.poll, UV_WRITABLE | UV_READABLE | UV_DISCONNECT, raw_poll_cb);
  uv_timer_start(&x.bound, raw_bound_cb, bound_ms, 0);
  httpc_run_until(loop, raw_done, &x);
  uv_close((uv_handle_t *)&x.poll, raw_closed_cb);
  uv_close((uv_handle_t *)&x.bound, raw_closed_cb);
  httpc_run_until(loop, raw_handles_closed, &x);
  close(fd);
  return x.closed ? (long)x.got : -ETIMEDOUT;
}
