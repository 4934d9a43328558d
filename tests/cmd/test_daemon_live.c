/* tests/cmd/test_daemon_live.c - live service changes through the admin API
 * (http/services.c, cmd/config_live.c): the built daemon with a config and a
 * token, driven over HTTP (POST, PUT, DELETE /api/v1/services), watched through
 * the tree and the stamp files its services write. */
#include "harness.h"

#include <cJSON.h>
#include <signal.h>
#include <unistd.h>

#include "arbor_proc.h"

#define TOKEN "live-token"

/* ----------------------------------------------------------------- helpers */

static void read_url(struct arbor_proc *p) {
  if (arbor_proc_read_url(p) < 0) {
    char *err = arbor_proc_read(p, "stderr");
    print_error("arbor printed no URL; stderr:\n%s\n", err != NULL ? err : "");
    free(err);
    fail();
  }
}

/* A config with the token and services names (each the stamp-file loop of
 * arbor_proc_service_argv), started; waits until every one runs. */
static void start_with(struct arbor_proc *p, const char *const *names) {
  char *json = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&json, &len);
  fprintf(f, "{\"admin\": {\"port\": 0, \"token\": \"" TOKEN "\"}, \"tree\": [");
  for (size_t i = 0; names[i] != NULL; i++)
    fprintf(f, "%s{\"service\": \"%s\", \"argv\": %s}", i > 0 ? ", " : "", names[i],
            arbor_proc_service_argv(p, names[i], NULL));
  fprintf(f, "]}\n");
  fclose(f);
  arbor_proc_write(p, "arbor.json", json);
  free(json);
  char *argv[] = {"arbor", "run", "arbor.json", "--port", "0", NULL};
  arbor_proc_start(p, argv, NULL);
  read_url(p);
  arbor_proc_wait_text(p, "stderr", "arbor: ready");
}

/* {"service": name, "argv": <name's stamp loop>} + more (", \"k\": v" or ""). */
static char *spec_of(struct arbor_proc *p, const char *name, const char *argv_name,
                     const char *more) {
  char *s = NULL;
  if (asprintf(&s, "{\"service\": \"%s\", \"argv\": %s%s}", name,
               arbor_proc_service_argv(p, argv_name, NULL), more) < 0)
    abort();
  return s;
}

/* A request with the token; the status, the body parsed into *json (may be NULL). */
static long call(struct arbor_proc *p, const char *method, const char *path, const char *body,
                 cJSON **json) {
  char *resp = NULL;
  long status = arbor_proc_http_send(p, method, path, TOKEN, body, &resp);
  if (json != NULL)
    *json = cJSON_Parse(resp);
  free(resp);
  return status;
}

/* The error message of an error response (owned by j). */
static const char *error_message(const cJSON *j) {
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
  assert_true(cJSON_IsString(m));
  return m->valuestring;
}
static const char *error_code(const cJSON *j) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"),
                                                    "code");
  assert_true(cJSON_IsString(c));
  return c->valuestring;
}

static const cJSON *find_service(const cJSON *n, const char *name) {
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(n, "kind");
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(n, "name");
  if (cJSON_IsString(k) && cJSON_IsString(nm) && strcmp(k->valuestring, "service") == 0 &&
      strcmp(nm->valuestring, name) == 0)
    return n;
  const cJSON *kids = cJSON_GetObjectItemCaseSensitive(n, "nodes");
  for (const cJSON *c = kids != NULL ? kids->child : NULL; c != NULL; c = c->next) {
    const cJSON *found = find_service(c, name);
    if (found != NULL)
      return found;
  }
  return NULL;
}

/* A service's id, restarts and state from the tree; 0 when it is not there. */
static int service_state(struct arbor_proc *p, const char *name, double *id, double *restarts,
                         char *state, size_t size) {
  char *body = NULL;
  long status = arbor_proc_http(p, "GET", "/api/v1/tree?depth=8", &body);
  cJSON *tree = status == 200 ? cJSON_Parse(body) : NULL;
  free(body);
  const cJSON *n = find_service(cJSON_GetObjectItemCaseSensitive(tree, "root"), name);
  if (n != NULL) {
    *id = cJSON_GetObjectItemCaseSensitive(n, "id")->valuedouble;
    *restarts = cJSON_GetObjectItemCaseSensitive(n, "restarts")->valuedouble;
    snprintf(state, size, "%s", cJSON_GetObjectItemCaseSensitive(n, "state")->valuestring);
  }
  cJSON_Delete(tree);
  return n != NULL;
}

/* Polls the tree until name is in state (the runner's timeout bounds it). */
static void wait_state(struct arbor_proc *p, const char *name, const char *want) {
  double id, r;
  char st[32] = "";
  while (!service_state(p, name, &id, &r, st, sizeof st) || strcmp(st, want) != 0)
    usleep(20000);
}

/* The names of the services that are not FINISHED, in tree order, "a b ". */
static void live_names(const cJSON *n, char *out, size_t size) {
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(n, "kind");
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(n, "state");
  if (cJSON_IsString(k) && strcmp(k->valuestring, "service") == 0 &&
      strcmp(st->valuestring, "FINISHED") != 0) {
    size_t used = strlen(out);
    snprintf(out + used, size - used, "%s ",
             cJSON_GetObjectItemCaseSensitive(n, "name")->valuestring);
  }
  const cJSON *kids = cJSON_GetObjectItemCaseSensitive(n, "nodes");
  for (const cJSON *c = kids != NULL ? kids->child : NULL; c != NULL; c = c->next)
    live_names(c, out, size);
}

static void live_set(struct arbor_proc *p, char *out, size_t size) {
  char *body = NULL;
  out[0] = '\0';
  assert_int_eq(arbor_proc_http(p, "GET", "/api/v1/tree?depth=8", &body), 200);
  cJSON *tree = cJSON_Parse(body);
  free(body);
  live_names(cJSON_GetObjectItemCaseSensitive(tree, "root"), out, size);
  cJSON_Delete(tree);
}

static void stop(struct arbor_proc *p) {
  arbor_proc_kill(p, SIGTERM);
  assert_int_eq(arbor_proc_wait(p), 0);
  arbor_proc_cleanup(p);
}

/* ------------------------------------------------------------------- add */

static void live_add_process_service_is_started_and_in_the_tree(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"one", NULL};
  start_with(&p, names);
  char *spec = spec_of(&p, "two", "two", "");
  cJSON *j = NULL;
  char *resp = NULL;
  assert_int_eq(arbor_proc_http_send(&p, "POST", "/api/v1/services", TOKEN, spec, &resp), 201);
  free(spec);
  j = cJSON_Parse(resp);
  free(resp);
  double id = cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble;
  assert_true(id > 0);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "name")->valuestring, "two");
  cJSON_Delete(j);

  arbor_proc_wait_lines(&p, "two.pids", 1);   /* its program runs */
  wait_state(&p, "two", "STARTED");
  double got = 0, r = -1;
  char st[32];
  assert_true(service_state(&p, "two", &got, &r, st, sizeof st));
  assert_true(got == id);
  assert_true(r == 0);
  /* Its detail is where Location pointed. */
  char path[64];
  snprintf(path, sizeof path, "/api/v1/nodes/%.0f", id);
  char *body = NULL;
  assert_int_eq(arbor_proc_http(&p, "GET", path, &body), 200);
  free(body);
  arbor_proc_wait_text(&p, "stderr", "arbor: api: added service two (id ");
  stop(&p);
}

static void live_add_bad_specs_are_refused_and_change_nothing(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"one", NULL};
  start_with(&p, names);
  char before[256], after[256];
  live_set(&p, before, sizeof before);
  assert_string_equal(before, "one ");

  static const struct {
    const char *body;
    long status;
    const char *code;
    const char *message;         /* the config's own words */
  } cases[] = {
      {"{\"service\": \"x\"}", 400, "bad_spec",
       "body: argv: expected a non-empty array of strings (the program and its arguments)"},
      {"{\"service\": \"x\", \"argv\": \"sleep 1\"}", 400, "bad_spec",
       "body: argv: expected a non-empty array of strings"},
      {"{\"service\": \"x\", \"argv\": [\"sleep\", \"1\"], \"min_uptime_ms\": \"5\"}", 400,
       "bad_spec", "body: min_uptime_ms: expected an integer from 0 to 86400000, not a string"},
      {"{\"service\": \"x\", \"argv\": [\"sleep\", \"1\"], \"restrat\": \"temporary\"}", 400,
       "bad_spec", "body: unknown key \"restrat\""},
      {"{\"service\": \"x\", \"argv\": [", 400, "bad_spec", "body:1:"},
      {"{\"supervisor\": \"x\"}", 400, "bad_spec", "body: expected one service object"},
      {"{\"service\": \"x\", \"argv\": [\"sleep\", \"1\"], \"requires\": [\"nope\"]}", 400,
       "bad_spec", "body: requires[0]: no sibling named \"nope\""},
      {"{\"service\": \"one\", \"argv\": [\"sleep\", \"1\"]}", 409, "exists",
       "a service named \"one\" exists (id "},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cJSON *j = NULL;
    long status = call(&p, "POST", "/api/v1/services", cases[i].body, &j);
    if (status != cases[i].status || j == NULL ||
        strstr(error_message(j), cases[i].message) == NULL) {
      print_error("case %zu: %ld %s\n", i, status, j != NULL ? cJSON_PrintUnformatted(j) : "");
      fail();
    }
    assert_string_equal(error_code(j), cases[i].code);
    cJSON_Delete(j);
  }
  live_set(&p, after, sizeof after);
  assert_string_equal(after, before);
  assert_int_eq(arbor_proc_lines(&p, "one.pids"), 1);   /* not restarted either */
  stop(&p);
}

/* ---------------------------------------------------------------- update */

static void live_update_restarts_with_the_new_spec_keeping_the_id(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"one", "other", NULL};
  start_with(&p, names);
  double id0 = 0, r = 0, id = 0;
  char st[32];
  assert_true(service_state(&p, "one", &id0, &r, st, sizeof st));

  /* The new argv stamps one_v2.pids: that it runs is the new spec running. */
  char *spec = spec_of(&p, "one", "one_v2", "");
  cJSON *j = NULL;
  assert_int_eq(call(&p, "PUT", "/api/v1/services/one", spec, &j), 202);
  assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble == id0);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "restarted")));
  cJSON_Delete(j);
  arbor_proc_wait_lines(&p, "one_v2.pids", 1);
  arbor_proc_wait_text(&p, "order", "one\n");   /* the old program was stopped */
  wait_state(&p, "one", "STARTED");
  assert_true(service_state(&p, "one", &id, &r, st, sizeof st));
  assert_true(id == id0);
  assert_true(r == 1);

  /* The same spec again: nothing to restart. */
  assert_int_eq(call(&p, "PUT", "/api/v1/services/one", spec, &j), 200);
  assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "restarted")));
  cJSON_Delete(j);
  free(spec);

  /* Refused, nothing changed: a bad spec, another name, an unknown service. */
  assert_int_eq(call(&p, "PUT", "/api/v1/services/one", "{\"service\": \"one\"}", &j), 400);
  assert_non_null(strstr(error_message(j), "body: argv: expected a non-empty array"));
  cJSON_Delete(j);
  spec = spec_of(&p, "two", "two", "");
  assert_int_eq(call(&p, "PUT", "/api/v1/services/one", spec, &j), 400);
  assert_non_null(strstr(error_message(j), "but the URL names \"one\""));
  cJSON_Delete(j);
  assert_int_eq(call(&p, "PUT", "/api/v1/services/two", spec, &j), 404);
  assert_string_equal(error_code(j), "not_found");
  cJSON_Delete(j);
  free(spec);
  assert_true(service_state(&p, "one", &id, &r, st, sizeof st));
  assert_true(r == 1);
  assert_int_eq(arbor_proc_lines(&p, "one_v2.pids"), 1);
  assert_int_eq(arbor_proc_lines(&p, "other.pids"), 1);
  stop(&p);
}

/* ---------------------------------------------------------------- remove */

static void live_remove_stops_the_service_and_drops_it(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"one", "two", NULL};
  start_with(&p, names);
  double id0 = 0, r = 0, id = 0;
  char st[32];
  assert_true(service_state(&p, "two", &id0, &r, st, sizeof st));
  cJSON *j = NULL;
  assert_int_eq(call(&p, "DELETE", "/api/v1/services/two", NULL, &j), 202);
  assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble == id0);
  cJSON_Delete(j);
  arbor_proc_wait_text(&p, "order", "two\n");   /* stopped with its stop signal */
  char set[256];
  do {
    live_set(&p, set, sizeof set);
  } while (strcmp(set, "one ") != 0);
  if (service_state(&p, "two", &id, &r, st, sizeof st))   /* kept a while, finished */
    assert_string_equal(st, "FINISHED");
  /* Gone: a second remove does not find it, and its name is free again. */
  assert_int_eq(call(&p, "DELETE", "/api/v1/services/two", NULL, &j), 404);
  cJSON_Delete(j);
  assert_int_eq(call(&p, "DELETE", "/api/v1/services/config", NULL, &j), 404);
  cJSON_Delete(j);
  char *spec = spec_of(&p, "two", "two", "");
  assert_int_eq(call(&p, "POST", "/api/v1/services", spec, &j), 201);
  assert_true(cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble != id0);
  cJSON_Delete(j);
  free(spec);
  arbor_proc_wait_lines(&p, "two.pids", 2);
  assert_int_eq(arbor_proc_lines(&p, "one.pids"), 1);
  stop(&p);
}

/* ----------------------------------------------------------------- token */

static void live_changes_need_the_token(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"one", NULL};
  start_with(&p, names);
  char before[256], after[256];
  live_set(&p, before, sizeof before);
  char *spec = spec_of(&p, "two", "two", "");
  char *spec1 = spec_of(&p, "one", "one_v2", "");
  const char *tokens[] = {NULL, "wrong-token"};
  const long want[] = {401, 403};
  const char *code[] = {"\"unauthorized\"", "\"forbidden\""};
  for (int t = 0; t < 2; t++) {
    char *body = NULL;
    assert_int_eq(arbor_proc_http_send(&p, "POST", "/api/v1/services", tokens[t], spec, &body),
                  want[t]);
    assert_non_null(strstr(body, code[t]));
    free(body);
    assert_int_eq(
        arbor_proc_http_send(&p, "PUT", "/api/v1/services/one", tokens[t], spec1, &body),
        want[t]);
    free(body);
    assert_int_eq(
        arbor_proc_http_send(&p, "DELETE", "/api/v1/services/one", tokens[t], NULL, &body),
        want[t]);
    free(body);
  }
  free(spec);
  free(spec1);
  live_set(&p, after, sizeof after);
  assert_string_equal(after, before);
  assert_int_eq(arbor_proc_lines(&p, "one.pids"), 1);
  assert_int_eq(arbor_proc_lines(&p, "two.pids"), 0);
  assert_int_eq(arbor_proc_lines(&p, "one_v2.pids"), 0);
  stop(&p);
}

/* ---------------------------------------------------------- requires */

/* With requires in the file (so its supervisor stops one child at a time), an
 * added service may require a running one: the tree says so; the one it requires
 * is then not removed, nor made transient. A service naming one started after it
 * is refused. */
static void live_requires_is_checked_against_the_running_services(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *json = NULL;
  if (asprintf(&json, "{\"admin\": {\"port\": 0, \"token\": \"" TOKEN "\"}, \"tree\": ["
                      "{\"service\": \"db\", \"argv\": %s}, "
                      "{\"service\": \"api\", \"argv\": %s, \"requires\": [\"db\"]}]}\n",
               arbor_proc_service_argv(&p, "db", NULL),
               arbor_proc_service_argv(&p, "api", NULL)) < 0)
    abort();
  arbor_proc_write(&p, "arbor.json", json);
  free(json);
  char *argv[] = {"arbor", "run", "arbor.json", "--port", "0", NULL};
  arbor_proc_start(&p, argv, NULL);
  read_url(&p);
  arbor_proc_wait_text(&p, "stderr", "arbor: ready");

  cJSON *j = NULL;
  char *spec = spec_of(&p, "web", "web", ", \"requires\": [\"api\", \"db\"]");
  assert_int_eq(call(&p, "POST", "/api/v1/services", spec, &j), 201);
  free(spec);
  char path[64];
  snprintf(path, sizeof path, "/api/v1/nodes/%.0f",
           cJSON_GetObjectItemCaseSensitive(j, "id")->valuedouble);
  cJSON_Delete(j);
  arbor_proc_wait_lines(&p, "web.pids", 1);
  assert_int_eq(call(&p, "GET", path, NULL, &j), 200);
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "attributes");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(attrs, "requires")->valuestring,
                      "api, db");
  cJSON_Delete(j);

  assert_int_eq(call(&p, "DELETE", "/api/v1/services/api", NULL, &j), 409);
  assert_string_equal(error_code(j), "in_use");
  assert_non_null(strstr(error_message(j), "web names api"));
  cJSON_Delete(j);
  spec = spec_of(&p, "db", "db", ", \"restart\": \"transient\"");
  assert_int_eq(call(&p, "PUT", "/api/v1/services/db", spec, &j), 400);
  assert_non_null(strstr(error_message(j), "must stay permanent"));
  cJSON_Delete(j);
  free(spec);
  spec = spec_of(&p, "db", "db", ", \"after\": [\"web\"]");
  assert_int_eq(call(&p, "PUT", "/api/v1/services/db", spec, &j), 400);
  assert_non_null(strstr(error_message(j), "body: after[0]: \"web\" started after db"));
  cJSON_Delete(j);
  free(spec);
  assert_int_eq(arbor_proc_lines(&p, "db.pids"), 1);
  assert_int_eq(arbor_proc_lines(&p, "api.pids"), 1);
  /* Once web (nothing names it) is removed, api may go too. */
  assert_int_eq(call(&p, "DELETE", "/api/v1/services/web", NULL, &j), 202);
  cJSON_Delete(j);
  assert_int_eq(call(&p, "DELETE", "/api/v1/services/api", NULL, &j), 202);
  cJSON_Delete(j);
  arbor_proc_wait_text(&p, "order", "web\n");
  arbor_proc_wait_text(&p, "order", "api\n");
  stop(&p);
}

/* ------------------------------------------------------------- arbor ctl */

/* `arbor ctl add|update|remove` against the daemon: exit 0 and one line each;
 * a refusal exits 1 quoting the server, and changes nothing. */
static void live_ctl_add_update_remove(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"one", NULL};
  start_with(&p, names);
  char *spec = spec_of(&p, "two", "two", "");
  arbor_proc_write(&p, "two.json", spec);
  free(spec);
  spec = spec_of(&p, "two", "two_v2", "");
  arbor_proc_write(&p, "two_v2.json", spec);
  free(spec);
  arbor_proc_write(&p, "bad.json", "{\"service\": \"three\", \"argv\": []}");
  char two[512], two_v2[512], bad[512];
  snprintf(two, sizeof two, "%s", arbor_proc_path(&p, "two.json"));
  snprintf(two_v2, sizeof two_v2, "%s", arbor_proc_path(&p, "two_v2.json"));
  snprintf(bad, sizeof bad, "%s", arbor_proc_path(&p, "bad.json"));
  char *out = NULL, *err = NULL;

  char *add[] = {"arbor", "ctl", "--url", p.base, "--token", TOKEN, "add", two, NULL};
  assert_int_eq(arbor_proc_run(&p, add, &out, &err), 0);
  assert_non_null(strstr(out, "service two added (id "));
  free(out);
  free(err);
  arbor_proc_wait_lines(&p, "two.pids", 1);

  char *upd[] = {"arbor", "ctl", "--url", p.base, "--token", TOKEN, "update", "two", two_v2,
                 NULL};
  assert_int_eq(arbor_proc_run(&p, upd, &out, &err), 0);
  assert_non_null(strstr(out, "service two: restarting with the new spec (id "));
  free(out);
  free(err);
  arbor_proc_wait_lines(&p, "two_v2.pids", 1);

  char *badadd[] = {"arbor", "ctl", "--url", p.base, "--token", TOKEN, "add", bad, NULL};
  assert_int_eq(arbor_proc_run(&p, badadd, &out, &err), 1);
  assert_non_null(strstr(err, "arbor ctl: add: bad spec (400): body: argv: expected a "
                              "non-empty array of strings"));
  free(out);
  free(err);
  char *notoken[] = {"arbor", "ctl", "--url", p.base, "remove", "two", NULL};
  assert_int_eq(arbor_proc_run(&p, notoken, &out, &err), 1);
  assert_non_null(strstr(err, "unauthorized (401)"));
  free(out);
  free(err);

  char *rm[] = {"arbor", "ctl", "--url", p.base, "--token", TOKEN, "remove", "two", NULL};
  assert_int_eq(arbor_proc_run(&p, rm, &out, &err), 0);
  assert_non_null(strstr(out, "service two: removing (id "));
  free(out);
  free(err);
  arbor_proc_wait_text(&p, "order", "two\n");
  char set[256];
  do {
    live_set(&p, set, sizeof set);
  } while (strcmp(set, "one ") != 0);
  stop(&p);
}

/* ---------------------------------------------------------------- reload */

/* Live changes last until the next reload: the file wins. */
static void live_changes_are_undone_by_a_reload(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  const char *names[] = {"kept", "removed", "updated", NULL};
  start_with(&p, names);
  double upd_id = 0, r = 0, id = 0;
  char st[32];
  assert_true(service_state(&p, "updated", &upd_id, &r, st, sizeof st));
  cJSON *j = NULL;
  char *spec = spec_of(&p, "added", "added", "");
  assert_int_eq(call(&p, "POST", "/api/v1/services", spec, &j), 201);
  cJSON_Delete(j);
  free(spec);
  assert_int_eq(call(&p, "DELETE", "/api/v1/services/removed", NULL, &j), 202);
  cJSON_Delete(j);
  spec = spec_of(&p, "updated", "updated_v2", "");
  assert_int_eq(call(&p, "PUT", "/api/v1/services/updated", spec, &j), 202);
  cJSON_Delete(j);
  free(spec);
  arbor_proc_wait_lines(&p, "added.pids", 1);
  arbor_proc_wait_lines(&p, "updated_v2.pids", 1);
  arbor_proc_wait_text(&p, "order", "removed\n");

  arbor_proc_kill(&p, SIGHUP);   /* the file is as it was */
  arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 1 restarted, 1 added, 1 removed");
  arbor_proc_wait_text(&p, "order", "added\n");   /* not in the file: stopped */
  arbor_proc_wait_lines(&p, "removed.pids", 2);   /* in the file: back */
  arbor_proc_wait_lines(&p, "updated.pids", 2);   /* the file's spec again */
  char set[256];
  do {
    live_set(&p, set, sizeof set);
  } while (strstr(set, "added ") != NULL);
  assert_non_null(strstr(set, "kept "));
  assert_non_null(strstr(set, "removed "));
  assert_non_null(strstr(set, "updated "));
  assert_true(service_state(&p, "updated", &id, &r, st, sizeof st));
  assert_true(id == upd_id);     /* the same node throughout */
  assert_true(r == 2);
  assert_int_eq(arbor_proc_lines(&p, "kept.pids"), 1);
  stop(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(live_add_process_service_is_started_and_in_the_tree),
    cmocka_unit_test(live_add_bad_specs_are_refused_and_change_nothing),
    cmocka_unit_test(live_update_restarts_with_the_new_spec_keeping_the_id),
    cmocka_unit_test(live_remove_stops_the_service_and_drops_it),
    cmocka_unit_test(live_changes_need_the_token),
    cmocka_unit_test(live_requires_is_checked_against_the_running_services),
    cmocka_unit_test(live_ctl_add_update_remove),
    cmocka_unit_test(live_changes_are_undone_by_a_reload),
};

ARBOR_TEST_MAIN(tests)
