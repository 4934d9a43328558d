/* cmd/ctl.c - `arbor ctl`: the operator's client of the admin API.
 *
 * Like supervisorctl: one command per run, one request per command (or a followed
 * stream for `events` and `log -f`), the answer printed for a person. Synchronous
 * libcurl (one easy handle, reused, so the follow loops keep their connection) and
 * cJSON for the answers, whose shapes are the admin API's (docs/openapi.yaml).
 *
 * Every failure ends in exactly one line on stderr, "arbor ctl: ...", and an exit
 * status that says whose fault it was (cmd/ctl.h): the server refused (1), the
 * command line was wrong (2), the server could not be reached (3). A refusal quotes
 * the server's own error message, so the operator sees what the server saw.
 *
 * Text from the server (names, messages, attributes) is printed with control
 * characters replaced, so a hostile node name cannot drive the terminal; a
 * process's captured output (`log`) is printed as is, like cat would.
 *
 * ctl_run() does the work against a struct ctl_io (where to write, the stop flag,
 * the follow loops' pacing); arbor_ctl_main() is ctl_run() on stdout/stderr with
 * SIGINT/SIGTERM as the stop flag. ctl_print.c turns the answers into text.
 * tests/cmd/test_ctl.c includes both files, to call ctl_run() with files of its
 * own and short pauses.
 */
#include "ctl_internal.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arbor.h"

#define CTL_DEFAULT_URL "http://127.0.0.1:7070"
#define CTL_STR_(x) #x
#define CTL_STR(x) CTL_STR_(x)
#define CTL_USER_AGENT                                                                 \
  "arbor-ctl/" CTL_STR(ARBOR_VERSION_MAJOR) "." CTL_STR(ARBOR_VERSION_MINOR) "." CTL_STR( \
      ARBOR_VERSION_PATCH)

/* Bounds, so a confused or hostile server cannot make ctl eat the machine. */
#define CTL_MAX_ANSWER (64u << 20)   /* a JSON answer (a deep tree is a few MB) */
#define CTL_MAX_REFUSAL (64u << 10)  /* an error answer's body */
#define CTL_MAX_SSE_LINE (1u << 20)  /* one line, and one event's data, of the stream */


/* ------------------------------------------------------------- output */

/* The one-line reason of a failure: "arbor ctl: ...". Returns status. */
static int ctl_fail(struct ctl *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ctl_fail(struct ctl *c, int status, const char *fmt, ...) {
  va_list ap;
  fputs("arbor ctl: ", c->err);
  va_start(ap, fmt);
  vfprintf(c->err, fmt, ap);
  va_end(ap);
  fputc('\n', c->err);
  fflush(c->err);
  return status;
}

/* ------------------------------------------------------------- buffers */

/* A growing byte buffer with a ceiling; always NUL-terminated once non-empty. */
struct ctl_buf {
  char *data;
  size_t len, cap, max;
  int overflow;                     /* something was refused: over max or no memory */
};

static int buf_add(struct ctl_buf *b, const char *p, size_t n) {
  if (b->overflow || n > b->max - b->len) {
    b->overflow = 1;
    return -1;
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) {
      b->overflow = 1;
      return -1;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static void buf_clear(struct ctl_buf *b) {
  b->len = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

static void buf_free(struct ctl_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* --------------------------------------------------------------- HTTP */

/* A body consumer for streamed answers: returns 0 to go on, non-zero to end the
 * transfer on purpose (enough events, an oversized line). */
typedef int (*ctl_sink)(void *arg, const char *p, size_t n);

/* One request in flight. A 2xx body goes to sink when there is one, else into
 * body; any other status's body goes into body (capped) for the refusal. */
struct xfer {
  struct ctl *c;
  long status;                      /* 0 until the headers arrived */
  struct ctl_buf body;
  ctl_sink sink;
  void *sink_arg;
  int stopped;                      /* the sink or the stop flag ended it on purpose */
  int quiet;                        /* a failure is kept in reason, not printed */
  char reason[CURL_ERROR_SIZE + 128];   /* why the last transfer failed */
};

/* What ctl_call returns when the stop flag ended the request: the follow loops
 * end with status 0. Never an exit status. */
#define CTL_STOPPED (-1)

static int ctl_stopping(const struct ctl *c) {
  return c->io->stop != NULL && *c->io->stop;
}

static size_t xfer_write(char *p, size_t size, size_t n, void *arg) {
  struct xfer *x = arg;
  size_t len = size * n;
  if (x->status == 0)
    curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->sink != NULL && x->status >= 200 && x->status < 300) {
    if (x->sink(x->sink_arg, p, len) != 0) {
      x->stopped = 1;
      return 0;                     /* != len: curl ends the transfer */
    }
    return len;
  }
  if (x->status >= 300 && x->body.len >= CTL_MAX_REFUSAL)
    return len;                     /* enough of a refusal to quote it */
  return buf_add(&x->body, p, len) == 0 ? len : 0;
}

/* Called about once a second even on an idle stream: the way a signal reaches a
 * transfer that is blocked in curl. */
static int xfer_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow) {
  struct xfer *x = arg;
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  if (ctl_stopping(x->c)) {
    x->stopped = 1;
    return 1;
  }
  return 0;
}

/* Says why a transfer failed, in the one-line form (kept in x->reason, printed
 * unless x->quiet), and returns the status: 3 for anything about reaching the
 * server, 2 for a URL curl cannot use, 1 for an answer too large to keep. */
static int ctl_transfer_failed(struct ctl *c, struct xfer *x, CURLcode rc) {
  long os_errno = 0;
  int status = ARBOR_CTL_CONNECT;
  curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
  const char *why = c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rc);
  const char *os_why = os_errno != 0 ? strerror((int)os_errno) : why;
  size_t n = sizeof x->reason;

  switch (rc) {
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    status = ARBOR_CTL_USAGE;
    snprintf(x->reason, n, "bad URL %s: %s", c->base, why);
    break;
  case CURLE_COULDNT_CONNECT:
    snprintf(x->reason, n, "cannot connect to %s: %s", c->base, os_why);
    break;
  case CURLE_COULDNT_RESOLVE_HOST:
    snprintf(x->reason, n, "cannot connect to %s: unknown host", c->base);
    break;
  case CURLE_OPERATION_TIMEDOUT:
    snprintf(x->reason, n, "no answer from %s: timed out", c->base);
    break;
  default:
    if (rc == CURLE_WRITE_ERROR && x->body.overflow) {
      status = ARBOR_CTL_REFUSED;
      snprintf(x->reason, n, "the answer from %s is too large (over %u MiB)", c->base,
               (unsigned)(x->body.max >> 20));
    } else if (x->status == 0 && os_errno == ECONNREFUSED) {
      snprintf(x->reason, n, "cannot connect to %s: %s", c->base, os_why);
    } else {
      snprintf(x->reason, n, "connection to %s lost: %s", c->base, why);
    }
  }
  if (!x->quiet)
    ctl_fail(c, status, "%s", x->reason);
  return status;
}

/* Sets up the reused handle for one request. stream: no overall time limit (an
 * event stream or a followed log has none), TCP keepalive instead. */
static int ctl_setup(struct ctl *c, struct xfer *x, const char *method, const char *path,
                     struct curl_slist *headers, int stream) {
  char *url = malloc(strlen(c->base) + strlen(path) + 1);
  if (url == NULL)
    return -1;
  strcpy(url, c->base);
  strcat(url, path);
  curl_easy_reset(c->curl);
  c->errbuf[0] = '\0';
  CURL *h = c->curl;
  int bad = 0;
  bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
  free(url);                        /* curl keeps its own copy */
  bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, CTL_USER_AGENT) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
  /* The admin server is usually on loopback; a proxy from the environment must
   * not swallow requests meant for this machine. */
  bad |= curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1") != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L) != CURLE_OK;
  if (stream) {
    bad |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
  } else {
    /* No overall limit (a big trace takes its time), but a stalled one ends. */
    bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L) != CURLE_OK;
  }
  if (strcmp(method, "POST") == 0 || c->req_body != NULL) {
    bad |= curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->req_body != NULL ? c->req_body : "") !=
           CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE,
                            c->req_body != NULL ? (long)c->req_body_len : 0L) != CURLE_OK;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)   /* PUT, DELETE */
    bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, xfer_write) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, x) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xfer_progress) != CURLE_OK;
  bad |= curl_easy_setopt(h, CURLOPT_XFERINFODATA, x) != CURLE_OK;
  return bad ? -1 : 0;
}

/* Does one request: method on base + path (with its query), with the token, and
 * last_event_id as Last-Event-ID when not NULL. Returns ARBOR_CTL_OK when an
 * answer arrived (x->status says which; x->stopped when it was ended on purpose),
 * otherwise the exit status after printing why. */
static int ctl_request(struct ctl *c, const char *method, const char *path,
                       const char *last_event_id, struct xfer *x, int stream) {
  struct curl_slist *headers = NULL, *h;
  char line[600];
  int status = ARBOR_CTL_OK;

  x->c = c;
  x->status = 0;
  x->stopped = 0;
  x->reason[0] = '\0';
  buf_clear(&x->body);
  x->body.overflow = 0;
  if (x->body.max == 0)
    x->body.max = CTL_MAX_ANSWER;

  h = curl_slist_append(headers, stream ? "Accept: text/event-stream" : "Accept: application/json");
  if (h == NULL)
    goto nomem;
  headers = h;
  if (c->req_body != NULL) {
    if ((h = curl_slist_append(headers, "Content-Type: application/json")) == NULL)
      goto nomem;
    headers = h;
  }
  if (c->token != NULL) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
    if ((h = curl_slist_append(headers, line)) == NULL)
      goto nomem;
    headers = h;
  }
  if (last_event_id != NULL) {
    snprintf(line, sizeof line, "Last-Event-ID: %s", last_event_id);
    if ((h = curl_slist_append(headers, line)) == NULL)
      goto nomem;
    headers = h;
  }
  if (ctl_setup(c, x, method, path, headers, stream) != 0)
    goto nomem;

  CURLcode rc = curl_easy_perform(c->curl);
  if (x->status == 0)
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &x->status);
  if (rc != CURLE_OK && !x->stopped)
    status = ctl_transfer_failed(c, x, rc);
  curl_slist_free_all(headers);
  return status;

nomem:
  curl_slist_free_all(headers);
  return ctl_fail(c, ARBOR_CTL_REFUSED, "out of memory");
}

static cJSON *ctl_parse(struct ctl *c, const struct xfer *x, const char *what) {
  cJSON *json = x->body.len ? cJSON_ParseWithLength(x->body.data, x->body.len) : NULL;
  if (json == NULL || !cJSON_IsObject(json)) {
    cJSON_Delete(json);
    ctl_fail(c, ARBOR_CTL_REFUSED, "%s: the server's answer is not the expected JSON", what);
  }
  return json;
}

/* Prints the reason for a non-2xx answer and returns ARBOR_CTL_REFUSED. what names
 * the object ("node 12", "tree"). The server's {"error":{"code","message"}} is
 * quoted: "arbor ctl: node 7: finished (409): node 7 has finished"; for a 404 on a
 * node the code says it all ("arbor ctl: node 99: not found (404)"). */
static int ctl_refused(struct ctl *c, const char *what, const struct xfer *x, int is_node) {
  cJSON *json = x->body.len ? cJSON_ParseWithLength(x->body.data, x->body.len) : NULL;
  const cJSON *e = ctl_jget(json, "error");
  const char *code = ctl_jstr(e, "code"), *msg = ctl_jstr(e, "message");
  char words[64];
  size_t i;

  /* The server says 401 without a token (or a malformed one), 403 for a wrong
   * one: either way the fix is the token, so both say where it came from. */
  if (x->status == 401 || x->status == 403) {
    const char *word = x->status == 401 ? "unauthorized" : "forbidden";
    if (c->token == NULL)
      ctl_fail(c, ARBOR_CTL_REFUSED, "%s (%ld): set --token or ARBOR_TOKEN", word, x->status);
    else
      ctl_fail(c, ARBOR_CTL_REFUSED, "%s (%ld): the server refused the token from %s", word,
               x->status, c->token_from);
    cJSON_Delete(json);
    return ARBOR_CTL_REFUSED;
  }
  if (code == NULL) {
    ctl_fail(c, ARBOR_CTL_REFUSED, "%s: unexpected answer (HTTP %ld)", what, x->status);
    cJSON_Delete(json);
    return ARBOR_CTL_REFUSED;
  }
  /* "not_a_service" -> "not a service"; made safe like everything from the server */
  for (i = 0; code[i] != '\0' && i + 1 < sizeof words; i++)
    words[i] = code[i] == '_' ? ' ' : ((unsigned char)code[i] < 0x20 ? '?' : code[i]);
  words[i] = '\0';
  fprintf(c->err, "arbor ctl: %s: %s (%ld)", what, words, x->status);
  if (msg != NULL && msg[0] != '\0' && !(is_node && x->status == 404)) {
    fputs(": ", c->err);
    ctl_put_line(c->err, msg);
  }
  fputc('\n', c->err);
  fflush(c->err);
  cJSON_Delete(json);
  return ARBOR_CTL_REFUSED;
}

/* GET/POST path and parse the JSON answer into *out. what/is_node: for the
 * refusal's wording. Returns the exit status (or CTL_STOPPED); *out set only on
 * ARBOR_CTL_OK. */
static int ctl_call(struct ctl *c, const char *method, const char *path, const char *what,
                    int is_node, cJSON **out) {
  struct xfer x = {0};
  int status = ctl_request(c, method, path, NULL, &x, 0);
  if (status == ARBOR_CTL_OK && x.stopped)
    status = CTL_STOPPED;
  if (status == ARBOR_CTL_OK && (x.status < 200 || x.status >= 300))
    status = ctl_refused(c, what, &x, is_node);
  if (status == ARBOR_CTL_OK && (*out = ctl_parse(c, &x, what)) == NULL)
    status = ARBOR_CTL_REFUSED;
  buf_free(&x.body);
  return status;
}

/* ------------------------------------------------------------- events */

/* A Server-Sent Events reader (the WHATWG rules that matter here: lines end in
 * LF, CRLF or CR; "field: value"; comments start with ':'; a blank line ends an
 * event; "id" is remembered for Last-Event-ID). */
struct sse {
  struct ctl *c;
  struct ctl_buf line, data;
  char event[32];
  char last_id[32];                 /* "" until the server named one */
  int after_cr;                     /* the last byte was CR: skip an LF */
  unsigned long long printed, max;  /* events printed; stop after max (0: never) */
  int too_large;                    /* a line or an event over CTL_MAX_SSE_LINE */
};

static int sse_dispatch(struct sse *s) {
  struct ctl *c = s->c;
  const char *type = s->event[0] ? s->event : "message";
  cJSON *json;

  if (s->data.len == 0) {
    s->event[0] = '\0';
    return 0;                       /* no data: nothing to dispatch (spec) */
  }
  s->data.data[--s->data.len] = '\0';   /* the last data line's LF */
  json = cJSON_ParseWithLength(s->data.data, s->data.len);
  if (strcmp(type, "gap") == 0) {
    fprintf(c->out, "-- gap: %llu events missed, resuming at #%llu\n", ctl_ju64(json, "missed"),
            ctl_ju64(json, "next_seq"));
  } else if (cJSON_IsObject(json)) {
    ctl_print_event(c, json);
    s->printed++;
  } else {
    fputs("-- event ", c->out);
    ctl_put_safe(c->out, type);
    fputs(": ", c->out);
    ctl_put_line(c->out, s->data.data);
    fputc('\n', c->out);
  }
  fflush(c->out);
  cJSON_Delete(json);
  buf_clear(&s->data);
  s->event[0] = '\0';
  return s->max != 0 && s->printed >= s->max;
}

/* One line of the stream (without its end). Returns non-zero to stop. */
static int sse_line(struct sse *s, const char *line, size_t len) {
  const char *colon, *value;
  size_t flen, vlen;

  if (len == 0)
    return sse_dispatch(s);
  if (line[0] == ':')
    return 0;                       /* a comment: the heartbeat */
  colon = memchr(line, ':', len);
  flen = colon ? (size_t)(colon - line) : len;
  value = colon ? colon + 1 : line + len;
  vlen = len - (size_t)(value - line);
  if (vlen > 0 && value[0] == ' ')
    value++, vlen--;
  if (flen == 4 && memcmp(line, "data", 4) == 0) {
    if (buf_add(&s->data, value, vlen) != 0 || buf_add(&s->data, "\n", 1) != 0) {
      s->too_large = 1;
      return 1;
    }
  } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
    snprintf(s->event, sizeof s->event, "%.*s", (int)vlen, value);
  } else if (flen == 2 && memcmp(line, "id", 2) == 0) {
    if (vlen < sizeof s->last_id && memchr(value, '\0', vlen) == NULL)
      snprintf(s->last_id, sizeof s->last_id, "%.*s", (int)vlen, value);
  }
  return 0;                         /* "retry" and unknown fields: ignored */
}

/* The sink of the event stream: splits bytes into lines. */
static int sse_feed(void *arg, const char *p, size_t n) {
  struct sse *s = arg;
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == '\n' && s->after_cr) {
      s->after_cr = 0;
      continue;
    }
    s->after_cr = ch == '\r';
    if (ch == '\n' || ch == '\r') {
      int stop = sse_line(s, s->line.data ? s->line.data : "", s->line.len);
      buf_clear(&s->line);
      if (stop)
        return 1;
    } else if (buf_add(&s->line, &ch, 1) != 0) {
      s->too_large = 1;
      return 1;
    }
  }
  return 0;
}

/* Sleeps ms in short slices so the stop flag is seen. Returns 1 when stopping. */
static int ctl_pause(struct ctl *c, unsigned ms) {
  while (ms > 0 && !ctl_stopping(c)) {
    unsigned slice = ms < 20 ? ms : 20;
    struct timespec ts = {0, (long)slice * 1000000L};
    nanosleep(&ts, NULL);
    ms -= slice;
  }
  return ctl_stopping(c);
}

/* Follows /api/v1/events: one line per event. When a stream that was answered
 * ends or drops (the server restarting, a proxy's timeout) it reconnects with
 * Last-Event-ID, so nothing is printed twice and a gap is reported by the server,
 * pausing longer each time; it gives up with status 3 after reconnect_tries
 * failed attempts in a row. The first request failing ends it at once. */
static int ctl_events(struct ctl *c, unsigned long long max, const char *after) {
  struct sse s = {.c = c, .max = max};
  struct xfer x = {.sink = sse_feed, .sink_arg = &s};
  char path[96];
  unsigned failures = 0, pause = c->io->reconnect_ms;
  int connected = 0, status;

  s.line.max = s.data.max = CTL_MAX_SSE_LINE;
  x.body.max = CTL_MAX_REFUSAL;
  if (after != NULL)
    snprintf(s.last_id, sizeof s.last_id, "%s", after);
  for (;;) {
    /* The first request says where to start with ?after= (if asked); every
     * reconnect with Last-Event-ID, as the SSE spec has browsers do. */
    if (!connected && after != NULL)
      snprintf(path, sizeof path, "/api/v1/events?after=%s", after);
    else
      snprintf(path, sizeof path, "/api/v1/events");
    x.quiet = connected;            /* a failed reconnect is told when we give up */
    status = ctl_request(c, "GET", path, connected && s.last_id[0] ? s.last_id : NULL, &x, 1);
    if (s.too_large) {
      status = ctl_fail(c, ARBOR_CTL_REFUSED, "events: an event larger than %u bytes",
                        CTL_MAX_SSE_LINE);
      break;
    }
    if (x.stopped || ctl_stopping(c)) {
      status = ARBOR_CTL_OK;        /* enough events, or interrupted */
      break;
    }
    if (x.status != 0 && x.status != 200) {
      status = ctl_refused(c, "events", &x, 0);
      break;
    }
    if (status == ARBOR_CTL_USAGE || status == ARBOR_CTL_REFUSED)
      break;                        /* bad URL, answer too large: said already */
    if (x.status == 200) {
      /* it was streaming, and the stream ended or dropped */
      connected = 1;
      failures = 0;
      pause = c->io->reconnect_ms;
      fprintf(c->err, "arbor ctl: events: stream %s; reconnecting%s%s\n",
              status == ARBOR_CTL_OK ? "ended" : "lost", s.last_id[0] ? " after #" : "",
              s.last_id);
      fflush(c->err);
    } else if (!connected) {
      break;                        /* never reached it: the reason is printed */
    } else if (++failures >= c->io->reconnect_tries) {
      status = ctl_fail(c, ARBOR_CTL_CONNECT, "events: gave up after %u attempts: %s",
                        failures, x.reason);
      break;
    }
    buf_clear(&s.line);             /* a torn last line is not an event */
    buf_clear(&s.data);
    s.event[0] = '\0';
    s.after_cr = 0;
    if (ctl_pause(c, pause)) {
      status = ARBOR_CTL_OK;
      break;
    }
    if (failures > 0)
      pause = pause * 2 < c->io->reconnect_max_ms ? pause * 2 : c->io->reconnect_max_ms;
  }
  buf_free(&s.line);
  buf_free(&s.data);
  buf_free(&x.body);
  return status;
}

/* ---------------------------------------------------------------- log */

/* Prints a process service's captured output from offset 0, page by page; with
 * follow, polls for more every poll_ms using next_offset until stopped. Bytes the
 * ring overwrote before we read them are reported on stderr, not as an error. */
static int ctl_log(struct ctl *c, unsigned long long id, int follow) {
  char path[128], what[48];
  unsigned long long offset = 0;
  int status = ARBOR_CTL_OK;

  snprintf(what, sizeof what, "node %llu", id);
  while (status == ARBOR_CTL_OK) {
    cJSON *page = NULL;
    snprintf(path, sizeof path, "/api/v1/nodes/%llu/log?offset=%llu", id, offset);
    status = ctl_call(c, "GET", path, what, 1, &page);
    if (status == CTL_STOPPED)
      return ARBOR_CTL_OK;          /* interrupted mid-request */
    if (status != ARBOR_CTL_OK)
      break;
    const char *data = ctl_jstr(page, "data");
    unsigned long long next = ctl_ju64(page, "next_offset"), size = ctl_ju64(page, "size");
    unsigned long long missed = ctl_ju64(page, "missed");
    if (missed > 0) {
      fflush(c->out);
      fprintf(c->err, "arbor ctl: log: node %llu: %llu bytes overwritten before they were read\n",
              id, missed);
      fflush(c->err);
    }
    if (data != NULL)
      fwrite(data, 1, strlen(data), c->out);
    fflush(c->out);
    cJSON_Delete(page);
    int progressed = next > offset;
    if (progressed)
      offset = next;
    if (progressed && offset < size)
      continue;                     /* more pages now */
    if (!follow || ctl_pause(c, c->io->poll_ms))
      break;
  }
  return status;
}

/* -------------------------------------------------------------- trace */

static int trace_sink(void *arg, const char *p, size_t n) {
  return fwrite(p, 1, n, arg) == n ? 0 : 1;
}

/* Writes the trace export as the server sends it (streamed, not held). */
static int ctl_trace(struct ctl *c, const char *format) {
  struct xfer x = {.sink = trace_sink, .sink_arg = c->out};
  char path[64];
  int status;

  x.body.max = CTL_MAX_REFUSAL;
  snprintf(path, sizeof path, "/api/v1/trace?format=%s", format);
  status = ctl_request(c, "GET", path, NULL, &x, 0);
  if (status == ARBOR_CTL_OK && x.stopped)
    status = ctl_fail(c, ARBOR_CTL_REFUSED, "trace: cannot write the output");
  else if (status == ARBOR_CTL_OK && x.status == 404)
    status = ctl_fail(c, ARBOR_CTL_REFUSED,
                      "trace: this server has no trace export (404); it comes with the "
                      "tracing support");
  else if (status == ARBOR_CTL_OK && (x.status < 200 || x.status >= 300))
    status = ctl_refused(c, "trace", &x, 0);
  fflush(c->out);
  buf_free(&x.body);
  return status;
}

/* ----------------------------------------------------------- commands */

static const char usage_text[] =
    "usage: arbor ctl [--url URL] [--token TOKEN] [--color auto|always|never] COMMAND\n"
    "\n"
    "commands:\n"
    "  tree [--depth N] [--limit N] [ID]   the tree (or the subtree at ID), like pstree\n"
    "  status ID                           every detail of one node\n"
    "  cancel ID                           cancel a node and its subtree\n"
    "  restart ID                          restart a service or supervisor\n"
    "  events [-n N] [--after SEQ]         follow the live events\n"
    "  log ID [-f]                         a process service's captured output\n"
    "  trace --format chrome|otlp          the trace export, on stdout\n"
    "  add FILE|-                          add the service in FILE (a config service object)\n"
    "  update NAME FILE|-                  give service NAME the spec in FILE: it restarts\n"
    "  remove NAME                         stop service NAME for good and remove it\n"
    "  help                                this text\n"
    "\n"
    "The address is --url, else $ARBOR_URL, else " CTL_DEFAULT_URL ";\n"
    "the token --token, else $ARBOR_TOKEN, else the first line of $ARBOR_TOKEN_FILE.\n"
    "add, update and remove last until the daemon's next reload: write them to its\n"
    "config to keep them.\n"
    "Exit status: 0 done, 1 refused by the server, 2 usage, 3 cannot reach the server.\n";

static int usage_error(struct ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(struct ctl *c, const char *fmt, ...) {
  va_list ap;
  fputs("arbor ctl: ", c->err);
  va_start(ap, fmt);
  vfprintf(c->err, fmt, ap);
  va_end(ap);
  fputs(" (arbor ctl help)\n", c->err);
  fflush(c->err);
  return ARBOR_CTL_USAGE;
}

/* An unsigned decimal, no sign, at most max. */
static int parse_u64(const char *s, unsigned long long max, unsigned long long *out) {
  unsigned long long v = 0;
  if (s == NULL || *s == '\0')
    return -1;
  for (; *s; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (!isdigit((unsigned char)*s) || d > max || v > (max - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]. Returns 1 (and advances *i past
 * the value) when it is this option, 0 when not, -1 when its value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0)
    return 0;
  if (argv[*i][n] == '=') {
    *val = argv[*i] + n + 1;
    return 1;
  }
  if (argv[*i][n] != '\0')
    return 0;
  if (*i + 1 >= argc)
    return -1;
  *val = argv[++*i];
  return 1;
}

/* The node id argument of a command. */
static int parse_id(struct ctl *c, const char *cmd, const char *arg, unsigned long long *id) {
  if (arg == NULL)
    return usage_error(c, "%s: which node? give its id", cmd);
  if (parse_u64(arg, UINT64_MAX, id) != 0)
    return usage_error(c, "%s: bad node id '%s' (a number, as tree shows it)", cmd, arg);
  return ARBOR_CTL_OK;
}

static int cmd_tree(struct ctl *c, int argc, char **argv) {
  unsigned long long depth = 4, limit = 0, root = 0;
  const char *val = NULL, *id = NULL;
  for (int i = 1; i < argc; i++) {
    int r;
    if ((r = opt_value(argc, argv, &i, "--depth", &val)) != 0) {
      if (r < 0 || parse_u64(val, CTL_MAX_TREE_DEPTH, &depth) != 0)
        return usage_error(c, "tree: --depth takes a number from 0 to %d", CTL_MAX_TREE_DEPTH);
    } else if ((r = opt_value(argc, argv, &i, "--limit", &val)) != 0) {
      if (r < 0 || parse_u64(val, 1000, &limit) != 0 || limit == 0)
        return usage_error(c, "tree: --limit takes a number from 1 to 1000");
    } else if (argv[i][0] == '-' || id != NULL) {
      return usage_error(c, "tree: unexpected '%s'", argv[i]);
    } else {
      id = argv[i];
    }
  }
  if (id != NULL && parse_id(c, "tree", id, &root) != ARBOR_CTL_OK)
    return ARBOR_CTL_USAGE;

  char path[128], what[48];
  int n = snprintf(path, sizeof path, "/api/v1/tree?depth=%llu", depth);
  if (id != NULL)
    n += snprintf(path + n, sizeof path - (size_t)n, "&root=%llu", root);
  if (limit != 0)
    snprintf(path + n, sizeof path - (size_t)n, "&limit=%llu", limit);
  if (id != NULL)
    snprintf(what, sizeof what, "node %llu", root);
  else
    snprintf(what, sizeof what, "tree");
  cJSON *answer = NULL;
  int status = ctl_call(c, "GET", path, what, id != NULL, &answer);
  if (status == ARBOR_CTL_OK && ctl_print_tree(c, answer) != 0)
    status = ctl_fail(c, ARBOR_CTL_REFUSED, "tree: the server's answer has no root");
  cJSON_Delete(answer);
  return status;
}

/* The commands taking exactly one node id and nothing else. */
static int one_id(struct ctl *c, int argc, char **argv, unsigned long long *id) {
  if (argc > 2)
    return usage_error(c, "%s: unexpected '%s'", argv[0], argv[2]);
  return parse_id(c, argv[0], argc > 1 ? argv[1] : NULL, id);
}

static int cmd_status(struct ctl *c, int argc, char **argv) {
  unsigned long long id;
  char path[64], what[48];
  cJSON *node = NULL;
  if (one_id(c, argc, argv, &id) != ARBOR_CTL_OK)
    return ARBOR_CTL_USAGE;
  snprintf(path, sizeof path, "/api/v1/nodes/%llu", id);
  snprintf(what, sizeof what, "node %llu", id);
  int status = ctl_call(c, "GET", path, what, 1, &node);
  if (status == ARBOR_CTL_OK)
    ctl_print_status(c, node);
  cJSON_Delete(node);
  return status;
}

/* cancel and restart: POST, then the 202 answer in one line. */
static int cmd_mutate(struct ctl *c, int argc, char **argv) {
  unsigned long long id;
  char path[80], what[48];
  cJSON *answer = NULL;
  int restart = strcmp(argv[0], "restart") == 0;
  if (one_id(c, argc, argv, &id) != ARBOR_CTL_OK)
    return ARBOR_CTL_USAGE;
  snprintf(path, sizeof path, "/api/v1/nodes/%llu/%s", id, argv[0]);
  snprintf(what, sizeof what, "node %llu", id);
  int status = ctl_call(c, "POST", path, what, 1, &answer);
  if (status != ARBOR_CTL_OK)
    return status;
  if (restart) {
    fprintf(c->out, "node %llu: restart requested (restarts %llu)\n", ctl_ju64(answer, "id"),
            ctl_ju64(answer, "restarts"));
  } else {
    const char *state = ctl_jstr(answer, "state");
    fprintf(c->out, "node %llu: cancel requested (", ctl_ju64(answer, "id"));
    ctl_paint(c, ctl_state_color(state), state != NULL ? state : "?");
    fputs(")\n", c->out);
  }
  cJSON_Delete(answer);
  return ARBOR_CTL_OK;
}

static int cmd_events(struct ctl *c, int argc, char **argv) {
  unsigned long long max = 0, seq;
  const char *val = NULL, *after = NULL;
  for (int i = 1; i < argc; i++) {
    int r;
    if ((r = opt_value(argc, argv, &i, "-n", &val)) != 0) {
      if (r < 0 || parse_u64(val, UINT64_MAX, &max) != 0 || max == 0)
        return usage_error(c, "events: -n takes a number of events, at least 1");
    } else if ((r = opt_value(argc, argv, &i, "--after", &val)) != 0) {
      if (r < 0 || parse_u64(val, UINT64_MAX, &seq) != 0)
        return usage_error(c, "events: --after takes an event number (seq)");
      after = val;
    } else {
      return usage_error(c, "events: unexpected '%s'", argv[i]);
    }
  }
  return ctl_events(c, max, after);
}

static int cmd_log(struct ctl *c, int argc, char **argv) {
  unsigned long long id = 0;
  const char *arg = NULL;
  int follow = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0)
      follow = 1;
    else if (argv[i][0] == '-' || arg != NULL)
      return usage_error(c, "log: unexpected '%s'", argv[i]);
    else
      arg = argv[i];
  }
  if (parse_id(c, "log", arg, &id) != ARBOR_CTL_OK)
    return ARBOR_CTL_USAGE;
  return ctl_log(c, id, follow);
}

static int cmd_trace(struct ctl *c, int argc, char **argv) {
  const char *format = NULL;
  for (int i = 1; i < argc; i++) {
    int r = opt_value(argc, argv, &i, "--format", &format);
    if (r < 0)
      return usage_error(c, "trace: --format takes chrome or otlp");
    if (r == 0)
      return usage_error(c, "trace: unexpected '%s'", argv[i]);
  }
  if (format == NULL || (strcmp(format, "chrome") != 0 && strcmp(format, "otlp") != 0))
    return usage_error(c, "trace: --format chrome or --format otlp");
  return ctl_trace(c, format);
}

/* -------------------------------------------------- live service changes */

#define CTL_MAX_SPEC (1u << 20)      /* a spec file; the server's own limit is smaller */

/* FILE ("-": stdin) whole into *out (NUL-terminated). */
static int read_spec(struct ctl *c, const char *cmd, const char *file, char **out, size_t *len) {
  FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
  if (f == NULL)
    return usage_error(c, "%s: cannot read %s: %s", cmd, file, strerror(errno));
  char *buf = malloc(CTL_MAX_SPEC + 1);
  size_t n = buf != NULL ? fread(buf, 1, CTL_MAX_SPEC + 1, f) : 0;
  int bad = buf == NULL || ferror(f);
  if (f != stdin)
    fclose(f);
  if (bad || n > CTL_MAX_SPEC) {
    free(buf);
    return buf == NULL ? ctl_fail(c, ARBOR_CTL_REFUSED, "out of memory")
                       : usage_error(c, "%s: cannot read %s%s", cmd, file,
                                     n > CTL_MAX_SPEC ? ": larger than 1 MiB" : "");
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return ARBOR_CTL_OK;
}

/* A service name: as the config allows, so it goes into the URL as it is. */
static int parse_name(struct ctl *c, const char *cmd, const char *name) {
  size_t n = name != NULL ? strlen(name) : 0;
  if (name == NULL)
    return usage_error(c, "%s: which service? give its name", cmd);
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)name[i]) && strchr("_-.", name[i]) == NULL)
      n = 0;
  if (n == 0 || n > 64)
    return usage_error(c, "%s: bad service name '%s' (1 to 64 of A-Z a-z 0-9 _ - .)", cmd,
                       name);
  return ARBOR_CTL_OK;
}

/* add FILE, update NAME FILE, remove NAME: one request, one line. */
static int cmd_service(struct ctl *c, int argc, char **argv) {
  const char *cmd = argv[0];
  int add = strcmp(cmd, "add") == 0, remove = strcmp(cmd, "remove") == 0;
  int nargs = add || remove ? 1 : 2;
  if (argc > nargs + 1)
    return usage_error(c, "%s: unexpected '%s'", cmd, argv[nargs + 1]);
  const char *name = add ? NULL : argc > 1 ? argv[1] : NULL;
  const char *file = add ? (argc > 1 ? argv[1] : NULL) : argc > 2 ? argv[2] : NULL;
  if (!add && parse_name(c, cmd, name) != ARBOR_CTL_OK)
    return ARBOR_CTL_USAGE;
  if (!remove && file == NULL)
    return usage_error(c, "%s: which spec? give a file, or - for stdin", cmd);
  char *spec = NULL;
  size_t len = 0;
  if (!remove && read_spec(c, cmd, file, &spec, &len) != ARBOR_CTL_OK)
    return ARBOR_CTL_USAGE;
  char path[128], what[96];
  snprintf(path, sizeof path, "/api/v1/services%s%s", add ? "" : "/", add ? "" : name);
  if (add)
    snprintf(what, sizeof what, "add");
  else
    snprintf(what, sizeof what, "service %s", name);
  c->req_body = spec;
  c->req_body_len = len;
  cJSON *answer = NULL;
  int status = ctl_call(c, add ? "POST" : remove ? "DELETE" : "PUT", path, what, 0, &answer);
  c->req_body = NULL;
  free(spec);
  if (status != ARBOR_CTL_OK)
    return status;
  fputs("service ", c->out);
  ctl_put_line(c->out, ctl_jstr(answer, "name"));
  if (add)
    fprintf(c->out, " added (id %llu)\n", ctl_ju64(answer, "id"));
  else if (remove)
    fprintf(c->out, ": removing (id %llu)\n", ctl_ju64(answer, "id"));
  else
    fprintf(c->out, ": %s (id %llu)\n",
            ctl_jtrue(answer, "restarted") ? "restarting with the new spec"
                                           : "unchanged, not restarted",
            ctl_ju64(answer, "id"));
  cJSON_Delete(answer);
  return ARBOR_CTL_OK;
}

static int cmd_help(struct ctl *c, int argc, char **argv) {
  (void)argc, (void)argv;
  fputs(usage_text, c->out);
  return ARBOR_CTL_OK;
}

static const struct ctl_command {
  const char *name;
  int (*run)(struct ctl *c, int argc, char **argv);
  int follows;                      /* runs until interrupted: catches SIGINT */
} ctl_commands[] = {
    {"tree", cmd_tree, 0},     {"status", cmd_status, 0}, {"cancel", cmd_mutate, 0},
    {"restart", cmd_mutate, 0}, {"events", cmd_events, 1}, {"log", cmd_log, 1},
    {"trace", cmd_trace, 0},   {"add", cmd_service, 0},   {"update", cmd_service, 0},
    {"remove", cmd_service, 0}, {"help", cmd_help, 0},
};

/* ------------------------------------------------------------ options */

/* The base URL: "host:port" gets http://, a trailing '/' goes. Only http(s). */
static int set_url(struct ctl *c, const char *url, const char *from) {
  const char *scheme = strstr(url, "://") ? "" : "http://";
  size_t len;
  if (url[0] == '\0')
    return usage_error(c, "%s is empty", from);
  if (*scheme == '\0' && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
    return usage_error(c, "%s: '%s' is not an http:// or https:// URL", from, url);
  c->base = malloc(strlen(scheme) + strlen(url) + 1);
  if (c->base == NULL)
    return ctl_fail(c, ARBOR_CTL_REFUSED, "out of memory");
  strcpy(c->base, scheme);
  strcat(c->base, url);
  len = strlen(c->base);
  while (len > 0 && c->base[len - 1] == '/')
    c->base[--len] = '\0';
  return ARBOR_CTL_OK;
}

/* A token goes into a header line: no control characters, and not absurdly long. */
static int set_token(struct ctl *c, const char *token, const char *from) {
  size_t len = strlen(token);
  while (len > 0 && isspace((unsigned char)token[len - 1]))
    len--;
  if (len == 0)
    return usage_error(c, "the token from %s is empty", from);
  if (len > 512)
    return usage_error(c, "the token from %s is longer than 512 bytes", from);
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)token[i] < 0x20 || token[i] == 0x7f)
      return usage_error(c, "the token from %s has a control character", from);
  c->token = strndup(token, len);
  c->token_from = from;
  return c->token ? ARBOR_CTL_OK : ctl_fail(c, ARBOR_CTL_REFUSED, "out of memory");
}

/* The first line of the token file. */
static int read_token_file(struct ctl *c, const char *path) {
  char line[1024];
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return usage_error(c, "cannot read ARBOR_TOKEN_FILE %s: %s", path, strerror(errno));
  int got = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  if (!got)
    return usage_error(c, "ARBOR_TOKEN_FILE %s is empty", path);
  line[strcspn(line, "\r\n")] = '\0';
  return set_token(c, line, "ARBOR_TOKEN_FILE");
}

/* Address and token: flag, else environment, else the default (no token). */
static int resolve_target(struct ctl *c, const char *url, const char *token) {
  const char *env;
  int status;
  if (url != NULL)
    status = set_url(c, url, "--url");
  else if ((env = getenv("ARBOR_URL")) != NULL && env[0] != '\0')
    status = set_url(c, env, "ARBOR_URL");
  else
    status = set_url(c, CTL_DEFAULT_URL, "the default URL");
  if (status != ARBOR_CTL_OK)
    return status;
  if (token != NULL)
    return set_token(c, token, "--token");
  if ((env = getenv("ARBOR_TOKEN")) != NULL && env[0] != '\0')
    return set_token(c, env, "ARBOR_TOKEN");
  if ((env = getenv("ARBOR_TOKEN_FILE")) != NULL && env[0] != '\0')
    return read_token_file(c, env);
  return ARBOR_CTL_OK;
}

static int decide_color(const struct ctl_io *io, const char *when, FILE *out) {
  if (when != NULL && strcmp(when, "always") == 0)
    return 1;
  if (when != NULL && strcmp(when, "never") == 0)
    return 0;
  if (io->color >= 0)
    return io->color;
  const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
  return isatty(fileno(out)) && (no_color == NULL || no_color[0] == '\0') &&
         !(term != NULL && strcmp(term, "dumb") == 0);
}

static volatile sig_atomic_t ctl_interrupted;

static void ctl_on_signal(int sig) {
  (void)sig;
  ctl_interrupted = 1;
}

/* For the follow commands of a real process: SIGINT/SIGTERM end them cleanly. */
static void catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ctl_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* `arbor ctl ARGS` against io. argv[0] is "ctl". */
static int ctl_run(const struct ctl_io *io, int argc, char **argv) {
  struct ctl c = {.io = io, .out = io->out, .err = io->err};
  const char *url = NULL, *token = NULL, *color = NULL;
  const struct ctl_command *cmd = NULL;
  int i, r, status;

  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if ((r = opt_value(argc, argv, &i, "--url", &url)) != 0 ||
        (r = opt_value(argc, argv, &i, "--token", &token)) != 0 ||
        (r = opt_value(argc, argv, &i, "--color", &color)) != 0) {
      if (r < 0)
        return usage_error(&c, "%s needs a value", argv[i]);
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      return cmd_help(&c, 0, NULL);
    } else {
      return usage_error(&c, "unknown option '%s'", argv[i]);
    }
  }
  if (color != NULL && strcmp(color, "auto") != 0 && strcmp(color, "always") != 0 &&
      strcmp(color, "never") != 0)
    return usage_error(&c, "--color takes auto, always or never");
  if (i >= argc)
    return usage_error(&c, "which command? tree, status, cancel, restart, events, log, trace, "
                           "add, update, remove");
  for (size_t k = 0; k < sizeof ctl_commands / sizeof ctl_commands[0]; k++)
    if (strcmp(argv[i], ctl_commands[k].name) == 0)
      cmd = &ctl_commands[k];
  if (cmd == NULL)
    return usage_error(&c, "unknown command '%s'", argv[i]);
  if (cmd->run == cmd_help)
    return cmd_help(&c, 0, NULL);

  c.color = decide_color(io, color, c.out);
  status = resolve_target(&c, url, token);
  if (status == ARBOR_CTL_OK && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    status = ctl_fail(&c, ARBOR_CTL_REFUSED, "cannot initialise libcurl");
  else if (status == ARBOR_CTL_OK) {
    c.curl = curl_easy_init();
    if (c.curl == NULL) {
      status = ctl_fail(&c, ARBOR_CTL_REFUSED, "cannot initialise libcurl");
    } else {
      if (cmd->follows && io->catch_signals)
        catch_stop_signals();
      status = cmd->run(&c, argc - i, argv + i);
      curl_easy_cleanup(c.curl);
    }
    curl_global_cleanup();
  }
  if (status == CTL_STOPPED)
    status = ARBOR_CTL_OK;
  if (fflush(c.out) != 0 || ferror(c.out)) {
    if (status == ARBOR_CTL_OK)
      status = ctl_fail(&c, ARBOR_CTL_REFUSED, "cannot write the output: %s", strerror(errno));
  }
  free(c.base);
  free(c.token);
  return status;
}

int arbor_ctl_main(int argc, char **argv) {
  struct ctl_io io = {
      .out = stdout,
      .err = stderr,
      .color = -1,
      .stop = &ctl_interrupted,
      .catch_signals = 1,
      .poll_ms = 200,
      .reconnect_ms = 500,
      .reconnect_max_ms = 5000,
      .reconnect_tries = 20,
  };
  return ctl_run(&io, argc, argv);
}
