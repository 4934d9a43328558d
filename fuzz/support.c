/* fuzz/support.c - what the drivers share: the temporary directory, a loop and
 * runtime per input, and the in-process HTTP client (support.h says why it is
 * built this way). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

/* Turns of the loop in which neither the request went out nor a response byte
 * came in, after which a response that has not ended is taken to be a stream
 * waiting for events. MHD needs one turn to accept, one to read, one to write
 * (and its zero timer when it holds data it read), so 16 is generous; a wrong
 * guess cuts a response short, which the drivers that check bodies notice. */
#define IDLE_TURNS 16

void fz_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz: invariant broken: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

/* ------------------------------------------------------------ temp dir */

static char tmpdir[64];

static void remove_tmpdir(void) {
  char cmd[128];
  /* Only files the drivers wrote, flat: a plain rm -r of our own mkdtemp. */
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "fuzz: could not remove %s\n", tmpdir);
}

const char *fz_tmpdir(void) {
  if (tmpdir[0] == '\0') {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/arbor-fuzz-XXXXXX",
             base != NULL && base[0] != '\0' && strlen(base) < 32 ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
      fz_die("mkdtemp %s: %s", tmpdir, strerror(errno));
    atexit(remove_tmpdir);
  }
  return tmpdir;
}

void fz_tmpfile(const char *name, const void *data, size_t len, char *path, size_t pathlen) {
  snprintf(path, pathlen, "%s/%s", fz_tmpdir(), name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    fz_die("open %s: %s", path, strerror(errno));
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      fz_die("write %s: %s", path, strerror(errno));
    p += w;
    len -= (size_t)w;
  }
  close(fd);
}

/* ---------------------------------------------------------------- loop */

void fz_loop_open(struct fz_loop *l) {
  memset(l, 0, sizeof *l);
  if (uv_loop_init(&l->loop) != 0)
    fz_die("uv_loop_init");
  /* A small ring: inputs make few events, and a fresh runtime per input
   * must stay cheap. no_signals: the fuzzer owns the process's signals. */
  arbor_runtime_opts_t o = {.event_capacity = 256, .retain_finished = 64, .no_signals = 1};
  if (arbor_runtime_new(&l->rt, &l->loop, &o) != 0)
    fz_die("arbor_runtime_new");
}

void fz_loop_settle(struct fz_loop *l) {
  /* NOWAIT turns until one finds nothing to do now: the drain's idle handle
   * keeps the loop turning while work is queued. */
  for (int i = 0; i < 64 && uv_run(&l->loop, UV_RUN_NOWAIT) != 0; i++)
    ;
}

static void on_closed(arbor_runtime_t *rt, void *arg) {
  (void)rt;
  *(int *)arg = 1;
}

void fz_loop_close(struct fz_loop *l) {
  int closed = 0;
  if (arbor_runtime_close(l->rt, on_closed, &closed) != 0)
    fz_die("arbor_runtime_close");
  while (!closed)
    uv_run(&l->loop, UV_RUN_ONCE);
  uv_run(&l->loop, UV_RUN_NOWAIT);
  int rc = uv_loop_close(&l->loop);
  if (rc != 0)
    fz_die("uv_loop_close: %s (a handle left open)", uv_strerror(rc));
}

/* ---------------------------------------------------------------- http */

arbor_admin_t *fz_http_start(struct fz_loop *l, const arbor_admin_opts_t *opts) {
  arbor_admin_opts_t o = *opts;
  o.port = 0;
  arbor_admin_t *admin = NULL;
  int rc = arbor_admin_start(l->rt, &o, &admin);
  if (rc != 0)
    fz_die("arbor_admin_start: %s", arbor_err_name(rc));
  return admin;
}

static int client_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    fz_die("socket: %s", strerror(errno));
  /* Close with a reset: no TIME_WAIT left behind, millions of connections on. */
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
    fz_die("connect: %s", strerror(errno));
  return fd;
}

static void parse_head(struct fz_resp *r) {
  unsigned st = 0;
  if (r->len >= 12 && memcmp(r->data, "HTTP/1.", 7) == 0 && sscanf(r->data + 9, "%3u", &st) == 1)
    r->status = st;
  char *end = strstr(r->data, "\r\n\r\n");
  if (end != NULL) {
    r->body = end + 4;
    r->body_len = r->len - (size_t)(r->body - r->data);
  }
}

void fz_http_roundtrip(struct fz_loop *l, arbor_admin_t *admin, const char *req, size_t len,
                       int shut, struct fz_resp *resp) {
  memset(resp, 0, sizeof *resp);
  size_t cap = 4096;
  resp->data = malloc(cap);
  if (resp->data == NULL)
    fz_die("out of memory");
  int fd = client_connect(arbor_admin_port(admin));
  size_t sent = 0;
  int idle = 0, shut_done = 0;
  while (idle < IDLE_TURNS) {
    int moved = 0;
    if (sent < len) {
      ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += (size_t)w;
        moved = 1;
      } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
        sent = len;            /* the server closed on us: read what it said */
      }
    }
    if (sent == len && shut && !shut_done) {
      shutdown(fd, SHUT_WR);
      shut_done = 1;
    }
    uv_run(&l->loop, UV_RUN_NOWAIT);
    for (;;) {
      if (cap - resp->len < 2048) {
        if (cap >= FZ_RESP_MAX)
          fz_die("a response over %u bytes", FZ_RESP_MAX);
        cap *= 2;
        char *d = realloc(resp->data, cap);
        if (d == NULL)
          fz_die("out of memory");
        resp->data = d;
      }
      ssize_t n = recv(fd, resp->data + resp->len, cap - resp->len - 1, 0);
      if (n > 0) {
        resp->len += (size_t)n;
        moved = 1;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        resp->ended = 1;       /* closed, or reset after a refusal */
      break;
    }
    if (resp->ended)
      break;
    idle = moved ? 0 : idle + 1;
  }
  close(fd);
  /* Let the server see the close of a connection it still watches. */
  for (int i = 0; i < 4; i++)
    uv_run(&l->loop, UV_RUN_NOWAIT);
  resp->data[resp->len] = '\0';
  parse_head(resp);
}

void fz_resp_free(struct fz_resp *resp) {
  free(resp->data);
  memset(resp, 0, sizeof *resp);
}

/* ------------------------------------------------------------- checks */

#include <cJSON.h>

int fz_utf8_valid(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;   /* the second byte's range */
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0)
        lo = 0xA0;                   /* overlong */
      if (c == 0xED)
        hi = 0x9F;                   /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0)
        lo = 0x90;
      if (c == 0xF4)
        hi = 0x8F;                   /* past U+10FFFF */
    } else {
      return 0;
    }
    if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
      return 0;
    for (size_t k = 2; k < n; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF)
        return 0;
    i += n;
  }
  return 1;
}

static void show(const char *what, const char *why, const char *text, size_t len, size_t at) {
  size_t from = at > 40 ? at - 40 : 0;
  fprintf(stderr, "fuzz: %s: %s at byte %zu of %zu: ...", what, why, at, len);
  for (size_t i = from; i < len && i < at + 40; i++)
    fprintf(stderr, (unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f ? "\\x%02x" : "%c",
            (unsigned char)text[i]);
  fputs("...\n", stderr);
}

void fz_check_json(const char *what, const char *text, size_t len) {
  if (!fz_utf8_valid((const unsigned char *)text, len)) {
    size_t at = 0;
    while (fz_utf8_valid((const unsigned char *)text, at + 1))
      at++;
    show(what, "invalid UTF-8", text, len, at);
    fz_die("%s: not valid UTF-8", what);
  }
  int in_str = 0, esc = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (in_str) {
      if (esc)
        esc = 0;
      else if (c == '\\')
        esc = 1;
      else if (c == '"')
        in_str = 0;
      else if (c < 0x20) {
        show(what, "raw control character in a string", text, len, i);
        fz_die("%s: raw control character in a string", what);
      }
    } else if (c == '"') {
      in_str = 1;
    }
  }
  cJSON *doc = cJSON_ParseWithLength(text, len);
  if (doc == NULL) {
    const char *e = cJSON_GetErrorPtr();
    show(what, "not JSON", text, len, e != NULL && e >= text && e <= text + len ? (size_t)(e - text) : 0);
    fz_die("%s: not JSON", what);
  }
  cJSON_Delete(doc);
}

static int name_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
static int name_char(int c) { return name_start(c) || (c >= '0' && c <= '9'); }

/* One sample line (no newline). Returns NULL or what is wrong with it. */
static const char *sample_problem(const char *s, const char *end) {
  if (s == end || !name_start((unsigned char)*s))
    return "a sample's metric name";
  while (s < end && name_char((unsigned char)*s))
    s++;
  if (s < end && *s == '{') {
    s++;
    while (s < end && *s != '}') {
      if (!name_start((unsigned char)*s) || *s == ':')
        return "a label name";
      while (s < end && name_char((unsigned char)*s))
        s++;
      if (end - s < 2 || s[0] != '=' || s[1] != '"')
        return "label=\"value\"";
      s += 2;
      while (s < end && *s != '"') {
        if (*s == '\\') {
          if (end - s < 2 || (s[1] != '\\' && s[1] != '"' && s[1] != 'n'))
            return "an escape in a label value";
          s++;
        }
        s++;
      }
      if (s == end)
        return "an unterminated label value";
      s++;
      if (s < end && *s == ',')
        s++;
      else if (s < end && *s != '}')
        return "',' or '}' after a label";
    }
    if (s == end)
      return "an unterminated label set";
    s++;
  }
  if (s == end || *s != ' ')
    return "a space before the value";
  s++;
  char num[64];
  size_t n = 0;
  while (s < end && *s != ' ' && n < sizeof num - 1)
    num[n++] = *s++;
  num[n] = '\0';
  if (strcmp(num, "NaN") != 0 && strcmp(num, "+Inf") != 0 && strcmp(num, "-Inf") != 0) {
    char *stop;
    strtod(num, &stop);
    if (n == 0 || *stop != '\0')
      return "a number";
  }
  if (s < end) {                         /* a timestamp: an integer */
    s++;
    if (s == end)
      return "a timestamp";
    if (*s == '-')
      s++;
    for (; s < end; s++)
      if (*s < '0' || *s > '9')
        return "a timestamp";
  }
  return NULL;
}

void fz_check_exposition(const char *what, const char *text, size_t len) {
  if (!fz_utf8_valid((const unsigned char *)text, len))
    fz_die("%s: not valid UTF-8", what);
  if (len == 0 || text[len - 1] != '\n')
    fz_die("%s: does not end with a newline", what);
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *why = NULL;
    for (const char *q = p; q < nl; q++)
      if ((unsigned char)*q < 0x20 && *q != '\t') {
        why = "a control character";
        break;
      }
    if (why == NULL && nl - p >= 2 && p[0] == '#') {
      if ((nl - p > 7 && memcmp(p, "# HELP ", 7) == 0) || (nl - p > 7 && memcmp(p, "# TYPE ", 7) == 0)) {
        const char *q = p + 7;
        if (!name_start((unsigned char)*q))
          why = "a metric name after # HELP/TYPE";
      }
    } else if (why == NULL) {
      why = sample_problem(p, nl);
    }
    if (why != NULL) {
      show(what, why, text, len, (size_t)(p - text));
      fz_die("%s: %s", what, why);
    }
    p = nl + 1;
  }
}
