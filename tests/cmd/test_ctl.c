/* tests/cmd/test_ctl.c - `arbor ctl` (cmd/ctl.c).
 *
 * Two kinds of test:
 * - ctl_* against a scripted HTTP server in a thread of this process: it answers
 *   each connection with the next canned response and records the request, so
 *   the printers (tree, status, events, log), the refusals, the exit statuses and
 *   what ctl sends (paths, token, Last-Event-ID) are checked exactly, without
 *   timing.
 * - live_* against a real runtime and admin server (arbor_admin_start on port 0):
 *   the loop runs on this thread, ctl on a second one (ctl is synchronous), and
 *   the loop runs until ctl is done.
 *
 * ctl.c and ctl_print.c are included, not linked (cmd/ is a program, not a
 * library): the tests call ctl_run() with files of their own instead of
 * stdout/stderr, and short pauses for the follow loops. They come before
 * harness.h, whose short state macros (STARTED, ...) would collide.
 */
#include "../../cmd/ctl.c"
#include "../../cmd/ctl_print.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "harness.h"

/* ----------------------------------------------------- scripted server */

#define FAKE_MAX 8

struct fake_reply {
  const char *status;               /* "200 OK" */
  const char *type;                 /* Content-Type */
  const char *body;
  int stream;                       /* no Content-Length: the body ends with the close */
};

struct fake {
  int fd;
  int port;
  pthread_t thread;
  struct fake_reply replies[FAKE_MAX];
  int nreplies;
  char requests[FAKE_MAX][4096];    /* each request's head, as received */
  int nrequests;                    /* written by the thread; read after the join */
};

/* Reads a request head (up to the blank line) into buf. */
static void fake_read_head(int fd, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  while (len + 1 < size && strstr(buf, "\r\n\r\n") == NULL) {
    ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
    buf[len] = '\0';
  }
}

static void fake_send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

/* Answers one connection per reply, in order, then closes the listener: a
 * request after the script gets "connection refused". */
static void *fake_main(void *arg) {
  struct fake *f = arg;
  for (int i = 0; i < f->nreplies; i++) {
    int conn = accept(f->fd, NULL, NULL);
    if (conn < 0)
      break;                        /* the test shut the listener down */
    const struct fake_reply *r = &f->replies[i];
    char head[512];
    fake_read_head(conn, f->requests[i], sizeof f->requests[i]);
    f->nrequests = i + 1;
    if (r->stream)
      snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Type: %s\r\nConnection: close\r\n\r\n",
               r->status, r->type);
    else
      snprintf(head, sizeof head,
               "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Connection: close\r\n\r\n",
               r->status, r->type, strlen(r->body));
    fake_send_all(conn, head, strlen(head));
    fake_send_all(conn, r->body, strlen(r->body));
    shutdown(conn, SHUT_WR);
    close(conn);
  }
  shutdown(f->fd, SHUT_RDWR);
  return NULL;
}

/* A listening socket on 127.0.0.1, a free port. */
static int listen_loopback(int *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_eq(listen(fd, 8), 0);
  assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static void fake_add(struct fake *f, const char *status, const char *body) {
  assert_true(f->nreplies < FAKE_MAX);
  f->replies[f->nreplies++] = (struct fake_reply){status, "application/json", body, 0};
}

static void fake_add_stream(struct fake *f, const char *body) {
  assert_true(f->nreplies < FAKE_MAX);
  f->replies[f->nreplies++] = (struct fake_reply){"200 OK", "text/event-stream", body, 1};
}

static void fake_start(struct fake *f) {
  f->fd = listen_loopback(&f->port);
  assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

/* Ends the server (also when ctl asked less than scripted) and joins it. */
static void fake_stop(struct fake *f) {
  shutdown(f->fd, SHUT_RDWR);
  assert_int_eq(pthread_join(f->thread, NULL), 0);
  close(f->fd);
}

/* ------------------------------------------------------------- running */

/* One run of ctl and what it wrote. */
struct run {
  int status;
  char out[32768];
  char err[4096];
};

static volatile sig_atomic_t test_stop;

static void slurp(FILE *f, char *buf, size_t size) {
  size_t n;
  rewind(f);
  n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* Runs `arbor ctl --url http://127.0.0.1:PORT ARGS...` (port 0: no --url) into r.
 * No cmocka assertion here: it also runs on a thread of its own (live_*).
 * Returns -1 when it could not make its files. */
static int ctl_capture(struct run *r, int port, int color, const char *const *args) {
  char url[64];
  char *argv[32];
  int argc = 0;
  struct ctl_io io = {
      .color = color, .stop = &test_stop, .poll_ms = 10, .reconnect_ms = 1,
      .reconnect_max_ms = 4, .reconnect_tries = 3,
  };
  io.out = tmpfile();
  io.err = tmpfile();
  if (io.out == NULL || io.err == NULL) {
    if (io.out != NULL)
      fclose(io.out);
    return -1;
  }
  argv[argc++] = "ctl";
  if (port != 0) {
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    argv[argc++] = "--url";
    argv[argc++] = url;
  }
  for (; *args != NULL && argc < 31; args++)
    argv[argc++] = (char *)*args;
  argv[argc] = NULL;
  r->status = ctl_run(&io, argc, argv);
  slurp(io.out, r->out, sizeof r->out);
  slurp(io.err, r->err, sizeof r->err);
  return 0;
}

static void run_ctl_v(struct run *r, int port, int color, const char *const *args) {
  assert_int_eq(ctl_capture(r, port, color, args), 0);
}

#define run_ctl(r, port, ...) run_ctl_v((r), (port), 0, (const char *const[]){__VA_ARGS__, NULL})

#define assert_str_eq(got, want)                                                       \
  do {                                                                                 \
    if (strcmp((got), (want)) != 0) {                                                  \
      print_error("got:\n%s\nwant:\n%s\n", (got), (want));                            \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

#define assert_contains(text, part)                                                    \
  do {                                                                                 \
    if (strstr((text), (part)) == NULL) {                                              \
      print_error("no \"%s\" in:\n%s\n", (part), (text));                             \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* The request line of request i: "GET /api/v1/tree?depth=4 HTTP/1.1". */
static void assert_request(const struct fake *f, int i, const char *line) {
  assert_true(i < f->nrequests);
  size_t n = strlen(line);
  if (strncmp(f->requests[i], line, n) != 0 || f->requests[i][n] != '\r') {
    print_error("request %d:\n%s\nwant: %s\n", i, f->requests[i], line);
    _fail(__FILE__, __LINE__);
  }
}

/* ---------------------------------------------------------- canned JSON */

#define ERR_EIO                                                                        \
  "{\"code\":-5,\"name\":\"EIO\",\"message\":\"write failed\\nsecond line\","         \
  "\"file\":\"db.c\",\"line\":12,\"function\":\"flush\",\"time_ns\":5,\"node_id\":7,"  \
  "\"cause\":{\"code\":-28,\"name\":\"ENOSPC\",\"message\":\"disk full\",\"file\":\"\"," \
  "\"line\":0,\"function\":\"\",\"time_ns\":4,\"node_id\":0,\"cause\":null}}"

#define NODE(id, parent, name, kind, state, outcome, extra)                            \
  "{\"id\":" #id ",\"parent_id\":" #parent ",\"name\":\"" name "\",\"kind\":\"" kind   \
  "\",\"state\":\"" state "\",\"outcome\":\"" outcome "\",\"cancel_requested\":false," \
  "\"created_ns\":100,\"created\":\"2026-11-24T16:40:00.123456789Z\","                \
  "\"live_children\":0,\"children_total\":0" extra "}"

static const char tree_json[] =
    "{\"depth\":4,\"root\":" NODE(
        1, 0, "arbor", "root", "STARTED", "NONE",
        ",\"children\":3,\"restarts\":0,\"error\":null,\"more\":7,\"nodes\":["
        NODE(2, 1, "app", "supervisor", "STARTED", "NONE",
             ",\"children\":2,\"restarts\":0,\"error\":null,\"nodes\":["
             NODE(3, 2, "web", "service", "STARTED", "NONE",
                  ",\"children\":1,\"restarts\":2,\"error\":null,\"nodes\":["
                  NODE(17, 3, "web", "process", "STARTED", "NONE",
                       ",\"children\":0,\"restarts\":0,\"error\":null,\"nodes\":[]") "]") ","
             NODE(7, 2, "cache", "service", "CREATED", "NONE",
                  ",\"children\":0,\"restarts\":0,\"error\":null,\"nodes\":[],"
                  "\"waiting_for\":{\"id\":3,\"name\":\"web\",\"state\":\"STARTING\","
                  "\"phase\":\"starting\"}") ","
             NODE(4, 2, "db", "service", "STOPPING", "NONE",
                  ",\"children\":4,\"more\":4,\"restarts\":5,\"stuck\":true,\"error\":" ERR_EIO) "]") ","
        NODE(5, 1, "clean\\u001b[31mup", "task", "FINISHED", "FAILED",
             ",\"children\":0,\"restarts\":0,\"error\":" ERR_EIO) ","
        NODE(6, 1, "x", "group", "FINISHED", "CANCELLED",
             ",\"children\":0,\"restarts\":0,\"error\":null,\"nodes\":[]") "]") "}";

static const char tree_text[] =
    "root arbor #1 STARTED\n"
    "├─ supervisor app #2 STARTED restarts=0\n"
    "│  ├─ service web #3 STARTED restarts=2\n"
    "│  │  └─ process web #17 STARTED\n"
    "│  ├─ service cache #7 CREATED restarts=0 waiting for web: STARTING\n"
    "│  └─ service db #4 STOPPING restarts=5 STUCK error: EIO: write failed\n"
    "│     └─ … 4 children below --depth\n"
    "├─ task clean?[31mup #5 FINISHED FAILED error: EIO: write failed\n"
    "├─ group x #6 FINISHED CANCELLED\n"
    "└─ … 7 more\n";

/* --------------------------------------------------------------- tree */

/* Piped (not a terminal): plain text, pstree's branches, every part of a line. */
static void ctl_tree_plain_when_piped(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add(&f, "200 OK", tree_json);
  fake_start(&f);
  run_ctl_v(&r, f.port, -1, (const char *const[]){"tree", NULL});
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_str_eq(r.out, tree_text);
  assert_str_eq(r.err, "");
  assert_request(&f, 0, "GET /api/v1/tree?depth=4 HTTP/1.1");
}

/* --color always: states and outcomes in ANSI colours; names stay defused. */
static void ctl_tree_colours_states(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add(&f, "200 OK", tree_json);
  fake_start(&f);
  run_ctl(&r, f.port, "--color", "always", "tree");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_contains(r.out, "root arbor #1 \033[32mSTARTED\033[0m\n");
  assert_contains(r.out, "#4 \033[33mSTOPPING\033[0m restarts=5 \033[1;31mSTUCK\033[0m");
  assert_contains(r.out, "\033[1;31mFAILED\033[0m");
  assert_contains(r.out, "\033[35mCANCELLED\033[0m");
  assert_null(strstr(r.out, "\033[31mup"));
}

/* --depth, --limit and a subtree's id go into the query; a snapshot the server
 * cut at its node budget says so. */
static void ctl_tree_depth_limit_root(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add(&f, "200 OK",
           "{\"depth\":2,\"limit\":10,\"count\":1000,\"truncated\":true,\"root\":" NODE(
               5, 1, "g", "group", "STARTED", "NONE",
               ",\"children\":12,\"restarts\":0,\"error\":null,\"more\":12,\"nodes\":[]") "}");
  fake_start(&f);
  run_ctl(&r, f.port, "tree", "--depth", "2", "--limit=10", "5");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_request(&f, 0, "GET /api/v1/tree?depth=2&root=5&limit=10 HTTP/1.1");
  assert_str_eq(r.out, "group g #5 STARTED\n"
                       "└─ … 12 more\n"
                       "… the server stopped at 1000 nodes: ask for less (--depth, --limit) or "
                       "for a subtree (tree ID)\n");
}

/* ------------------------------------------------------------- status */

static const char status_json[] = NODE(
    4, 2, "db", "service", "STOPPING", "NONE",
    ",\"children\":1,\"restarts\":5,\"stuck\":true,\"error\":" ERR_EIO
    ",\"started_ns\":200,\"started\":\"2026-11-24T16:40:01Z\",\"attributes\":{\"role\":\"primary\"},"
    "\"fiber\":{\"wait\":\"sleep\",\"file\":\"db.c\",\"line\":40,\"since_ns\":300,"
    "\"stack_size\":65536,\"stack_high_water\":2048},"
    "\"service\":{\"restart\":\"permanent\",\"phase\":\"running\",\"is_process\":true,"
    "\"daemon\":false,\"incarnation_id\":44,\"next_restart_ns\":0,\"last_backoff_ms\":200,"
    "\"tasks_total\":3,\"tasks_finished\":1,\"pid\":1234,\"strategy\":\"one_for_one\","
    "\"intensity\":3,\"period_ms\":5000,\"waiting_for\":{\"id\":3,\"name\":\"db\","
    "\"state\":\"STARTING\",\"phase\":\"starting\"}},"
    "\"history\":[{\"incarnation_id\":43,\"time_ns\":5,\"time\":\"2026-11-24T16:40:02Z\","
    "\"backoff_ms\":200,\"restarted\":true,\"error\":{\"code\":-10005,\"name\":\"EGROUP\","
    "\"message\":\"one or more children failed\",\"file\":\"group.c\",\"line\":3,"
    "\"function\":\"g\",\"time_ns\":1,\"node_id\":2,\"cause\":null,\"truncated\":true,"
    "\"errors_omitted\":2,\"errors\":[" ERR_EIO "]}}],\"future_field\":[1,2]");

/* Every field, the chain indented like arbor_error_format, a group's errors, the
 * fiber and service parts, the history (with what the server's error budget
 * left out), and a field this ctl does not know. */
static void ctl_status_prints_every_part(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add(&f, "200 OK", status_json);
  fake_start(&f);
  run_ctl(&r, f.port, "status", "4");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_request(&f, 0, "GET /api/v1/nodes/4 HTTP/1.1");
  assert_str_eq(r.out,
                "node 4: service db\n"
                "  parent:           2\n"
                "  state:            STOPPING\n"
                "  outcome:          NONE\n"
                "  cancel requested: no\n"
                "  stuck:            yes\n"
                "  created:          2026-11-24T16:40:00.123456789Z (monotonic 100 ns)\n"
                "  started:          2026-11-24T16:40:01Z (monotonic 200 ns)\n"
                "  children:         1 (0 live, 0 ever)\n"
                "  restarts:         5\n"
                "  future_field:     [1,2]\n"
                "attributes:\n"
                "  role = primary\n"
                "error:\n"
                "  EIO: write failed [node 7] at db.c:12 (flush)\n"
                "    caused by: ENOSPC: disk full\n"
                "fiber:\n"
                "  wait:             sleep at db.c:40 since monotonic 300 ns\n"
                "  stack:            65536 bytes, at most 2048 used\n"
                "service:\n"
                "  restart:          permanent\n"
                "  phase:            running\n"
                "  waiting for:      db: STARTING (id 3)\n"
                "  process:          yes (pid 1234)\n"
                "  daemon:           no\n"
                "  incarnation:      44\n"
                "  tasks:            3 started, 1 finished\n"
                "  backoff:          last 200 ms\n"
                "  strategy:         one_for_one, at most 3 restarts in 5000 ms\n"
                "history (newest first, 1):\n"
                "  incarnation 43 at 2026-11-24T16:40:02Z: restarted after 200 ms\n"
                "    EGROUP: one or more children failed [node 2] at group.c:3 (g)\n"
                "      child 1 of 3: EIO: write failed [node 7] at db.c:12 (flush)\n"
                "        caused by: ENOSPC: disk full\n"
                "      … 2 more left out by the server\n"
                "      caused by: … (left out by the server)\n");
}

/* A service's probes: one line each (kind, target, verdict, failures in a row,
 * the last error) and whether it is ready. */
static void ctl_status_prints_probes(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add(&f, "200 OK",
           "{\"id\":5,\"parent_id\":2,\"name\":\"api\",\"kind\":\"service\","
           "\"state\":\"STARTED\",\"outcome\":\"NONE\",\"cancel_requested\":false,"
           "\"stuck\":false,\"service\":{\"restart\":\"permanent\",\"phase\":\"running\","
           "\"is_process\":false,\"daemon\":false,\"incarnation_id\":9,"
           "\"next_restart_ns\":0,\"last_backoff_ms\":0,\"tasks_total\":0,"
           "\"tasks_finished\":0,\"pid\":0,\"waiting_for\":null,\"ready\":false,"
           "\"probes\":{\"liveness\":null,\"readiness\":{\"kind\":\"http\","
           "\"target\":\"http://127.0.0.1:8080/healthz\",\"active\":true,\"passing\":false,"
           "\"failures_in_row\":3,\"successes_in_row\":0,\"successes\":10,\"failures\":3,"
           "\"timeouts\":0,\"last_error\":{\"code\":-10012,\"name\":\"EPROBE\","
           "\"message\":\"HTTP GET http://127.0.0.1:8080/healthz: status 503\"},"
           "\"interval_ms\":1000,\"timeout_ms\":1000,\"failure_threshold\":3,"
           "\"success_threshold\":1,\"initial_delay_ms\":0}}},\"history\":[]}");
  fake_start(&f);
  run_ctl(&r, f.port, "status", "5");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_non_null(strstr(r.out, "  readiness probe:  http http://127.0.0.1:8080/healthz every "
                                "1000 ms: not ready, 3 failures in a row (of 3), 10 passed, 3 "
                                "failed; last error: HTTP GET http://127.0.0.1:8080/healthz: "
                                "status 503\n"
                                "  ready:            no\n"));
  assert_null(strstr(r.out, "liveness"));
  assert_null(strstr(r.out, "probes:"));   /* not printed again as an unknown field */
}

/* A process service's usage and memory limit: one readable line each, in
 * binary units, not the raw JSON; null ones print nothing. */
static void ctl_status_prints_usage_and_memory_limit(void **state) {
  struct fake f = {0};
  struct run r1, r2;
  static const char head[] =
      "{\"id\":6,\"parent_id\":2,\"name\":\"api\",\"kind\":\"service\","
      "\"state\":\"STARTED\",\"outcome\":\"NONE\",\"cancel_requested\":false,"
      "\"stuck\":false,\"service\":{\"restart\":\"permanent\",\"phase\":\"running\","
      "\"is_process\":true,\"daemon\":false,\"incarnation_id\":9,"
      "\"next_restart_ns\":0,\"last_backoff_ms\":0,\"tasks_total\":0,"
      "\"tasks_finished\":0,\"pid\":4242,\"waiting_for\":null,\"ready\":true,"
      "\"probes\":{\"liveness\":null,\"readiness\":null},";
  char with[2048], without[2048];
  snprintf(with, sizeof with, "%s%s", head,
           "\"usage\":{\"cpu_seconds\":1.52,\"cpu_percent\":3.14,\"rss_bytes\":40160000,"
           "\"open_fds\":8,\"threads\":3,\"processes\":2,\"partial\":false},"
           "\"memory_limit\":{\"max_memory\":16777216,\"max_memory_for_ms\":500,"
           "\"check_ms\":100,\"readings\":45,\"rss_bytes\":12688179,\"processes\":2,"
           "\"over_ms\":0,\"exceeded\":2}}}");
  snprintf(without, sizeof without, "%s%s", head, "\"usage\":null,\"memory_limit\":null}}");
  fake_add(&f, "200 OK", with);
  fake_add(&f, "200 OK", without);
  fake_start(&f);
  run_ctl(&r1, f.port, "status", "6");
  run_ctl(&r2, f.port, "status", "6");
  fake_stop(&f);
  assert_int_eq(r1.status, ARBOR_CTL_OK);
  assert_non_null(strstr(r1.out, "  process:          yes (pid 4242)\n"
                                 "  usage:            38.3 MiB RSS, CPU 1.52 s (3.1 %), 8 fds, "
                                 "3 threads, 2 processes\n"
                                 "  memory limit:     16.0 MiB for 500 ms: last reading 12.1 MiB "
                                 "of 2 processes, 45 readings every 100 ms; runs ended by it: "
                                 "2\n"));
  assert_null(strstr(r1.out, "rss_bytes"));   /* not printed again as raw JSON */
  assert_int_eq(r2.status, ARBOR_CTL_OK);
  assert_null(strstr(r2.out, "usage"));
  assert_null(strstr(r2.out, "memory"));
}

/* ---------------------------------------------------- cancel, restart */

static void ctl_cancel_and_restart_print_202(void **state) {
  struct fake f = {0};
  struct run r1, r2;
  fake_add(&f, "202 Accepted", "{\"id\":6,\"state\":\"STOPPING\",\"cancel_requested\":true}");
  fake_add(&f, "202 Accepted", "{\"id\":3,\"restarts\":3}");
  fake_start(&f);
  run_ctl(&r1, f.port, "cancel", "6");
  run_ctl(&r2, f.port, "restart", "3");
  fake_stop(&f);
  assert_int_eq(r1.status, ARBOR_CTL_OK);
  assert_str_eq(r1.out, "node 6: cancel requested (STOPPING)\n");
  assert_int_eq(r2.status, ARBOR_CTL_OK);
  assert_str_eq(r2.out, "node 3: restart requested (restarts 3)\n");
  assert_request(&f, 0, "POST /api/v1/nodes/6/cancel HTTP/1.1");
  assert_request(&f, 1, "POST /api/v1/nodes/3/restart HTTP/1.1");
}

/* ------------------------------------------------ add, update, remove */

/* Each sends its spec file (or stdin) as the JSON body to the right method and
 * path and prints the answer in one line; a refusal quotes the server. */
static void ctl_add_update_remove_send_the_spec(void **state) {
  struct fake f = {0};
  struct run r1, r2, r3, r4, r5;
  char spec[64];
  snprintf(spec, sizeof spec, "/tmp/arbor-ctl-spec-%d.json", (int)getpid());
  FILE *sf = fopen(spec, "w");
  assert_non_null(sf);
  fputs("{\"service\": \"worker\", \"argv\": [\"w\"]}", sf);
  fclose(sf);
  fake_add(&f, "201 Created", "{\"id\":42,\"name\":\"worker\"}");
  fake_add(&f, "202 Accepted", "{\"id\":42,\"name\":\"worker\",\"restarted\":true}");
  fake_add(&f, "200 OK", "{\"id\":42,\"name\":\"worker\",\"restarted\":false}");
  fake_add(&f, "202 Accepted", "{\"id\":42,\"name\":\"worker\",\"cancel_requested\":true}");
  fake_add(&f, "400 Bad Request",
           "{\"error\":{\"code\":\"bad_spec\",\"message\":\"body: argv: expected a "
           "non-empty array of strings\"}}");
  fake_start(&f);
  run_ctl(&r1, f.port, "add", spec);
  run_ctl(&r2, f.port, "update", "worker", spec);
  run_ctl(&r3, f.port, "update", "worker", spec);
  run_ctl(&r4, f.port, "remove", "worker");
  run_ctl(&r5, f.port, "add", spec);
  fake_stop(&f);
  unlink(spec);
  assert_int_eq(r1.status, ARBOR_CTL_OK);
  assert_str_eq(r1.out, "service worker added (id 42)\n");
  assert_request(&f, 0, "POST /api/v1/services HTTP/1.1");
  assert_contains(f.requests[0], "Content-Type: application/json\r\n");
  assert_contains(f.requests[0], "Content-Length: 36\r\n");
  assert_int_eq(r2.status, ARBOR_CTL_OK);
  assert_str_eq(r2.out, "service worker: restarting with the new spec (id 42)\n");
  assert_request(&f, 1, "PUT /api/v1/services/worker HTTP/1.1");
  assert_int_eq(r3.status, ARBOR_CTL_OK);
  assert_str_eq(r3.out, "service worker: unchanged, not restarted (id 42)\n");
  assert_int_eq(r4.status, ARBOR_CTL_OK);
  assert_str_eq(r4.out, "service worker: removing (id 42)\n");
  assert_request(&f, 3, "DELETE /api/v1/services/worker HTTP/1.1");
  assert_null(strstr(f.requests[3], "Content-Type"));
  assert_int_eq(r5.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r5.err, "arbor ctl: add: bad spec (400): body: argv: expected a non-empty "
                        "array of strings\n");
}

/* Wrong command lines never reach the server: exit 2. */
static void ctl_service_usage_errors_exit_2(void **state) {
  struct run r;
  run_ctl(&r, 1, "add");
  assert_int_eq(r.status, ARBOR_CTL_USAGE);
  assert_contains(r.err, "add: which spec? give a file, or - for stdin");
  run_ctl(&r, 1, "add", "/nonexistent/spec.json");
  assert_int_eq(r.status, ARBOR_CTL_USAGE);
  assert_contains(r.err, "add: cannot read /nonexistent/spec.json");
  run_ctl(&r, 1, "update", "a/b", "-");
  assert_int_eq(r.status, ARBOR_CTL_USAGE);
  assert_contains(r.err, "update: bad service name 'a/b'");
  run_ctl(&r, 1, "update", "web");
  assert_int_eq(r.status, ARBOR_CTL_USAGE);
  run_ctl(&r, 1, "remove");
  assert_int_eq(r.status, ARBOR_CTL_USAGE);
  assert_contains(r.err, "remove: which service? give its name");
  run_ctl(&r, 1, "remove", "web", "db");
  assert_int_eq(r.status, ARBOR_CTL_USAGE);
  assert_contains(r.err, "remove: unexpected 'db'");
}

/* ----------------------------------------------------------- refusals */

/* 404 on a node: the code says it; 409 and 400: the server's message; exit 1. */
static void ctl_refusals_quote_the_server(void **state) {
  struct fake f = {0};
  struct run r1, r2, r3;
  fake_add(&f, "404 Not Found", "{\"error\":{\"code\":\"not_found\",\"message\":\"no node 99\"}}");
  fake_add(&f, "409 Conflict",
           "{\"error\":{\"code\":\"finished\",\"message\":\"node 6 has finished\"}}");
  fake_add(&f, "400 Bad Request",
           "{\"error\":{\"code\":\"not_a_service\",\"message\":\"node 5 is a task\"}}");
  fake_start(&f);
  run_ctl(&r1, f.port, "status", "99");
  run_ctl(&r2, f.port, "cancel", "6");
  run_ctl(&r3, f.port, "restart", "5");
  fake_stop(&f);
  assert_int_eq(r1.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r1.err, "arbor ctl: node 99: not found (404)\n");
  assert_str_eq(r1.out, "");
  assert_int_eq(r2.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r2.err, "arbor ctl: node 6: finished (409): node 6 has finished\n");
  assert_int_eq(r3.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r3.err, "arbor ctl: node 5: not a service (400): node 5 is a task\n");
}

/* 401 says what to do: no token -> set one; 403: a token -> it was refused. The token
 * goes out as a bearer token. */
static void ctl_unauthorized_with_and_without_token(void **state) {
  static const char body[] = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"token\"}}";
  struct fake f = {0};
  struct run r1, r2;
  fake_add(&f, "401 Unauthorized", body);
  fake_add(&f, "403 Forbidden", body);
  fake_start(&f);
  unsetenv("ARBOR_TOKEN");
  unsetenv("ARBOR_TOKEN_FILE");
  run_ctl(&r1, f.port, "cancel", "3");
  run_ctl(&r2, f.port, "--token", "s3cret", "cancel", "3");
  fake_stop(&f);
  assert_int_eq(r1.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r1.err, "arbor ctl: unauthorized (401): set --token or ARBOR_TOKEN\n");
  assert_null(strstr(f.requests[0], "Authorization"));
  assert_int_eq(r2.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r2.err,
                "arbor ctl: forbidden (403): the server refused the token from --token\n");
  assert_contains(f.requests[1], "\r\nAuthorization: Bearer s3cret\r\n");
}

/* A body that is not the error shape still ends in one line, exit 1. */
static void ctl_unexpected_answer(void **state) {
  struct fake f = {0};
  struct run r1, r2;
  fake_add(&f, "502 Bad Gateway", "<html>proxy</html>");
  fake_add(&f, "200 OK", "not json");
  fake_start(&f);
  run_ctl(&r1, f.port, "tree");
  run_ctl(&r2, f.port, "tree");
  fake_stop(&f);
  assert_int_eq(r1.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r1.err, "arbor ctl: tree: unexpected answer (HTTP 502)\n");
  assert_int_eq(r2.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r2.err, "arbor ctl: tree: the server's answer is not the expected JSON\n");
}

/* A closed port: exit 3 and the reason in one line. */
static void ctl_connection_refused_exit_3(void **state) {
  struct run r;
  int port, fd = listen_loopback(&port);
  char want[128];
  close(fd);                        /* nobody listens there now */
  run_ctl(&r, port, "tree");
  assert_int_eq(r.status, ARBOR_CTL_CONNECT);
  snprintf(want, sizeof want,
           "arbor ctl: cannot connect to http://127.0.0.1:%d: Connection refused\n", port);
  assert_str_eq(r.err, want);
  assert_str_eq(r.out, "");
}

/* Bad command lines: exit 2, one line, nothing sent. */
static void ctl_usage_errors_exit_2(void **state) {
  static const char *const cases[][4] = {
      {NULL},
      {"frobnicate", NULL},
      {"status", NULL},
      {"status", "12x", NULL},
      {"status", "1", "2", NULL},
      {"tree", "--depth", "65", NULL},
      {"tree", "--depth", NULL},
      {"trace", NULL},
      {"trace", "--format", "json", NULL},
      {"events", "-n", "0", NULL},
      {"log", "3", "-x", NULL},
      {"--color", "sometimes", "tree", NULL},
      {"--bogus", "tree", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct run r;
    run_ctl_v(&r, 1, 0, cases[i]);
    if (r.status != ARBOR_CTL_USAGE || strncmp(r.err, "arbor ctl: ", 11) != 0 ||
        strchr(r.err, '\n') != r.err + strlen(r.err) - 1) {
      print_error("case %zu (%s): status %d, err: %s\n", i, cases[i][0] ? cases[i][0] : "-",
                  r.status, r.err);
      _fail(__FILE__, __LINE__);
    }
  }
  struct run r;
  run_ctl_v(&r, 0, 0, (const char *const[]){"--url", "ftp://x", "tree", NULL});
  assert_int_eq(r.status, ARBOR_CTL_USAGE);
  run_ctl_v(&r, 0, 0, (const char *const[]){"help", NULL});
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_contains(r.out, "usage: arbor ctl");
}

/* ARBOR_URL and ARBOR_TOKEN_FILE when there are no flags; --token wins. */
static void ctl_address_and_token_from_environment(void **state) {
  struct fake f = {0};
  struct run r1, r2;
  char url[64], path[] = "/tmp/arbor-ctl-token-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_eq(write(fd, "from-file\nsecond line\n", 22), 22);
  close(fd);
  fake_add(&f, "200 OK", tree_json);
  fake_add(&f, "200 OK", tree_json);
  fake_start(&f);
  snprintf(url, sizeof url, "127.0.0.1:%d/", f.port);
  setenv("ARBOR_URL", url, 1);
  unsetenv("ARBOR_TOKEN");
  setenv("ARBOR_TOKEN_FILE", path, 1);
  run_ctl_v(&r1, 0, 0, (const char *const[]){"tree", NULL});
  run_ctl_v(&r2, 0, 0, (const char *const[]){"--token", "flag", "tree", NULL});
  unsetenv("ARBOR_URL");
  unsetenv("ARBOR_TOKEN_FILE");
  unlink(path);
  fake_stop(&f);
  assert_int_eq(r1.status, ARBOR_CTL_OK);
  assert_int_eq(r2.status, ARBOR_CTL_OK);
  assert_request(&f, 0, "GET /api/v1/tree?depth=4 HTTP/1.1");
  assert_contains(f.requests[0], "\r\nAuthorization: Bearer from-file\r\n");
  assert_contains(f.requests[1], "\r\nAuthorization: Bearer flag\r\n");
}

/* ------------------------------------------------------------- events */

#define EVENT(seq, type, extra)                                                        \
  "id: " #seq "\nevent: " type "\ndata: {\"seq\":" #seq ",\"time_ns\":5,"               \
  "\"time\":\"2026-11-24T16:40:00.5Z\",\"node_id\":3,\"parent_id\":2,\"type\":\"" type   \
  "\",\"kind\":\"service\"" extra "}\n\n"

/* One line per event, heartbeats ignored; a dropped stream is resumed with
 * Last-Event-ID; the gap event gets its line; -n stops after N events. */
static void ctl_events_follow_gap_and_resume(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add_stream(&f, ": heartbeat\n\n" EVENT(41, "state",
                                              ",\"from\":\"STARTING\",\"to\":\"STARTED\","
                                              "\"error\":null")
                      EVENT(42, "failed", ",\"from\":null,\"to\":null,\"error\":" ERR_EIO));
  /* CRLF line ends, and a data field split over two lines */
  fake_add_stream(&f, "event: gap\r\ndata: {\"missed\":3,\r\ndata: \"next_seq\":46}\r\n\r\n"
                      "id: 46\r\nevent: restart\r\ndata: {\"seq\":46,\"time\":\"T\","
                      "\"node_id\":3,\"type\":\"restart\",\"kind\":\"service\"}\r\n\r\n"
                      "id: 47\r\nevent: restart\r\ndata: {\"seq\":47}\r\n\r\n");
  fake_start(&f);
  run_ctl(&r, f.port, "events", "-n", "3");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_str_eq(r.out,
                "2026-11-24T16:40:00.5Z #41 state service #3 (parent #2) STARTING -> STARTED\n"
                "2026-11-24T16:40:00.5Z #42 failed service #3 (parent #2) error: EIO: write "
                "failed\n"
                "-- gap: 3 events missed, resuming at #46\n"
                "T #46 restart service #3\n");
  assert_str_eq(r.err, "arbor ctl: events: stream ended; reconnecting after #42\n");
  assert_request(&f, 0, "GET /api/v1/events HTTP/1.1");
  assert_null(strstr(f.requests[0], "Last-Event-ID"));
  assert_contains(f.requests[0], "\r\nAccept: text/event-stream\r\n");
  assert_request(&f, 1, "GET /api/v1/events HTTP/1.1");
  assert_contains(f.requests[1], "\r\nLast-Event-ID: 42\r\n");
}

/* --after starts there; when the server is gone for good, ctl gives up after its
 * reconnect attempts with status 3 and one line. */
static void ctl_events_gives_up_when_server_is_gone(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add_stream(&f, EVENT(8, "cancel", ",\"error\":null"));
  fake_start(&f);
  run_ctl(&r, f.port, "events", "--after", "7");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_CONNECT);
  assert_str_eq(r.out, "2026-11-24T16:40:00.5Z #8 cancel service #3 (parent #2)\n");
  assert_request(&f, 0, "GET /api/v1/events?after=7 HTTP/1.1");
  assert_contains(r.err, "arbor ctl: events: stream ended; reconnecting after #8\n");
  assert_contains(r.err, "arbor ctl: events: gave up after 3 attempts: ");
}

/* ---------------------------------------------------------------- log */

/* Pages are read until next_offset reaches size; missed bytes are told on
 * stderr; the output itself is written as is. */
static void ctl_log_reads_every_page(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add(&f, "200 OK",
           "{\"offset\":0,\"next_offset\":106,\"missed\":100,\"size\":112,\"data\":\"hello\\n\"}");
  fake_add(&f, "200 OK",
           "{\"offset\":106,\"next_offset\":112,\"missed\":0,\"size\":112,\"data\":\"\\u001b[1mworld\"}");
  fake_start(&f);
  run_ctl(&r, f.port, "log", "17");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_str_eq(r.out, "hello\n\033[1mworld");
  assert_str_eq(r.err, "arbor ctl: log: node 17: 100 bytes overwritten before they were read\n");
  assert_request(&f, 0, "GET /api/v1/nodes/17/log?offset=0 HTTP/1.1");
  assert_request(&f, 1, "GET /api/v1/nodes/17/log?offset=106 HTTP/1.1");
}

static void ctl_log_of_a_task_is_refused(void **state) {
  struct fake f = {0};
  struct run r;
  fake_add(&f, "400 Bad Request",
           "{\"error\":{\"code\":\"not_a_process\",\"message\":\"node 5 is a task\"}}");
  fake_start(&f);
  run_ctl(&r, f.port, "log", "5");
  fake_stop(&f);
  assert_int_eq(r.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r.err, "arbor ctl: node 5: not a process (400): node 5 is a task\n");
}

/* -------------------------------------------------------------- trace */

static void ctl_trace_writes_export_or_says_missing(void **state) {
  struct fake f = {0};
  struct run r1, r2;
  fake_add(&f, "200 OK", "{\"traceEvents\":[]}");
  fake_add(&f, "404 Not Found", "{\"error\":{\"code\":\"not_found\",\"message\":\"no route\"}}");
  fake_start(&f);
  run_ctl(&r1, f.port, "trace", "--format", "chrome");
  run_ctl(&r2, f.port, "trace", "--format=otlp");
  fake_stop(&f);
  assert_int_eq(r1.status, ARBOR_CTL_OK);
  assert_str_eq(r1.out, "{\"traceEvents\":[]}");
  assert_request(&f, 0, "GET /api/v1/trace?format=chrome HTTP/1.1");
  assert_int_eq(r2.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r2.out, "");
  assert_contains(r2.err, "arbor ctl: trace: this server has no trace export (404)");
  assert_request(&f, 1, "GET /api/v1/trace?format=otlp HTTP/1.1");
}


/* -------------------------------------------------------- live server
 *
 * A real runtime with the admin server on a free port. The loop runs on this
 * thread (every handler runs there); ctl, synchronous, on a second thread, which
 * wakes the loop through an async handle when it is done.
 */

#define HOUR (3600u * 1000u)

struct live {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  int port;
  uv_async_t done_async;
  int ctl_done;                     /* set on the loop thread */
  arbor_node_t *sup, *web, *flaky, *echo, *sleeper;
  uint64_t web_id, flaky_id, echo_id, sleeper_id;
};

struct live_job {
  struct live *l;
  const char *const *args;
  struct run *r;
  int rc;
};

static void live_done_cb(uv_async_t *a) { ((struct live *)a->data)->ctl_done = 1; }

static void *live_thread(void *arg) {
  struct live_job *j = arg;
  j->rc = ctl_capture(j->r, j->l->port, -1, j->args);
  uv_async_send(&j->l->done_async);
  return NULL;
}

/* Runs ctl on its thread while this one runs the loop. */
static void live_ctl_v(struct live *l, struct run *r, const char *const *args) {
  struct live_job j = {l, args, r, 0};
  pthread_t t;
  l->ctl_done = 0;
  assert_int_eq(pthread_create(&t, NULL, live_thread, &j), 0);
  while (!l->ctl_done)
    uv_run(&l->loop, UV_RUN_ONCE);
  assert_int_eq(pthread_join(t, NULL), 0);
  assert_int_eq(j.rc, 0);
}

#define live_ctl(l, r, ...) live_ctl_v((l), (r), (const char *const[]){__VA_ARGS__, NULL})

static int body_forever(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, HOUR);
}

static int body_fails(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  arbor_error_t *inner = arbor_error_new(-ENOSPC, "disk full");
  return arbor_fiber_fail_error(cx, arbor_error_wrap(inner, -EIO, "flush failed"));
}

static void tick_cb(uv_timer_t *t) { (void)t; }

/* Loop passes with a 1 ms timer until cond holds (a program needs time to run). */
#define live_run_until(l, cond)                                                        \
  do {                                                                                 \
    uv_timer_t tick_;                                                                  \
    int k_, held_ = 0;                                                                 \
    assert_int_eq(uv_timer_init(&(l)->loop, &tick_), 0);                               \
    assert_int_eq(uv_timer_start(&tick_, tick_cb, 1, 1), 0);                           \
    for (k_ = 0; k_ < 20000 && !(held_ = (cond)); k_++)                                \
      uv_run(&(l)->loop, UV_RUN_ONCE);                                                 \
    uv_close((uv_handle_t *)&tick_, NULL);                                             \
    uv_run(&(l)->loop, UV_RUN_NOWAIT);                                                 \
    if (!held_) {                                                                      \
      print_error("condition never held: %s\n", #cond);                               \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* Whether the process service has written its line yet. */
static int echo_said_hello(struct live *l) {
  char buf[256];
  uint64_t offset = 0, missed = 0;
  int n = arbor_service_log_read(l->echo, &offset, buf, sizeof buf - 1, &missed);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  return strstr(buf, "hello from echo") != NULL;
}

/* root ── supervisor app ── service web (sleeps), service flaky (fails once,
 *      │                    temporary), process service echo (prints, sleeps)
 *      └─ fiber sleeper
 * all up, flaky failed, echo's line captured. token: the admin's, or NULL. */
static void live_open(struct live *l, const char *token) {
  static char *const echo_argv[] = {"/bin/sh", "-c", "echo hello from echo; exec sleep 3600",
                                    NULL};
  arbor_runtime_opts_t opts = {0};
  arbor_admin_opts_t admin_opts = {0};
  arbor_sup_opts_t sup_opts = {0};
  arbor_service_spec_t web = {0}, flaky = {0}, echo = {0};
  arbor_fiber_spec_t sleeper = {0};

  memset(l, 0, sizeof *l);
  opts.no_signals = 1;
  arbor_test_open(&l->loop, &l->rt, &opts);
  admin_opts.token = token;
  assert_code(arbor_admin_start(l->rt, &admin_opts, &l->admin), 0);
  l->port = arbor_admin_port(l->admin);
  assert_true(l->port > 0);
  assert_int_eq(uv_async_init(&l->loop, &l->done_async, live_done_cb), 0);
  l->done_async.data = l;

  sup_opts.name = "app";
  assert_code(arbor_supervisor_new(arbor_root(l->rt), &sup_opts, &l->sup), 0);
  web.name = "web";
  web.fiber = body_forever;
  assert_code(arbor_service_add(l->sup, &web, &l->web), 0);
  flaky.name = "flaky";
  flaky.fiber = body_fails;
  flaky.restart = ARBOR_TEMPORARY;
  assert_code(arbor_service_add(l->sup, &flaky, &l->flaky), 0);
  echo.name = "echo";
  echo.argv = echo_argv;
  assert_code(arbor_service_add(l->sup, &echo, &l->echo), 0);
  sleeper.name = "sleeper";
  sleeper.fn = body_forever;
  assert_code(arbor_fiber_spawn(arbor_root(l->rt), &sleeper, &l->sleeper), 0);
  l->web_id = arbor_node_id(l->web);
  l->flaky_id = arbor_node_id(l->flaky);
  l->echo_id = arbor_node_id(l->echo);
  l->sleeper_id = arbor_node_id(l->sleeper);
  live_run_until(l, arbor_node_state(l->sup) == ARBOR_STATE_STARTED &&
                        arbor_node_state(l->sleeper) == ARBOR_STATE_STARTED &&
                        arbor_service_did_error(l->flaky) && echo_said_hello(l));
}

/* The admin server closes with the runtime. */
static void live_close(struct live *l) {
  uv_close((uv_handle_t *)&l->done_async, NULL);
  arbor_test_close(l->rt, &l->loop);
}

/* tree and status of the real server: plain text when piped, the failed
 * service's chain; then cancel (202, the node ends CANCELLED), restart (the
 * same id, restarts + 1) and the refusals (404, 409, 400) with exit 1. */
static void live_tree_status_cancel_restart(void **state) {
  struct live l;
  struct run r;
  char want[160];
  arbor_node_info_t info;

  live_open(&l, NULL);
  live_ctl(&l, &r, "tree");
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_str_eq(r.err, "");
  assert_null(strchr(r.out, '\033'));
  assert_contains(r.out, "├─ supervisor app #");
  snprintf(want, sizeof want, "service web #%llu STARTED restarts=0\n",
           (unsigned long long)l.web_id);
  assert_contains(r.out, want);
  snprintf(want, sizeof want, "service flaky #%llu ", (unsigned long long)l.flaky_id);
  assert_contains(r.out, want);
  assert_contains(r.out, "error: EIO: flush failed\n");
  snprintf(want, sizeof want, "└─ task sleeper #%llu STARTED\n", (unsigned long long)l.sleeper_id);
  assert_contains(r.out, want);

  snprintf(want, sizeof want, "%llu", (unsigned long long)l.flaky_id);
  live_ctl(&l, &r, "status", want);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_contains(r.out, "error:\n  EIO: flush failed [node ");
  assert_contains(r.out, "    caused by: ENOSPC: disk full");
  assert_contains(r.out, "service:\n  restart:          temporary\n");

  snprintf(want, sizeof want, "%llu", (unsigned long long)l.web_id);
  live_ctl(&l, &r, "restart", want);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  snprintf(want, sizeof want, "node %llu: restart requested (restarts ",
           (unsigned long long)l.web_id);
  assert_contains(r.out, want);
  live_run_until(&l, (arbor_node_info(l.web, &info), info.restarts == 1) &&
                         arbor_node_state(l.web) == ARBOR_STATE_STARTED);
  snprintf(want, sizeof want, "%llu", (unsigned long long)l.web_id);
  live_ctl(&l, &r, "status", want);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_contains(r.out, "  state:            STARTED\n");
  assert_contains(r.out, "  restarts:         1\n");

  snprintf(want, sizeof want, "%llu", (unsigned long long)l.sleeper_id);
  live_ctl(&l, &r, "cancel", want);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_contains(r.out, "cancel requested (");
  live_run_until(&l, arbor_node_state(l.sleeper) == ARBOR_STATE_FINISHED);
  assert_outcome(l.sleeper, CANCELLED);

  live_ctl(&l, &r, "cancel", want);   /* finished now */
  assert_int_eq(r.status, ARBOR_CTL_REFUSED);
  snprintf(want, sizeof want, "arbor ctl: node %llu: finished (409)",
           (unsigned long long)l.sleeper_id);
  assert_contains(r.err, want);
  snprintf(want, sizeof want, "%llu", (unsigned long long)l.sleeper_id);
  live_ctl(&l, &r, "restart", want);
  assert_int_eq(r.status, ARBOR_CTL_REFUSED);
  assert_contains(r.err, ": not a service (400)");
  live_ctl(&l, &r, "status", "999999");
  assert_int_eq(r.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r.err, "arbor ctl: node 999999: not found (404)\n");
  live_close(&l);
}

/* With a token configured, a mutation without it is refused (401, exit 1), one
 * with a wrong one too (403, exit 1), and one with it goes through; reading needs none. */
static void live_token_guards_mutations(void **state) {
  struct live l;
  struct run r;
  char id[32];

  unsetenv("ARBOR_TOKEN");
  unsetenv("ARBOR_TOKEN_FILE");
  live_open(&l, "s3cret");
  snprintf(id, sizeof id, "%llu", (unsigned long long)l.sleeper_id);
  live_ctl(&l, &r, "cancel", id);
  assert_int_eq(r.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r.err, "arbor ctl: unauthorized (401): set --token or ARBOR_TOKEN\n");
  live_ctl(&l, &r, "--token", "wrong", "cancel", id);
  assert_int_eq(r.status, ARBOR_CTL_REFUSED);
  assert_str_eq(r.err, "arbor ctl: forbidden (403): the server refused the token from --token\n");
  assert_state(l.sleeper, STARTED);
  live_ctl(&l, &r, "tree", "--depth", "1");
  assert_int_eq(r.status, ARBOR_CTL_OK);
  live_ctl(&l, &r, "--token", "s3cret", "cancel", id);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  live_run_until(&l, arbor_node_state(l.sleeper) == ARBOR_STATE_FINISHED);
  assert_outcome(l.sleeper, CANCELLED);
  live_close(&l);
}

/* events from the start of the ring (--after 0), -n stops; log prints the
 * process service's output, and refuses a node that is not one. */
static void live_events_and_log(void **state) {
  struct live l;
  struct run r;
  char id[32];

  live_open(&l, NULL);
  live_ctl(&l, &r, "events", "--after", "0", "-n", "3");
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_str_eq(r.err, "");
  assert_contains(r.out, " #1 created ");
  assert_contains(r.out, " #3 ");
  assert_null(strstr(r.out, " #4 "));

  snprintf(id, sizeof id, "%llu", (unsigned long long)l.echo_id);
  live_ctl(&l, &r, "log", id);
  assert_int_eq(r.status, ARBOR_CTL_OK);
  assert_str_eq(r.out, "hello from echo\n");
  snprintf(id, sizeof id, "%llu", (unsigned long long)l.web_id);
  live_ctl(&l, &r, "log", id);
  assert_int_eq(r.status, ARBOR_CTL_REFUSED);
  assert_contains(r.err, ": not a process (400)");
  live_close(&l);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(ctl_tree_plain_when_piped),
    cmocka_unit_test(ctl_tree_colours_states),
    cmocka_unit_test(ctl_tree_depth_limit_root),
    cmocka_unit_test(ctl_status_prints_every_part),
    cmocka_unit_test(ctl_status_prints_probes),
    cmocka_unit_test(ctl_status_prints_usage_and_memory_limit),
    cmocka_unit_test(ctl_cancel_and_restart_print_202),
    cmocka_unit_test(ctl_add_update_remove_send_the_spec),
    cmocka_unit_test(ctl_service_usage_errors_exit_2),
    cmocka_unit_test(ctl_refusals_quote_the_server),
    cmocka_unit_test(ctl_unauthorized_with_and_without_token),
    cmocka_unit_test(ctl_unexpected_answer),
    cmocka_unit_test(ctl_connection_refused_exit_3),
    cmocka_unit_test(ctl_usage_errors_exit_2),
    cmocka_unit_test(ctl_address_and_token_from_environment),
    cmocka_unit_test(ctl_events_follow_gap_and_resume),
    cmocka_unit_test(ctl_events_gives_up_when_server_is_gone),
    cmocka_unit_test(ctl_log_reads_every_page),
    cmocka_unit_test(ctl_log_of_a_task_is_refused),
    cmocka_unit_test(ctl_trace_writes_export_or_says_missing),
    cmocka_unit_test(live_tree_status_cancel_restart),
    cmocka_unit_test(live_token_guards_mutations),
    cmocka_unit_test(live_events_and_log),
};

ARBOR_TEST_MAIN(tests)
