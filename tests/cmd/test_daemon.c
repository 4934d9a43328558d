/* tests/cmd/test_daemon.c - the arbor daemon (cmd/daemon.c, cmd/main.c) as a
 * user runs it: the built program on a free port, driven by signals, HTTP and
 * $NOTIFY_SOCKET, watched through stamp files its services write. */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "arbor_proc.h"

/* ----------------------------------------------------------------- helpers */

/* Reads the URL, or fails showing what arbor said instead. */
static void read_url(struct arbor_proc *p) {
  if (arbor_proc_read_url(p) < 0) {
    char *err = arbor_proc_read(p, "stderr");
    print_error("arbor printed no URL; stderr:\n%s\n", err != NULL ? err : "");
    free(err);
    fail();
  }
}

static void start_config(struct arbor_proc *p, const char *config, char *const *env) {
  arbor_proc_write(p, "arbor.json", config);
  char *argv[] = {"arbor", "run", "arbor.json", "--port", "0", NULL};
  arbor_proc_start(p, argv, env);
  read_url(p);
}

/* A config of one supervisor "s" (parallel_stop as given) over services. */
static char *config_of(struct arbor_proc *p, int parallel_stop, const char *const *names,
                       const char *const *extras) {
  char *json = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [{\"supervisor\": \"s\", "
             "\"parallel_stop\": %s, \"children\": [",
          parallel_stop ? "true" : "false");
  for (size_t i = 0; names[i] != NULL; i++)
    fprintf(f, "%s{\"service\": \"%s\", \"argv\": %s}", i > 0 ? ", " : "", names[i],
            arbor_proc_service_argv(p, names[i], extras != NULL ? extras[i] : NULL));
  fprintf(f, "]}]}\n");
  fclose(f);
  return json;
}

/* The node named name of kind kind in a tree response (TREE_NODE's "nodes"). */
static const cJSON *find_node(const cJSON *n, const char *kind, const char *name) {
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(n, "kind");
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(n, "name");
  if (cJSON_IsString(k) && cJSON_IsString(nm) && strcmp(k->valuestring, kind) == 0 &&
      strcmp(nm->valuestring, name) == 0)
    return n;
  const cJSON *kids = cJSON_GetObjectItemCaseSensitive(n, "nodes");
  for (const cJSON *c = kids != NULL ? kids->child : NULL; c != NULL; c = c->next) {
    const cJSON *found = find_node(c, kind, name);
    if (found != NULL)
      return found;
  }
  return NULL;
}

/* GET path as JSON; NULL unless 200. */
static cJSON *get_json(struct arbor_proc *p, const char *path) {
  char *body = NULL;
  long status = arbor_proc_http(p, "GET", path, &body);
  cJSON *j = status == 200 ? cJSON_Parse(body) : NULL;
  free(body);
  return j;
}

/* A service's {id, restarts}, from the tree. 0 when the API cannot say. */
static int service_state(struct arbor_proc *p, const char *name, double *id, double *restarts) {
  cJSON *tree = get_json(p, "/api/v1/tree?depth=8");
  const cJSON *n = tree != NULL ? find_node(cJSON_GetObjectItemCaseSensitive(tree, "root"),
                                            "service", name)
                                : NULL;
  int ok = n != NULL;
  if (ok) {
    *id = cJSON_GetObjectItemCaseSensitive(n, "id")->valuedouble;
    *restarts = cJSON_GetObjectItemCaseSensitive(n, "restarts")->valuedouble;
  }
  cJSON_Delete(tree);
  return ok;
}

/* The admin API's resources answer (they land separately from the daemon). */
static int api_available(struct arbor_proc *p) {
  cJSON *tree = get_json(p, "/api/v1/tree");
  int ok = tree != NULL;
  cJSON_Delete(tree);
  return ok;
}

/* --------------------------------------------------------------- the CLI */

static void daemon_version_and_help(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *out = NULL, *err = NULL;
  char *version[] = {"arbor", "--version", NULL};
  assert_int_eq(arbor_proc_run(&p, version, &out, &err), 0);
  char want[64];
  snprintf(want, sizeof want, "arbor %d.%d.%d\n", ARBOR_VERSION_MAJOR, ARBOR_VERSION_MINOR,
           ARBOR_VERSION_PATCH);
  assert_string_equal(out, want);
  free(out);
  free(err);

  char *help[] = {"arbor", "--help", NULL};
  assert_int_eq(arbor_proc_run(&p, help, &out, &err), 0);
  assert_non_null(strstr(out, "usage: arbor COMMAND"));
  free(out);
  free(err);

  char *run_help[] = {"arbor", "run", "--help", NULL};
  assert_int_eq(arbor_proc_run(&p, run_help, &out, &err), 0);
  assert_non_null(strstr(out, "usage: arbor run"));
  assert_non_null(strstr(out, "SIGHUP"));
  free(out);
  free(err);

  char *demo_help[] = {"arbor", "demo", "--help", NULL};
  assert_int_eq(arbor_proc_run(&p, demo_help, &out, &err), 0);
  assert_non_null(strstr(out, "usage: arbor demo"));
  free(out);
  free(err);

  char *bad[] = {"arbor", "frobnicate", NULL};
  assert_int_eq(arbor_proc_run(&p, bad, &out, &err), 2);
  assert_string_equal(err, "arbor: unknown command \"frobnicate\" (see arbor --help)\n");
  free(out);
  free(err);

  char *bad_port[] = {"arbor", "run", "x.json", "--port", "http", NULL};
  assert_int_eq(arbor_proc_run(&p, bad_port, &out, &err), 2);
  assert_string_equal(err, "arbor: --port: expected a number from 0 to 65535, not \"http\" "
                           "(see arbor run --help)\n");
  free(out);
  free(err);
  arbor_proc_cleanup(&p);
}

/* ------------------------------------------------------------ run, stop */

static void daemon_run_serves_the_admin_api_on_a_free_port(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"web", NULL};
  char *cfg = config_of(&p, 1, names, NULL);
  start_config(&p, cfg, NULL);
  free(cfg);
  assert_true(p.port > 0);
  arbor_proc_wait_lines(&p, "web.pids", 1);   /* the service runs */

  char *body = NULL;
  long status = arbor_proc_http(&p, "GET", "/healthz", &body);
  assert_int_eq(status, 200);
  cJSON *j = cJSON_Parse(body);
  free(body);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "ok");
  cJSON_Delete(j);

  if (api_available(&p)) {
    double id = 0, restarts = -1;
    assert_true(service_state(&p, "web", &id, &restarts));
    assert_true(id > 0);
    assert_true(restarts == 0);
  }
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *order = arbor_proc_read(&p, "order");
  arbor_proc_cleanup(&p);
  assert_non_null(order);
  assert_string_equal(order, "web\n");  /* stopped by arbor, with its stop signal */
  free(order);
}

static void daemon_sigterm_stops_children_newest_first(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"first", "second", "third", NULL};
  char *cfg = config_of(&p, 0, names, NULL);
  start_config(&p, cfg, NULL);
  free(cfg);
  arbor_proc_wait_text(&p, "stderr", "arbor: ready");
  for (size_t i = 0; names[i] != NULL; i++) {
    char f[64];
    snprintf(f, sizeof f, "%s.pids", names[i]);
    assert_int_eq(arbor_proc_lines(&p, f), 1);
  }
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *order = arbor_proc_read(&p, "order");
  char *err = arbor_proc_read(&p, "stderr");
  arbor_proc_cleanup(&p);
  assert_string_equal(order, "third\nsecond\nfirst\n");
  assert_non_null(strstr(err, "arbor: SIGTERM: shutting down"));
  free(order);
  free(err);
}

static void daemon_second_sigterm_stops_at_once(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  /* A program that ignores SIGTERM, with a day to stop: only the second signal
   * (immediate: SIGKILL) ends this test before the runner's timeout. */
  char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "{\"admin\": {\"port\": 0}, \"shutdown_timeout_ms\": 86400000, \"tree\": ["
           "{\"service\": \"persistent\", \"shutdown_timeout_ms\": 86400000, \"argv\": "
           "[\"sh\", \"-c\", \"trap '' TERM; echo $$ > %s/persistent.pids; "
           "while [ ! -e %s/stop ]; do sleep 0.05; done\"]}]}",
           p.dir, p.dir);
  start_config(&p, cfg, NULL);
  arbor_proc_wait_lines(&p, "persistent.pids", 1);
  arbor_proc_kill(&p, SIGTERM);
  arbor_proc_wait_text(&p, "stderr", "arbor: SIGTERM: shutting down");
  arbor_proc_kill(&p, SIGTERM);
  int rc = arbor_proc_wait(&p);
  char *err = arbor_proc_read(&p, "stderr");
  arbor_proc_cleanup(&p);
  assert_int_eq(rc, 1);          /* it gave up on a service: that is a failure */
  assert_non_null(strstr(err, "arbor: SIGTERM again: stopping at once"));
  free(err);
}

static void daemon_exit_status_1_when_the_tree_failed(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  /* Fails at once, every time: the config's supervisor gives up (intensity). */
  start_config(&p, "{\"admin\": {\"port\": 0}, \"tree\": [{\"service\": \"broken\", "
                   "\"argv\": [\"sh\", \"-c\", \"exit 3\"]}]}",
               NULL);
  int rc = arbor_proc_wait(&p);
  char *err = arbor_proc_read(&p, "stderr");
  arbor_proc_cleanup(&p);
  assert_int_eq(rc, 1);
  assert_non_null(strstr(err, "service broken (id "));
  assert_non_null(strstr(err, "restart intensity exceeded"));
  free(err);
}

static void daemon_port_in_use_starts_nothing(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"web", NULL};
  char *cfg = config_of(&p, 1, names, NULL);
  start_config(&p, cfg, NULL);   /* holds a port */
  free(cfg);
  struct arbor_proc q;
  arbor_proc_init(&q);
  char json[2048];
  snprintf(json, sizeof json,
           "{\"admin\": {\"port\": %d}, \"tree\": [{\"service\": \"stamp\", \"argv\": "
           "[\"touch\", \"started\"]}]}",
           p.port);
  arbor_proc_write(&q, "arbor.json", json);
  char *out = NULL, *err = NULL;
  char *argv[] = {"arbor", "run", "arbor.json", NULL};
  int rc = arbor_proc_run(&q, argv, &out, &err);
  char *started = arbor_proc_read(&q, "started");
  arbor_proc_cleanup(&q);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
  assert_int_eq(rc, 1);
  assert_string_equal(out, "");
  assert_non_null(strstr(err, "arbor: cannot start the admin server on 127.0.0.1 port "));
  assert_null(started);
  free(out);
  free(err);
}

static void daemon_non_loopback_without_token_is_refused(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  arbor_proc_write(&p, "arbor.json", "{\"admin\": {\"bind\": \"0.0.0.0\", \"port\": 0}, "
                                     "\"tree\": [{\"service\": \"stamp\", \"argv\": "
                                     "[\"touch\", \"started\"]}]}");
  char *out = NULL, *err = NULL;
  char *argv[] = {"arbor", "run", "arbor.json", NULL};
  int rc = arbor_proc_run(&p, argv, &out, &err);
  char *started = arbor_proc_read(&p, "started");
  arbor_proc_cleanup(&p);
  assert_int_eq(rc, 2);
  assert_string_equal(out, "");
  assert_string_equal(err, "arbor: cannot start the admin server on 0.0.0.0 port 0: permission "
                           "denied (a non-loopback address needs a token)\n");
  assert_null(started);
  free(out);
  free(err);
}

/* admin.token_file is read relative to the config's directory, not arbor's. */
static void daemon_token_file_is_relative_to_the_config(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  assert_int_eq(mkdir(arbor_proc_path(&p, "etc"), 0755), 0);
  arbor_proc_write(&p, "etc/token", "s3cret\n");
  arbor_proc_write(&p, "etc/arbor.json", "{\"admin\": {\"port\": 0, \"token_file\": \"token\"}, "
                                         "\"tree\": []}");
  char *argv[] = {"arbor", "run", "etc/arbor.json", NULL};
  arbor_proc_start(&p, argv, NULL);
  read_url(&p);
  char *body = NULL;
  long without = arbor_proc_http(&p, "POST", "/api/v1/nodes/999999/cancel", &body);
  free(body);
  long with = arbor_proc_http_token(&p, "POST", "/api/v1/nodes/999999/cancel", "s3cret", &body);
  free(body);
  arbor_proc_kill(&p, SIGTERM);
  int rc = arbor_proc_wait(&p);
  arbor_proc_cleanup(&p);
  assert_int_eq(without, 401);
  assert_int_eq(with, 404);      /* let in, and no such node (a real one would stop) */
  assert_int_eq(rc, 0);
}

/* ---------------------------------------------------------------- notify */

/* A datagram socket in the abstract namespace, as systemd's is. */
static int notify_socket(char *name, size_t size) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  snprintf(name, size, "@arbor-test-notify-%d", (int)getpid());
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  memcpy(a.sun_path, name, len);
  a.sun_path[0] = '\0';
  assert_int_eq(bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
  return fd;
}

static void notify_recv(int fd, char *buf, size_t size) {
  ssize_t n;
  while ((n = recv(fd, buf, size - 1, 0)) < 0 && errno == EINTR) {
  }
  assert_true(n >= 0);
  buf[n] = '\0';
}

static void daemon_notify_socket_ready_and_stopping(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char name[108], env_var[160], buf[512];
  int fd = notify_socket(name, sizeof name);
  snprintf(env_var, sizeof env_var, "NOTIFY_SOCKET=%s", name);
  char *env[] = {env_var, NULL};
  const char *names[] = {"a", "b", NULL};
  char *cfg = config_of(&p, 1, names, NULL);
  start_config(&p, cfg, env);
  free(cfg);
  notify_recv(fd, buf, sizeof buf);
  assert_non_null(strstr(buf, "READY=1"));
  /* READY=1 means every service is started. */
  assert_int_eq(arbor_proc_lines(&p, "a.pids"), 1);
  assert_int_eq(arbor_proc_lines(&p, "b.pids"), 1);
  arbor_proc_kill(&p, SIGTERM);
  notify_recv(fd, buf, sizeof buf);
  assert_string_equal(buf, "STOPPING=1");
  assert_int_eq(arbor_proc_wait(&p), 0);
  close(fd);
  arbor_proc_cleanup(&p);
}

/* ---------------------------------------------------------------- reload */

static void daemon_sighup_reload_restarts_changed_keeps_others(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char name[108], env_var[160], buf[512];
  int fd = notify_socket(name, sizeof name);
  snprintf(env_var, sizeof env_var, "NOTIFY_SOCKET=%s", name);
  char *env[] = {env_var, NULL};
  const char *v1[] = {"changed", "same", "removed", NULL};
  char *cfg = config_of(&p, 1, v1, NULL);
  start_config(&p, cfg, env);
  free(cfg);
  notify_recv(fd, buf, sizeof buf);
  assert_non_null(strstr(buf, "READY=1"));
  int api = api_available(&p);
  double changed_id = 0, same_id = 0, r = 0;
  if (api) {
    assert_true(service_state(&p, "changed", &changed_id, &r));
    assert_true(r == 0);
    assert_true(service_state(&p, "same", &same_id, &r));
  }

  /* A broken config first: logged, nothing changes. */
  arbor_proc_write(&p, "arbor.json", "{\"tree\": [}");
  arbor_proc_kill(&p, SIGHUP);
  notify_recv(fd, buf, sizeof buf);
  assert_non_null(strstr(buf, "RELOADING=1"));
  arbor_proc_wait_text(&p, "stderr", "arbor: reload failed, still running the previous "
                                     "config: arbor.json:1:11: expected a value");

  /* changed: a new argv; same: untouched; removed: gone; added: new. */
  const char *v2[] = {"changed", "same", "added", NULL};
  const char *extras[] = {"# v2", NULL, NULL, NULL};
  cfg = config_of(&p, 1, v2, extras);
  arbor_proc_write(&p, "arbor.json", cfg);
  free(cfg);
  arbor_proc_kill(&p, SIGHUP);
  arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 1 restarted, 1 added, 1 removed");
  notify_recv(fd, buf, sizeof buf);   /* the broken reload's READY=1, or this one's */
  arbor_proc_wait_lines(&p, "changed.pids", 2);   /* restarted with the new argv */
  arbor_proc_wait_lines(&p, "added.pids", 1);
  arbor_proc_wait_text(&p, "order", "removed\n");
  assert_int_eq(arbor_proc_lines(&p, "same.pids"), 1);   /* never restarted */

  if (api) {
    double id = 0;
    assert_true(service_state(&p, "changed", &id, &r));
    assert_true(id == changed_id);                 /* same node */
    assert_true(r == 1);                           /* restarted once */
    assert_true(service_state(&p, "same", &id, &r));
    assert_true(id == same_id);
    assert_true(r == 0);
  }
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *order = arbor_proc_read(&p, "order");
  close(fd);
  arbor_proc_cleanup(&p);
  /* The old "changed" stopped at the reload; at shutdown the rest. */
  assert_non_null(strstr(order, "changed\n"));
  assert_non_null(strstr(order, "same\n"));
  assert_non_null(strstr(order, "added\n"));
  free(order);
}

/* `arbor run --demo`: the demo's tree beside the config's, and a reload changes
 * the config's services only. */
static void daemon_run_demo_runs_the_demo_beside_the_config(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *v1[] = {"a", NULL};
  char *cfg = config_of(&p, 1, v1, NULL);
  arbor_proc_write(&p, "arbor.json", cfg);
  free(cfg);
  char *argv[] = {"arbor", "run", "--demo", "arbor.json", "--port", "0", NULL};
  arbor_proc_start(&p, argv, NULL);
  read_url(&p);
  arbor_proc_wait_lines(&p, "a.pids", 1);
  double a_id = 0, hb_id = 0, hb_restarts = 0, r = 0;
  assert_true(service_state(&p, "a", &a_id, &r));
  assert_true(service_state(&p, "heartbeat", &hb_id, &hb_restarts));   /* a demo fiber */
  cJSON *tree = get_json(&p, "/api/v1/tree?depth=1");
  assert_non_null(tree);
  const cJSON *root = cJSON_GetObjectItemCaseSensitive(tree, "root");
  assert_non_null(find_node(root, "supervisor", "config"));
  assert_non_null(find_node(root, "supervisor", "demo"));
  cJSON_Delete(tree);

  const char *v2[] = {"a", "b", NULL};
  cfg = config_of(&p, 1, v2, NULL);
  arbor_proc_write(&p, "arbor.json", cfg);
  free(cfg);
  arbor_proc_kill(&p, SIGHUP);
  arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 0 restarted, 1 added, 0 removed");
  arbor_proc_wait_lines(&p, "b.pids", 1);
  double id = 0;
  assert_true(service_state(&p, "heartbeat", &id, &r));
  assert_true(id == hb_id);                        /* the demo's, untouched */
  assert_true(service_state(&p, "a", &id, &r));
  assert_true(id == a_id && r == 0);

  /* --demo is run's: the demo has no config to add it to. */
  char *bad[] = {"arbor", "demo", "--demo", NULL};
  char *err = NULL;
  assert_int_eq(arbor_proc_run(&p, bad, NULL, &err), 2);
  assert_non_null(strstr(err, "unknown option --demo"));
  free(err);

  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

/* ------------------------------------------------------ start dependencies */

/* A service that appends its name to DIR/started when it starts and to
 * DIR/order when SIGTERM stops it (the trap set first, so that a stop right
 * after the start is seen). */
static void dep_service(FILE *f, struct arbor_proc *p, const char *name, const char *more) {
  const char *d = p->dir;
  fprintf(f, "{\"service\": \"%s\", \"argv\": [\"sh\", \"-c\", "
             "\"trap 'echo %s >> %s/order; exit 0' TERM; echo %s >> %s/started; "
             "while [ ! -e %s/stop ]; do sleep 0.05; done\"]%s}",
          name, name, d, name, d, d, more);
}

/* The config lists web before api before db; web requires api, api requires db,
 * db takes 1.5 s to count as started, api and web 0.3 s (so that each one's line
 * is written before the next is spawned: a program is STARTED at its spawn
 * otherwise, and solo's shell could then write its line before web's, as seen
 * under ASan on a loaded machine). They start db, api, web (each once
 * the one before is STARTED: api not while db is STARTING), solo last (file
 * order otherwise), and stop in reverse: solo, web, api, db. */
static void daemon_requires_orders_start_and_stop(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *json = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [");
  dep_service(f, &p, "web", ", \"requires\": [\"api\"], \"min_uptime_ms\": 300");
  fprintf(f, ", ");
  dep_service(f, &p, "api", ", \"requires\": [\"db\"], \"min_uptime_ms\": 300");
  fprintf(f, ", ");
  dep_service(f, &p, "db", ", \"min_uptime_ms\": 1500");
  fprintf(f, ", ");
  dep_service(f, &p, "solo", ", \"after\": []");
  fprintf(f, "]}\n");
  fclose(f);
  start_config(&p, json, NULL);
  free(json);

  arbor_proc_wait_text(&p, "started", "db\n");
  if (api_available(&p)) {
    /* While db is STARTING, api has not started, and says what it waits for. */
    cJSON *tree = get_json(&p, "/api/v1/tree?depth=8");
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(tree, "root");
    const cJSON *db = find_node(root, "service", "db");
    const cJSON *api = find_node(root, "service", "api");
    assert_non_null(db);
    assert_non_null(api);
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(api, "attributes");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(attrs, "requires");
    assert_true(cJSON_IsString(req));
    assert_string_equal(req->valuestring, "db");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(db, "state");
    if (strcmp(st->valuestring, "STARTING") == 0) {
      char *started = arbor_proc_read(&p, "started");
      assert_string_equal(started, "db\n");
      free(started);
      assert_string_equal(cJSON_GetObjectItemCaseSensitive(api, "state")->valuestring,
                          "CREATED");
    }
    cJSON_Delete(tree);
  }
  /* STARTED (what "ready" says) is at the spawn for solo: wait for its line. */
  arbor_proc_wait_text(&p, "started", "solo\n");
  char *started = arbor_proc_read(&p, "started");
  assert_string_equal(started, "db\napi\nweb\nsolo\n");
  free(started);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *order = arbor_proc_read(&p, "order");
  arbor_proc_cleanup(&p);
  assert_string_equal(order, "solo\nweb\napi\ndb\n");
  free(order);
}

/* requires only orders: a reload that changes it restarts nothing, and one that
 * makes a running node depend on a new sibling (added after it) says that the
 * order needs a restart of arbor. */
static void daemon_reload_of_requires_restarts_nothing(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  for (int v = 1; v <= 2; v++) {
    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [");
    dep_service(f, &p, "db", ", \"min_uptime_ms\": 300");   /* its line before web's */
    fprintf(f, ", ");
    dep_service(f, &p, "web", v == 1 ? ", \"requires\": [\"db\"]"
                                     : ", \"requires\": [\"db\", \"cache\"]");
    if (v == 2) {
      fprintf(f, ", ");
      dep_service(f, &p, "cache", "");
    }
    fprintf(f, "]}\n");
    fclose(f);
    if (v == 1) {
      start_config(&p, json, NULL);
      arbor_proc_wait_text(&p, "stderr", "arbor: ready");
    } else {
      arbor_proc_write(&p, "arbor.json", json);
      arbor_proc_kill(&p, SIGHUP);
      arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 0 restarted, 1 added, 0 removed");
    }
    free(json);
  }
  arbor_proc_wait_text(&p, "started", "cache\n");
  char *err = arbor_proc_read(&p, "stderr");
  assert_non_null(strstr(err, "(tree[1], id "));
  assert_non_null(strstr(err, ") started before cache, which it requires: restart needed for "
                              "the new start order\n"));
  free(err);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *started = arbor_proc_read(&p, "started");
  arbor_proc_cleanup(&p);
  assert_string_equal(started, "db\nweb\ncache\n");   /* web never restarted */
  free(started);
}

/* The top level is one_for_one: when db's first run fails, the supervisor
 * starts the next children while db waits out its restart delay, but not api,
 * which requires db: api starts after db's second run is STARTED, and says it
 * waits for db meanwhile. */
static void daemon_requires_holds_dependent_while_dependency_restarts(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *json = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  const char *d = p.dir;
  fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [");
  dep_service(f, &p, "api", ", \"requires\": [\"db\"]");
  fprintf(f, ", {\"service\": \"db\", \"min_uptime_ms\": 300, \"argv\": [\"sh\", \"-c\", "
             "\"echo db >> %s/started; if [ ! -e %s/db.once ]; then touch %s/db.once; exit 1; fi; "
             "trap 'exit 0' TERM; while [ ! -e %s/stop ]; do sleep 0.05; done\"]}, ",
          d, d, d, d);
  dep_service(f, &p, "solo", "");
  fprintf(f, "]}\n");
  fclose(f);
  start_config(&p, json, NULL);
  free(json);
  arbor_proc_wait_text(&p, "started", "solo\n");
  arbor_proc_wait_text(&p, "started", "api\n");
  char *started = arbor_proc_read(&p, "started");
  /* api's line after db's second one, whatever solo did meanwhile. */
  const char *second = strstr(started, "db\n");
  second = second != NULL ? strstr(second + 3, "db\n") : NULL;
  if (second == NULL || strstr(second, "api\n") == NULL)
    print_error("started:\n%s", started);
  assert_non_null(second);
  assert_non_null(strstr(second, "api\n"));
  free(started);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

/* A service over its max_memory ("16M" in the config: a shell holding 40 MB
 * in its first run) is restarted; its node says why (EMEMLIMIT, the reading)
 * and shows the limit and the readings of the new run. */
static void daemon_max_memory_restarts_the_service(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *json = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  const char *d = p.dir;
  fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [{\"service\": \"hog\", "
             "\"max_memory\": \"16M\", \"argv\": [\"sh\", \"-c\", "
             "\"echo hog >> %s/started; if [ ! -e %s/hog.once ]; then touch %s/hog.once; "
             "x=$(head -c 40000000 /dev/zero | tr '\\\\0' a); fi; "
             "while [ ! -e %s/stop ]; do sleep 0.05; done\"]}]}\n",
          d, d, d, d);
  fclose(f);
  start_config(&p, json, NULL);
  free(json);
  arbor_proc_wait_lines(&p, "started", 2);
  double id = 0, restarts = 0;
  assert_true(service_state(&p, "hog", &id, &restarts));
  assert_true(restarts >= 1);
  char path[64];
  snprintf(path, sizeof path, "/api/v1/nodes/%.0f", id);
  cJSON *node = get_json(&p, path);
  assert_non_null(node);
  const cJSON *h0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(node, "history"), 0);
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(h0, "error");
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "name");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
  assert_true(cJSON_IsString(code) && cJSON_IsString(msg));
  assert_string_equal(code->valuestring, "EMEMLIMIT");
  assert_non_null(strstr(msg->valuestring, "over max_memory 16 MiB"));
  const cJSON *ml = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(node, "service"), "memory_limit");
  assert_true(cJSON_IsObject(ml));
  assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(ml, "max_memory")->valuedouble,
                16 * 1024 * 1024);
  assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(ml, "exceeded")->valuedouble, 1);
  cJSON_Delete(node);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

/* GET /readyz's status, polled until it is want (bounded: 2000 x 10 ms). */
static void wait_readyz(struct arbor_proc *p, long want) {
  long status = 0;
  for (int i = 0; i < 2000 && status != want; i++) {
    char *body = NULL;
    status = arbor_proc_http(p, "GET", "/readyz", &body);
    free(body);
    if (status != want)
      usleep(10000);
  }
  assert_int_eq(status, want);
}

/* A readiness probe from the config: db counts as started (for /readyz and for
 * web, which requires it) only once its exec probe passes. */
static void daemon_readiness_probe_decides_readyz_and_requires(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *json = NULL, more[512];
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [");
  snprintf(more, sizeof more,
           ", \"readiness\": {\"exec\": [\"test\", \"-e\", \"%s/db-ready\"], "
           "\"interval_ms\": 20}",
           p.dir);
  dep_service(f, &p, "db", more);
  fprintf(f, ", ");
  dep_service(f, &p, "web", ", \"requires\": [\"db\"]");
  fprintf(f, "]}\n");
  fclose(f);
  start_config(&p, json, NULL);
  free(json);
  arbor_proc_wait_text(&p, "started", "db\n");
  if (api_available(&p)) {
    wait_readyz(&p, 503);
    cJSON *tree = get_json(&p, "/api/v1/tree?depth=8");
    const cJSON *root = cJSON_GetObjectItemCaseSensitive(tree, "root");
    const cJSON *db = find_node(root, "service", "db");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(db, "state")->valuestring, "STARTING");
    cJSON_Delete(tree);
  }
  char *started = arbor_proc_read(&p, "started");
  assert_string_equal(started, "db\n");   /* web waits for db's probe */
  free(started);
  arbor_proc_write(&p, "db-ready", "");
  arbor_proc_wait_text(&p, "started", "web\n");
  if (api_available(&p))
    wait_readyz(&p, 200);
  arbor_proc_write(&p, "stop", "");
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

/* A reload that changes max_memory restarts that service with the new limit,
 * and leaves a service whose limit did not change alone. */
static void daemon_reload_of_max_memory_restarts_with_the_new_limit(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char cfg[4096];
  const char *fmt = "{\"admin\": {\"port\": 0}, \"tree\": ["
                    "{\"service\": \"a\", \"max_memory\": \"%s\", \"argv\": %s}, "
                    "{\"service\": \"b\", \"max_memory\": 268435456, \"argv\": %s}]}\n";
  char argv_a[1024];
  snprintf(argv_a, sizeof argv_a, "%s", arbor_proc_service_argv(&p, "a", NULL));
  snprintf(cfg, sizeof cfg, fmt, "512M", argv_a, arbor_proc_service_argv(&p, "b", NULL));
  start_config(&p, cfg, NULL);
  arbor_proc_wait_lines(&p, "a.pids", 1);
  arbor_proc_wait_lines(&p, "b.pids", 1);
  snprintf(cfg, sizeof cfg, fmt, "1G", argv_a, arbor_proc_service_argv(&p, "b", NULL));
  arbor_proc_write(&p, "arbor.json", cfg);
  arbor_proc_kill(&p, SIGHUP);
  arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 1 restarted");
  arbor_proc_wait_lines(&p, "a.pids", 2);
  assert_int_eq(arbor_proc_lines(&p, "b.pids"), 1);
  double id = 0, restarts = 0;
  assert_true(service_state(&p, "a", &id, &restarts));
  char path[64];
  snprintf(path, sizeof path, "/api/v1/nodes/%.0f", id);
  cJSON *node = get_json(&p, path);
  const cJSON *ml = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(node, "service"), "memory_limit");
  assert_true(cJSON_IsObject(ml));
  assert_true(cJSON_GetObjectItemCaseSensitive(ml, "max_memory")->valuedouble == 1073741824.0);
  cJSON_Delete(node);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

/* A reload compares probes too: the service whose probe changed (its interval)
 * restarts, the one whose probe is the same (an explicit default equals an
 * absent key) is left alone. */
static void daemon_reload_of_a_probe_restarts_that_service(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *v1[] = {"a", "b", NULL};
  char *json = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [");
  dep_service(f, &p, v1[0], ", \"liveness\": {\"exec\": [\"true\"], \"interval_ms\": 100}");
  fprintf(f, ", ");
  dep_service(f, &p, v1[1], ", \"readiness\": {\"tcp\": {\"port\": 1}, \"initial_delay_ms\": 3600000}");
  fprintf(f, "]}\n");
  fclose(f);
  /* b never gets ready (its probe waits an hour), so nothing waits on /readyz. */
  start_config(&p, json, NULL);
  free(json);
  arbor_proc_wait_lines(&p, "started", 2);   /* a and b, in either order */
  json = NULL;
  f = open_memstream(&json, &len);
  fprintf(f, "{\"admin\": {\"port\": 0}, \"tree\": [");
  dep_service(f, &p, v1[0], ", \"liveness\": {\"exec\": [\"true\"], \"interval_ms\": 200}");
  fprintf(f, ", ");
  dep_service(f, &p, v1[1], ", \"readiness\": {\"tcp\": {\"port\": 1, \"host\": \"127.0.0.1\"}, "
                            "\"initial_delay_ms\": 3600000, \"failure_threshold\": 3}");
  fprintf(f, "]}\n");
  fclose(f);
  arbor_proc_write(&p, "arbor.json", json);
  free(json);
  arbor_proc_kill(&p, SIGHUP);
  arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 1 restarted, 0 added, 0 removed");
  arbor_proc_wait_lines(&p, "started", 3);
  arbor_proc_write(&p, "stop", "");
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *started = arbor_proc_read(&p, "started");
  arbor_proc_cleanup(&p);
  /* a started twice (the restart), b once: never restarted. */
  assert_true(strcmp(started, "a\nb\na\n") == 0 || strcmp(started, "b\na\na\n") == 0);
  free(started);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(daemon_version_and_help),
    cmocka_unit_test(daemon_run_serves_the_admin_api_on_a_free_port),
    cmocka_unit_test(daemon_sigterm_stops_children_newest_first),
    cmocka_unit_test(daemon_second_sigterm_stops_at_once),
    cmocka_unit_test(daemon_exit_status_1_when_the_tree_failed),
    cmocka_unit_test(daemon_port_in_use_starts_nothing),
    cmocka_unit_test(daemon_non_loopback_without_token_is_refused),
    cmocka_unit_test(daemon_token_file_is_relative_to_the_config),
    cmocka_unit_test(daemon_notify_socket_ready_and_stopping),
    cmocka_unit_test(daemon_sighup_reload_restarts_changed_keeps_others),
    cmocka_unit_test(daemon_run_demo_runs_the_demo_beside_the_config),
    cmocka_unit_test(daemon_requires_orders_start_and_stop),
    cmocka_unit_test(daemon_reload_of_requires_restarts_nothing),
    cmocka_unit_test(daemon_requires_holds_dependent_while_dependency_restarts),
    cmocka_unit_test(daemon_max_memory_restarts_the_service),
    cmocka_unit_test(daemon_reload_of_max_memory_restarts_with_the_new_limit),
    cmocka_unit_test(daemon_readiness_probe_decides_readyz_and_requires),
    cmocka_unit_test(daemon_reload_of_a_probe_restarts_that_service),
};

ARBOR_TEST_MAIN(tests)
