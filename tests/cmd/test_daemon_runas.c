/* tests/cmd/test_daemon_runas.c - the config's execution keys (cmd/config_exec.c):
 * user, group, groups, umask, rlimits, env_file, through the built `arbor`: a
 * service runs as the config says and the node detail shows it; a reload
 * restarts it when they change; bad values and what arbor not root may not do
 * are refused at load, the key path named, nothing started.
 *
 * Switching to nobody needs root (CI runs as root): without it the tests that
 * need it skip and say why; the "not root" refusal is checked as root from a
 * child that drops to nobody before it runs `arbor run --check`. */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arbor_proc.h"

#define assert_contains(hay, needle)                                                   \
  do {                                                                                 \
    const char *h_ = (hay), *n_ = (needle);                                            \
    if (h_ == NULL || strstr(h_, n_) == NULL) {                                        \
      print_error("\"%s\" does not contain \"%s\"\n", h_ != NULL ? h_ : "(null)", n_); \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

static int skip_unless_root(const char *why) {
  if (geteuid() == 0)
    return 0;
  print_message("skipped: needs root (%s); arbor runs as uid %u\n", why, (unsigned)geteuid());
  return 1;
}

/* GET path as JSON; NULL unless 200. */
static cJSON *get_json(struct arbor_proc *p, const char *path) {
  char *body = NULL;
  long status = arbor_proc_http(p, "GET", path, &body);
  cJSON *j = status == 200 ? cJSON_Parse(body) : NULL;
  free(body);
  return j;
}

/* The id of the service named name, from the tree. */
static double service_id(struct arbor_proc *p, const char *name) {
  cJSON *tree = get_json(p, "/api/v1/tree?depth=8");
  assert_non_null(tree);
  double id = 0;
  const cJSON *stack[64];
  size_t n = 0;
  stack[n++] = cJSON_GetObjectItemCaseSensitive(tree, "root");
  while (n > 0 && id == 0) {
    const cJSON *node = stack[--n];
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(node, "name");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(node, "kind");
    if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0 && cJSON_IsString(k) &&
        strcmp(k->valuestring, "service") == 0)
      id = cJSON_GetObjectItemCaseSensitive(node, "id")->valuedouble;
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "nodes");
    for (const cJSON *c = kids != NULL ? kids->child : NULL; c != NULL && n < 64; c = c->next)
      stack[n++] = c;
  }
  cJSON_Delete(tree);
  assert_true(id > 0);
  return id;
}

/* A service script: what it sees into DIR/NAME.out (whole: renamed into
 * place), then it runs until DIR/stop exists, the directory is gone, or 60 s. */
static const char *watch_argv(struct arbor_proc *p, const char *name, const char *what) {
  static char buf[2048];
  snprintf(buf, sizeof buf,
           "[\"sh\", \"-c\", \"cd %s && { %s ; } > %s.tmp && mv %s.tmp %s.out; i=0; "
           "while [ $i -lt 1200 ] && [ -d %s ] && [ ! -e %s/stop ]; do sleep 0.05; "
           "i=$((i+1)); done\"]",
           p->dir, what, name, name, name, p->dir, p->dir);
  return buf;
}

/* ---------------------------------------------------------------- running */

/* A service with every key runs as the config says; the node detail says it
 * too; a changed umask restarts it on reload, an edited env file does not (it
 * is read at the next start). */
static void daemon_runas_service_runs_as_configured(void **state) {
  if (skip_unless_root("setuid to nobody"))
    skip();
  struct passwd *pw = getpwnam("nobody");
  assert_non_null(pw);
  unsigned uid = (unsigned)pw->pw_uid;
  struct arbor_proc p;
  arbor_proc_init(&p);
  assert_int_eq(chmod(p.dir, 0777), 0);   /* nobody writes its report there */
  arbor_proc_write(&p, "api.env", "# the service's settings\nFOO='from file'\n");
  char cfg[4096];
  const char *what = "id -u; umask; ulimit -Sn; ulimit -Hn; ulimit -c; echo $FOO";
  snprintf(cfg, sizeof cfg,
           "{\"tree\": [{\"service\": \"api\", \"argv\": %s, \"user\": \"nobody\", "
           "\"umask\": \"0027\", \"rlimits\": {\"nofile\": {\"soft\": 100, \"hard\": 200}, "
           "\"core\": 0}, \"env_file\": \"api.env\"}]}",
           watch_argv(&p, "api", what));
  arbor_proc_write(&p, "arbor.json", cfg);
  char *argv[] = {"arbor", "run", "arbor.json", "--port", "0", NULL};
  arbor_proc_start(&p, argv, NULL);
  if (arbor_proc_read_url(&p) < 0) {
    char *err = arbor_proc_read(&p, "stderr");
    print_error("arbor printed no URL; stderr:\n%s\n", err != NULL ? err : "");
    free(err);
    fail();
  }
  char want[256];
  snprintf(want, sizeof want, "%u\n0027\n100\n200\n0\nfrom file\n", uid);
  arbor_proc_wait_text(&p, "api.out", "\n");
  char *out = arbor_proc_read(&p, "api.out");
  assert_string_equal(out, want);
  free(out);

  char path[64];
  snprintf(path, sizeof path, "/api/v1/nodes/%.0f", service_id(&p, "api"));
  cJSON *node = get_json(&p, path);
  assert_non_null(node);
  const cJSON *ex = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(node, "service"), "exec");
  assert_non_null(ex);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(ex, "user")->valuestring, "nobody");
  assert_true(cJSON_GetObjectItemCaseSensitive(ex, "uid")->valuedouble == uid);
  assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(ex, "groups")));
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(ex, "umask")->valuestring, "0027");
  const cJSON *nofile = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(ex, "rlimits"), "nofile");
  assert_true(cJSON_GetObjectItemCaseSensitive(nofile, "soft")->valuedouble == 100);
  assert_true(cJSON_GetObjectItemCaseSensitive(nofile, "hard")->valuedouble == 200);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(ex, "env_file")->valuestring,
                      arbor_proc_path(&p, "api.env"));
  cJSON_Delete(node);

  /* The env file alone changed: the config did not, nothing restarts. */
  arbor_proc_write(&p, "api.env", "FOO=edited\n");
  arbor_proc_kill(&p, SIGHUP);
  arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 0 restarted, 0 added, 0 removed");
  /* A new umask: restarted, and the new run reads the edited env file. */
  unlink(arbor_proc_path(&p, "api.out"));
  char *at = strstr(cfg, "\"0027\"");
  memcpy(at, "\"0077\"", 6);
  arbor_proc_write(&p, "arbor.json", cfg);
  arbor_proc_kill(&p, SIGHUP);
  arbor_proc_wait_text(&p, "stderr", "arbor: reloaded: 1 restarted, 0 added, 0 removed");
  arbor_proc_wait_text(&p, "api.out", "\n");
  out = arbor_proc_read(&p, "api.out");
  snprintf(want, sizeof want, "%u\n0077\n100\n200\n0\nedited\n", uid);
  assert_string_equal(out, want);
  free(out);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

/* ---------------------------------------------------------------- refusals */

/* `arbor run --check CONFIG`: its stderr and exit status. */
static int check_config(struct arbor_proc *p, const char *json, char **err) {
  arbor_proc_write(p, "bad.json", json);
  char *out = NULL;
  char *argv[] = {"arbor", "run", "--check", "bad.json", NULL};
  int rc = arbor_proc_run(p, argv, &out, err);
  free(out);
  return rc;
}

static void expect_refused(struct arbor_proc *p, const char *keys, const char *want) {
  char json[2048], full[1024];
  snprintf(json, sizeof json, "{\"tree\": [{\"service\": \"api\", \"argv\": [\"true\"], %s}]}",
           keys);
  snprintf(full, sizeof full, "arbor: bad.json: tree[0].%s\n", want);
  char *err = NULL;
  int rc = check_config(p, json, &err);
  if (strcmp(err, full) != 0)
    print_error("stderr:\n%s\nwanted:\n%s\n", err, full);
  assert_string_equal(err, full);
  assert_int_eq(rc, 2);
  free(err);
}

/* Each bad value is refused at load with its key path; nothing starts. */
static void daemon_runas_bad_values_name_the_key(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  expect_refused(&p, "\"user\": \"no-such-user-arbor\"",
                 "user: no user named \"no-such-user-arbor\"");
  expect_refused(&p, "\"user\": \"\"", "user: expected a user name or a number");
  expect_refused(&p, "\"group\": \"no-such-group-arbor\"",
                 "group: no group named \"no-such-group-arbor\"");
  expect_refused(&p, "\"groups\": [\"root\", true]", "groups[1]: expected a group name or a number");
  expect_refused(&p, "\"umask\": 27",
                 "umask: expected a string of octal digits from \"0000\" to \"0777\", such as "
                 "\"0027\" (not a number: JSON numbers are decimal, so 27 would mean octal 033)");
  expect_refused(&p, "\"umask\": \"0981\"",
                 "umask: expected a string of octal digits from \"0000\" to \"0777\", such as "
                 "\"0027\"");
  expect_refused(&p, "\"rlimits\": {\"nofile\": -1}",
                 "rlimits.nofile: expected an integer, \"unlimited\" or {\"soft\": N, \"hard\": N}");
  expect_refused(&p, "\"rlimits\": {\"nofile\": {\"soft\": 10}}",
                 "rlimits.nofile: expected {\"soft\": N, \"hard\": N}, each an integer or "
                 "\"unlimited\"");
  expect_refused(&p, "\"rlimits\": {\"nofile\": {\"soft\": 10, \"hard\": 5}}",
                 "rlimits.nofile: soft limit 10 above the hard limit 5");
  expect_refused(&p, "\"rlimits\": {\"files\": 5}",
                 "rlimits: unknown resource \"files\" (expected one of: as, core, cpu, data, "
                 "fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, "
                 "sigpending, stack)");
  char want[1024];
  snprintf(want, sizeof want, "env_file: %s: No such file or directory",
           arbor_proc_path(&p, "missing.env"));
  expect_refused(&p, "\"env_file\": \"missing.env\"", want);
  arbor_proc_write(&p, "bad.env", "A=1\n\nnot an assignment\n");
  snprintf(want, sizeof want, "env_file: %s line 3: expected NAME=VALUE",
           arbor_proc_path(&p, "bad.env"));
  expect_refused(&p, "\"env_file\": \"bad.env\"", want);
  /* A good one passes. */
  arbor_proc_write(&p, "good.env", "A=1\n");
  char *err = NULL;
  assert_int_eq(check_config(&p, "{\"tree\": [{\"service\": \"api\", \"argv\": [\"true\"], "
                                  "\"umask\": \"022\", \"rlimits\": {\"core\": \"unlimited\", "
                                  "\"nofile\": 1024}, \"env_file\": \"good.env\"}]}",
                             &err),
                0);
  assert_string_equal(err, "");
  free(err);
  arbor_proc_cleanup(&p);
}

/* arbor not root: a config naming another user is refused at load, the
 * message saying why. As root, a child drops to nobody and runs --check. */
static void daemon_runas_not_root_refused_with_clear_message(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  assert_int_eq(chmod(p.dir, 0755), 0);
  arbor_proc_write(&p, "bad.json", "{\"tree\": [{\"service\": \"api\", \"argv\": [\"true\"], "
                                   "\"user\": \"root\"}]}");
  struct passwd *pw = getpwnam("nobody");
  assert_non_null(pw);
  uid_t as = geteuid() == 0 ? pw->pw_uid : geteuid();
  char exe[PATH_MAX], bin[PATH_MAX + 16];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  assert_true(n > 0);
  exe[n] = '\0';
  snprintf(bin, sizeof bin, "%s/../../arbor", dirname(exe));
  int fds[2];
  assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    if (geteuid() == 0 &&
        (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
      _exit(100);
    if (chdir(p.dir) < 0)
      _exit(101);
    execl(bin, "arbor", "run", "--check", "bad.json", (char *)NULL);
    _exit(102);
  }
  close(fds[1]);
  char err[1024];
  size_t used = 0;
  ssize_t r;
  while (used < sizeof err - 1 && (r = read(fds[0], err + used, sizeof err - 1 - used)) > 0)
    used += (size_t)r;
  err[used] = '\0';
  close(fds[0]);
  int status;
  assert_int_eq(waitpid(pid, &status, 0), pid);
  char want[512];
  snprintf(want, sizeof want,
           "arbor: bad.json: tree[0].user: arbor runs as uid %u, not root: it cannot run \"api\" "
           "as user \"root\"\n",
           (unsigned)as);
  assert_string_equal(err, want);
  assert_true(WIFEXITED(status));
  assert_int_eq(WEXITSTATUS(status), 2);
  arbor_proc_cleanup(&p);
}

/* A live add (POST /api/v1/services) is checked as the file is: 400 with the
 * key named, nothing added. */
static void daemon_runas_live_add_refused_naming_the_key(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  arbor_proc_write(&p, "arbor.json", "{\"admin\": {\"token\": \"t0ken\"}, \"tree\": []}");
  char *argv[] = {"arbor", "run", "arbor.json", "--port", "0", NULL};
  arbor_proc_start(&p, argv, NULL);
  assert_int_eq(arbor_proc_read_url(&p), 0);
  char missing[512];
  snprintf(missing, sizeof missing, "body: env_file: %s: No such file or directory",
           arbor_proc_path(&p, "missing.env"));
  static const char *const bodies[] = {
      "{\"service\": \"x\", \"argv\": [\"true\"], \"user\": \"no-such-user-arbor\"}",
      "{\"service\": \"x\", \"argv\": [\"true\"], \"umask\": 18}",
      "{\"service\": \"x\", \"argv\": [\"true\"], \"env_file\": \"missing.env\"}",
  };
  const char *want[] = {"body: user: no user named \"no-such-user-arbor\"",
                        "body: umask: expected a string of octal digits", missing};
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    char *resp = NULL;
    long status = arbor_proc_http_send(&p, "POST", "/api/v1/services", "t0ken", bodies[i], &resp);
    cJSON *j = resp != NULL ? cJSON_Parse(resp) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"),
                                                      "message");
    if (status != 400 || !cJSON_IsString(m) || strstr(m->valuestring, want[i]) == NULL)
      print_error("case %zu: %ld %s\n", i, status, resp != NULL ? resp : "");
    assert_int_eq(status, 400);
    assert_true(cJSON_IsString(m));
    assert_contains(m->valuestring, want[i]);
    cJSON_Delete(j);
    free(resp);
  }
  cJSON *tree = get_json(&p, "/api/v1/tree?depth=8");
  assert_non_null(tree);
  char *text = cJSON_PrintUnformatted(tree);
  assert_null(strstr(text, "\"name\":\"x\""));   /* nothing was added */
  free(text);
  cJSON_Delete(tree);
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(daemon_runas_service_runs_as_configured),
    cmocka_unit_test(daemon_runas_bad_values_name_the_key),
    cmocka_unit_test(daemon_runas_not_root_refused_with_clear_message),
    cmocka_unit_test(daemon_runas_live_add_refused_naming_the_key),
};

ARBOR_TEST_MAIN(tests)
