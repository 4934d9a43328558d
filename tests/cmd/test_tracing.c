/* tests/cmd/test_tracing.c - the daemon's traces as an operator gets them:
 * --trace-out at shutdown, SIGUSR1 on demand, otlp_endpoint pushing spans to a
 * collector (a small HTTP receiver in a thread of this test), and the config
 * and command-line checks of those options. */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbor_proc.h"

static void start_args(struct arbor_proc *p, const char *config, char **extra) {
  arbor_proc_write(p, "arbor.json", config);
  char *argv[16] = {"arbor", "run", "arbor.json", "--port", "0"};
  size_t n = 5;
  for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  arbor_proc_start(p, argv, NULL);
  if (arbor_proc_read_url(p) < 0) {
    char *err = arbor_proc_read(p, "stderr");
    print_error("arbor printed no URL; stderr:\n%s\n", err != NULL ? err : "");
    free(err);
    fail();
  }
}

/* {"service_name": "edge", <more>"tree": [{"service": "web", ...}]} */
static char *config_with(struct arbor_proc *p, const char *more) {
  char *json = NULL;
  if (asprintf(&json,
               "{\"admin\": {\"port\": 0}, \"service_name\": \"edge\", %s"
               "\"tree\": [{\"service\": \"web\", \"argv\": %s}]}\n",
               more != NULL ? more : "", arbor_proc_service_argv(p, "web", NULL)) < 0)
    fail();
  return json;
}

static cJSON *read_json(struct arbor_proc *p, const char *name) {
  char *text = arbor_proc_read(p, name);
  assert_non_null(text);
  cJSON *j = cJSON_Parse(text);
  if (j == NULL)
    fail_msg("%s is not JSON: %.200s", name, text);
  free(text);
  return j;
}

static const char *service_name_of(cJSON *otlp) {
  cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(otlp, "resourceSpans"), 0);
  cJSON *attrs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rs, "resource"),
                                                  "attributes");
  cJSON *a;
  cJSON_ArrayForEach(a, attrs) {
    if (strcmp(cJSON_GetObjectItemCaseSensitive(a, "key")->valuestring, "service.name") == 0)
      return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "value"),
                                              "stringValue")
          ->valuestring;
  }
  return NULL;
}

/* A Chrome trace with a FINISHED slice for the service "web". */
static int chrome_has_finished(cJSON *doc, const char *name) {
  cJSON *ev;
  cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(doc, "traceEvents")) {
    cJSON *n = cJSON_GetObjectItemCaseSensitive(ev, "name");
    cJSON *ph = cJSON_GetObjectItemCaseSensitive(ev, "ph");
    cJSON *args = cJSON_GetObjectItemCaseSensitive(ev, "args");
    cJSON *st = args != NULL ? cJSON_GetObjectItemCaseSensitive(args, "state") : NULL;
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 && strcmp(ph->valuestring, "X") == 0 &&
        cJSON_IsString(st) && strcmp(st->valuestring, "FINISHED") == 0)
      return 1;
  }
  return 0;
}

/* Nothing recorded is lost: at shutdown the whole tree, every node FINISHED,
 * goes to --trace-out, written whole (no .tmp left behind). */
static void daemon_trace_out_written_whole_at_shutdown(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *cfg = config_with(&p, NULL);
  char out[256];
  snprintf(out, sizeof out, "%s/trace.json", p.dir);
  char *extra[] = {"--trace-out", out, NULL};
  start_args(&p, cfg, extra);
  free(cfg);
  arbor_proc_wait_text(&p, "stderr", "arbor: ready");
  struct stat st;
  assert_int_eq(stat(out, &st), -1);     /* not before shutdown */
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  cJSON *doc = read_json(&p, "trace.json");
  assert_true(chrome_has_finished(doc, "web"));
  assert_true(chrome_has_finished(doc, "web#1"));
  cJSON_Delete(doc);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", out);
  assert_int_eq(stat(tmp, &st), -1);
  char *err = arbor_proc_read(&p, "stderr");
  assert_non_null(strstr(err, "trace written to"));
  free(err);
  arbor_proc_cleanup(&p);
}

/* SIGUSR1 writes the trace now, in OTLP when the name says so, and the daemon
 * goes on supervising. */
static void daemon_sigusr1_writes_the_trace_while_running(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *cfg = config_with(&p, NULL);
  char out[256];
  snprintf(out, sizeof out, "%s/now.otlp.json", p.dir);
  char *extra[] = {"--trace-out", out, NULL};
  start_args(&p, cfg, extra);
  free(cfg);
  arbor_proc_wait_text(&p, "stderr", "arbor: ready");
  arbor_proc_kill(&p, SIGUSR1);
  arbor_proc_wait_text(&p, "stderr", "SIGUSR1: trace written to");
  cJSON *doc = read_json(&p, "now.otlp.json");
  assert_string_equal(service_name_of(doc), "edge");
  cJSON_Delete(doc);
  char *body = NULL;
  assert_int_eq(arbor_proc_http(&p, "GET", "/healthz", &body), 200);
  free(body);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

static void daemon_trace_options_refuse_bad_values(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *out = NULL, *err = NULL;
  char *bad_format[] = {"arbor", "demo", "--trace-format", "svg", NULL};
  assert_int_eq(arbor_proc_run(&p, bad_format, &out, &err), 2);
  assert_non_null(strstr(err, "--trace-format: expected chrome or otlp, not \"svg\""));
  free(out);
  free(err);
  char *bad_url[] = {"arbor", "demo", "--otlp-endpoint", "127.0.0.1:4318", NULL};
  assert_int_eq(arbor_proc_run(&p, bad_url, &out, &err), 2);
  assert_non_null(strstr(err, "--otlp-endpoint"));
  free(out);
  free(err);

  const char *bad[][2] = {
      {"\"trace_format\": \"svg\", ", "trace_format"},
      {"\"otlp_endpoint\": \"collector:4318\", ", "otlp_endpoint"},
      {"\"trace_out\": 3, ", "trace_out"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *cfg = config_with(&p, bad[i][0]);
    arbor_proc_write(&p, "bad.json", cfg);
    free(cfg);
    char *check[] = {"arbor", "run", "--check", "bad.json", NULL};
    assert_int_eq(arbor_proc_run(&p, check, &out, &err), 2);
    if (strstr(err, bad[i][1]) == NULL)
      fail_msg("the error does not name %s: %s", bad[i][1], err);
    free(out);
    free(err);
  }
  arbor_proc_cleanup(&p);
}

/* ------------------------------------------------ a collector in a thread */

struct collector {
  int fd;
  int port;
  atomic_int stop;
  atomic_int posts;
  char body[1 << 16];            /* the last body (cut at its size) */
  char path[128];
  pthread_t thread;
};

/* One request: headers, then Content-Length bytes. Answers 200. */
static void serve_one(struct collector *c, int conn) {
  char buf[1 << 16];
  size_t len = 0;
  char *hdr_end = NULL;
  while (len < sizeof buf - 1) {
    struct pollfd pf = {conn, POLLIN, 0};
    if (poll(&pf, 1, 2000) <= 0)
      break;
    ssize_t n = read(conn, buf + len, sizeof buf - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
    buf[len] = '\0';
    if (hdr_end == NULL && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL)
      hdr_end += 4;
    if (hdr_end != NULL) {
      const char *cl = strcasestr(buf, "content-length:");
      size_t want = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;
      if (len - (size_t)(hdr_end - buf) >= want)
        break;
    }
  }
  if (hdr_end != NULL) {
    sscanf(buf, "POST %127s", c->path);
    size_t blen = len - (size_t)(hdr_end - buf);
    if (blen >= sizeof c->body)
      blen = sizeof c->body - 1;
    memcpy(c->body, hdr_end, blen);
    c->body[blen] = '\0';
    atomic_fetch_add(&c->posts, 1);
  }
  static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
  (void)!write(conn, ok, sizeof ok - 1);
  close(conn);
}

static void *collector_main(void *arg) {
  struct collector *c = arg;
  while (!atomic_load(&c->stop)) {
    struct pollfd pf = {c->fd, POLLIN, 0};
    if (poll(&pf, 1, 50) <= 0)
      continue;
    int conn = accept(c->fd, NULL, NULL);
    if (conn >= 0)
      serve_one(c, conn);
  }
  return NULL;
}

static void collector_start(struct collector *c) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(c->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_int_eq(bind(c->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_eq(listen(c->fd, 16), 0);
  assert_int_eq(getsockname(c->fd, (struct sockaddr *)&a, &alen), 0);
  c->port = ntohs(a.sin_port);
  assert_int_eq(pthread_create(&c->thread, NULL, collector_main, c), 0);
}

static void collector_stop(struct collector *c) {
  atomic_store(&c->stop, 1);
  pthread_join(c->thread, NULL);
  close(c->fd);
}

/* otlp_endpoint: finished spans reach the collector as OTLP/JSON on
 * /v1/traces; at shutdown the last ones are flushed before arbor exits. */
static void daemon_otlp_endpoint_pushes_finished_spans(void **state) {
  struct collector *c = malloc(sizeof *c);
  collector_start(c);
  struct arbor_proc p;
  arbor_proc_init(&p);
  char more[128];
  snprintf(more, sizeof more, "\"otlp_endpoint\": \"http://127.0.0.1:%d\", ", c->port);
  char *cfg = config_with(&p, more);
  start_args(&p, cfg, NULL);
  free(cfg);
  arbor_proc_wait_text(&p, "stderr", "arbor: ready");
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *err = arbor_proc_read(&p, "stderr");
  assert_non_null(strstr(err, "pushing finished spans to http://127.0.0.1:"));
  free(err);
  arbor_proc_cleanup(&p);
  collector_stop(c);
  assert_true(atomic_load(&c->posts) >= 1);
  assert_string_equal(c->path, "/v1/traces");
  cJSON *doc = cJSON_Parse(c->body);
  assert_non_null(doc);
  assert_string_equal(service_name_of(doc), "edge");
  assert_non_null(strstr(c->body, "\"name\":\"web#1\""));
  cJSON_Delete(doc);
  free(c);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(daemon_trace_out_written_whole_at_shutdown),
    cmocka_unit_test(daemon_sigusr1_writes_the_trace_while_running),
    cmocka_unit_test(daemon_trace_options_refuse_bad_values),
    cmocka_unit_test(daemon_otlp_endpoint_pushes_finished_spans),
};

ARBOR_TEST_MAIN(tests)
