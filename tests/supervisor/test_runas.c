/* tests/supervisor/test_runas.c - how a process service's program is executed
 * (supervisor/runas.c, envfile.c, exec/arbor_exec.c): as another user with
 * supplementary groups, with a umask and resource limits, with an environment
 * file; the refusals (an unknown user, arbor not root); arbor-exec alone (bad
 * arguments, exec failures and their exit statuses).
 *
 * The tests that switch users need root (CI and this machine run them as root):
 * without it they skip and say why. The "not root" refusal is tested as root
 * too, from a child process that drops to nobody first.
 *
 * Programs are /bin/sh scripts writing what they see to a file of the test's
 * directory (written to NAME.tmp, then renamed, so a file that exists is
 * whole); the test drives the loop until it appears. Long-running scripts end by
 * themselves when the directory goes, or after about 30 s.
 */
#include "harness.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define assert_contains(hay, needle)                                                   \
  do {                                                                                 \
    const char *h_ = (hay), *n_ = (needle);                                            \
    if (h_ == NULL || strstr(h_, n_) == NULL) {                                        \
      print_error("\"%s\" does not contain \"%s\"\n", h_ != NULL ? h_ : "(null)", n_); \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

/* ------------------------------------------------------------------ helpers */

/* build/<variant>/arbor-exec, from this program's build/<variant>/tests/supervisor/. */
static const char *helper_path(void) {
  static char path[PATH_MAX + 16];
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  assert_true(n > 0);
  self[n] = '\0';
  for (int i = 0; i < 3; i++)
    *strrchr(self, '/') = '\0';
  snprintf(path, sizeof path, "%s/arbor-exec", self);
  assert_int_eq(access(path, X_OK), 0);
  return path;
}

static void open_rt(uv_loop_t *loop, arbor_runtime_t **rt) {
  arbor_test_open(loop, rt, &(arbor_runtime_opts_t){.exec_helper = helper_path()});
}

/* A test directory everybody may write to (a program run as nobody writes
 * there; /tmp's mkdtemp makes it 0700). */
static void open_tmp(arbor_test_tmp_t *t, const char *tag) {
  arbor_test_tmp_open(t, tag);
  assert_int_eq(chmod(t->dir, 0777), 0);
}

/* DIR/name's content (malloc'd), or NULL while it is not there. */
static char *read_text(arbor_test_tmp_t *t, const char *name) {
  FILE *f = fopen(arbor_test_tmp_file(t, name), "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 4096);
  assert_non_null(buf);
  size_t n = fread(buf, 1, 4095, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void write_text(arbor_test_tmp_t *t, const char *name, const char *text) {
  FILE *f = fopen(arbor_test_tmp_file(t, name), "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int exists(arbor_test_tmp_t *t, const char *name) {
  return access(arbor_test_tmp_file(t, name), F_OK) == 0;
}

/* sh -c 'SCRIPT > DIR/out.tmp && mv DIR/out.tmp DIR/out' */
static char **script_argv(arbor_test_tmp_t *t, const char *script) {
  static char cmd[1024];
  static char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  snprintf(cmd, sizeof cmd, "cd '%s' && { %s ; } > out.tmp && mv out.tmp out", t->dir, script);
  return argv;
}

/* Runs an unsupervised process service to its end; returns it. */
static arbor_node_t *run_once(uv_loop_t *loop, arbor_runtime_t *rt,
                              const arbor_service_spec_t *spec) {
  arbor_node_t *svc = NULL;
  assert_code(arbor_service_add(arbor_root(rt), spec, &svc), 0);
  arbor_test_run_once_until(loop, arbor_node_is_finished(svc));
  return svc;
}

/* The service's error chain as text. */
static const char *chain_text(const arbor_node_t *svc) {
  static char buf[4096];
  const arbor_error_t *e = arbor_node_error(svc);
  assert_non_null(e);
  arbor_error_format(e, buf, sizeof buf);
  return buf;
}

static int skip_unless_root(const char *why) {
  if (geteuid() == 0)
    return 0;
  print_message("skipped: needs root (%s); arbor runs as uid %u\n", why, (unsigned)geteuid());
  return 1;
}

/* A group nobody is not in, by name, for the supplementary group tests. */
static const char *some_group(gid_t *gid) {
  static const char *const names[] = {"adm", "daemon", "users", "sys", "bin", NULL};
  for (size_t i = 0; names[i] != NULL; i++) {
    struct group *g = getgrnam(names[i]);
    if (g != NULL) {
      *gid = g->gr_gid;
      return names[i];
    }
  }
  fail_msg("none of adm, daemon, users, sys, bin exists");
  return NULL;
}

/* ------------------------------------------------------------- run as */

/* As root: a program run as nobody, with a supplementary group, has nobody's
 * uid and primary group, and that group beside nobody's own. */
static void runas_user_nobody_with_supplementary_group(void **state) {
  if (skip_unless_root("setuid to nobody"))
    skip();
  struct passwd *pw = getpwnam("nobody");
  assert_non_null(pw);
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid, extra = 0;
  const char *extra_name = some_group(&extra);
  arbor_test_tmp_t t;
  open_tmp(&t, "runas");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  char *groups[] = {(char *)extra_name, NULL};
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "as-nobody", .argv = script_argv(&t, "id -u; id -g; id -G"), .user = "nobody",
      .groups = groups});
  assert_outcome(svc, OK);
  char *out = read_text(&t, "out");
  char want[256];
  snprintf(want, sizeof want, "%u\n%u\n", (unsigned)uid, (unsigned)gid);
  assert_non_null(out);
  assert_int_eq(strncmp(out, want, strlen(want)), 0);
  /* id -G: the primary group first, then the supplementary ones. */
  char extra_txt[32];
  snprintf(extra_txt, sizeof extra_txt, " %u", (unsigned)extra);
  assert_contains(out + strlen(want), extra_txt);
  free(out);

  arbor_exec_info_t ei;
  assert_code(arbor_service_exec_info(svc, &ei), 0);
  assert_int_eq(ei.enabled, 1);
  assert_string_equal(ei.user, "nobody");
  assert_int_eq(ei.uid, uid);
  assert_int_eq(ei.gid, gid);
  assert_int_eq(ei.groups_set, 1);
  int seen = 0;
  for (size_t i = 0; i < ei.ngroups; i++)
    seen |= ei.groups[i] == extra;
  assert_true(seen);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* group alone: the program keeps arbor's uid, with that gid. */
static void runas_group_alone_keeps_uid(void **state) {
  if (skip_unless_root("setgid"))
    skip();
  gid_t gid = 0;
  const char *name = some_group(&gid);
  arbor_test_tmp_t t;
  open_tmp(&t, "runas");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "as-group", .argv = script_argv(&t, "id -u; id -g"), .group = name});
  assert_outcome(svc, OK);
  char *out = read_text(&t, "out"), want[64];
  snprintf(want, sizeof want, "0\n%u\n", (unsigned)gid);
  assert_non_null(out);
  assert_string_equal(out, want);
  free(out);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* umask: what the program reports, and the mode of a file it creates. */
static void runas_umask_applies_to_created_files(void **state) {
  arbor_test_tmp_t t;
  open_tmp(&t, "umask");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "umask", .argv = script_argv(&t, "umask; touch made"), .umask_set = 1,
      .umask = 027});
  assert_outcome(svc, OK);
  char *out = read_text(&t, "out");
  assert_non_null(out);
  assert_string_equal(out, "0027\n");
  free(out);
  struct stat st;
  assert_int_eq(stat(arbor_test_tmp_file(&t, "made"), &st), 0);
  assert_int_eq(st.st_mode & 0777, 0640);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* rlimits: soft and hard limits of nofile and core, as the program sees them. */
static void runas_rlimits_soft_and_hard(void **state) {
  arbor_test_tmp_t t;
  open_tmp(&t, "rlimit");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  struct rlimit cur;
  assert_int_eq(getrlimit(RLIMIT_CORE, &cur), 0);
  const arbor_rlimit_t limits[] = {{"nofile", 100, 200}, {"core", 0, 0}};
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "limits", .argv = script_argv(&t, "ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc"),
      .rlimits = limits, .nrlimits = 2});
  assert_outcome(svc, OK);
  char *out = read_text(&t, "out");
  assert_non_null(out);
  assert_string_equal(out, "100\n200\n0\n0\n");
  free(out);
  arbor_exec_info_t ei;
  assert_code(arbor_service_exec_info(svc, &ei), 0);
  assert_int_eq(ei.nrlimits, 2);
  assert_string_equal(ei.rlimits[0].name, "nofile");
  assert_uint_eq(ei.rlimits[1].hard, 0);
  assert_int_eq(ei.uid, -1);
  assert_int_eq(ei.umask, -1);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A limit the kernel refuses even root (nofile above fs.nr_open): the run fails
 * and its chain quotes arbor-exec's line naming the limit. */
static void runas_refused_rlimit_named_in_chain(void **state) {
  if (skip_unless_root("a hard limit above arbor's is refused at add otherwise"))
    skip();
  arbor_test_tmp_t t;
  open_tmp(&t, "rlimit");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  const arbor_rlimit_t limits[] = {{"nofile", 1u << 30, 1u << 30}};
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "too-many", .argv = script_argv(&t, "true"), .rlimits = limits, .nrlimits = 1});
  assert_outcome(svc, FAILED);
  const char *chain = chain_text(svc);
  assert_contains(chain, "exited with status 125");
  assert_contains(chain, "arbor-exec: setrlimit nofile=1073741824:1073741824: Operation not "
                         "permitted");
  assert_false(exists(&t, "out"));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* Through the helper the program is still the process arbor spawned (same pid)
 * and keeps its notify_fd: readiness arrives as without the helper. */
static void runas_helper_keeps_pid_and_notify_fd(void **state) {
  arbor_test_tmp_t t;
  open_tmp(&t, "notify");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "echo $$ > '%s/pid.tmp' && mv '%s/pid.tmp' '%s/pid' && echo ready >&3 && "
           "i=0; while [ $i -lt 600 ] && [ -d '%s' ] && [ ! -e '%s/stop' ]; do sleep 0.05; "
           "i=$((i+1)); done",
           t.dir, t.dir, t.dir, t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  arbor_node_t *svc = NULL;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "notify", .argv = argv,
                                                        .notify_fd = 3, .umask_set = 1,
                                                        .umask = 077},
                                &svc),
              0);
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  arbor_service_info_t si;
  assert_code(arbor_service_info(svc, &si), 0);
  char *pid = NULL;
  arbor_test_run_ticking_until(&loop, (free(pid), (pid = read_text(&t, "pid")) != NULL));
  assert_int_eq(atoi(pid), si.pid);
  free(pid);
  arbor_test_tmp_touch(&t, "stop");
  assert_code(arbor_node_cancel(svc), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, CANCELLED);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* ----------------------------------------------------------------- env file */

/* Comments, blanks, export, quotes and escapes; a later name wins; the file's
 * variables are set over the spec's env (systemd's EnvironmentFile= order). */
static void runas_env_file_syntax_and_precedence(void **state) {
  arbor_test_tmp_t t;
  open_tmp(&t, "envfile");
  write_text(&t, "app.env",
             "# a comment\n"
             "   ; another\n"
             "\n"
             "PLAIN=one two  \n"
             "  SPACED = three\n"
             "export EXPORTED=4\n"
             "SINGLE='a \"b\" $HOME \\n'\n"
             "DOUBLE=\"x \\\"y\\\" \\$z \\\\ \\q\"\n"
             "HASH=a#b\n"
             "EMPTY=\n"
             "TWICE=first\n"
             "TWICE=second\n"
             "FROM_FILE=file\r\n");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  char *env[] = {"FROM_FILE=spec", "ONLY_SPEC=kept", "PATH=/usr/bin:/bin", NULL};
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", arbor_test_tmp_file(&t, "app.env"));
  arbor_node_t *svc = run_once(
      &loop, rt,
      &(arbor_service_spec_t){
          .name = "envfile",
          .argv = script_argv(&t, "printf '%s|' \"$PLAIN\" \"$SPACED\" \"$EXPORTED\" \"$SINGLE\" "
                                  "\"$DOUBLE\" \"$HASH\" \"${EMPTY-unset}\" \"$TWICE\" "
                                  "\"$FROM_FILE\" \"$ONLY_SPEC\""),
          .env = env,
          .env_file = path});
  assert_outcome(svc, OK);
  char *out = read_text(&t, "out");
  assert_non_null(out);
  assert_string_equal(out, "one two|three|4|a \"b\" $HOME \\n|x \"y\" $z \\ \\q|a#b||second|"
                           "file|kept|");
  free(out);
  arbor_exec_info_t ei;
  assert_code(arbor_service_exec_info(svc, &ei), 0);
  assert_string_equal(ei.env_file, path);
  assert_int_eq(ei.uid, -1);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* The file is read at every start: an edit applies at the next restart. */
static void runas_env_file_read_at_each_start(void **state) {
  arbor_test_tmp_t t;
  open_tmp(&t, "envfile");
  write_text(&t, "app.env", "V=first\n");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  char cmd[1024], path[PATH_MAX];
  snprintf(path, sizeof path, "%s", arbor_test_tmp_file(&t, "app.env"));
  snprintf(cmd, sizeof cmd,
           "cd '%s' && echo \"$V\" >> seen && i=0 && "
           "while [ $i -lt 600 ] && [ -d '%s' ] && [ ! -e stop ]; do sleep 0.05; i=$((i+1)); done",
           t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  arbor_node_t *svc = NULL;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "reread", .argv = argv,
                                                        .env_file = path},
                                &svc),
              0);
  char *seen = NULL;
  arbor_test_run_ticking_until(&loop, (free(seen), (seen = read_text(&t, "seen")) != NULL &&
                                                       strchr(seen, '\n') != NULL));
  assert_string_equal(seen, "first\n");
  write_text(&t, "app.env", "V=second\n");
  assert_code(arbor_service_restart(svc), 0);
  arbor_test_run_ticking_until(&loop, (free(seen), (seen = read_text(&t, "seen")) != NULL &&
                                                       strcmp(seen, "first\n") != 0 &&
                                                       seen[strlen(seen) - 1] == '\n'));
  assert_string_equal(seen, "first\nsecond\n");
  free(seen);
  arbor_test_tmp_touch(&t, "stop");
  assert_code(arbor_node_cancel(svc), 0);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A missing file fails the run (nothing is spawned) and the chain names it. */
static void runas_env_file_missing_fails_run_naming_it(void **state) {
  arbor_test_tmp_t t;
  open_tmp(&t, "envfile");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", arbor_test_tmp_file(&t, "missing.env"));
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "api", .argv = script_argv(&t, "true"), .env_file = path});
  assert_outcome(svc, FAILED);
  assert_code(arbor_error_code(arbor_node_error(svc)), -ENOENT);
  char want[PATH_MAX + 100];
  snprintf(want, sizeof want, "process api: env_file %s: No such file or directory", path);
  assert_string_equal(arbor_error_message(arbor_node_error(svc)), want);
  assert_false(exists(&t, "out"));
  char msg[512];
  assert_code(arbor_service_exec_check(&(arbor_service_spec_t){.name = "api", .env_file = path},
                                       msg, sizeof msg),
              -ENOENT);
  snprintf(want, sizeof want, "env_file: %s: No such file or directory", path);
  assert_string_equal(msg, want);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A line that does not parse fails the run; the error names file and line. */
static void runas_env_file_bad_line_names_the_line(void **state) {
  static const struct {
    const char *text, *why;
  } bad[] = {
      {"A=1\n# ok\ngarbage\n", "line 3: expected NAME=VALUE"},
      {"1A=x\n", "line 1: the name is not a variable name"},
      {"A=1\nB=\"open\n", "line 2: a \" quote is not closed on its line"},
      {"A='x' y\n", "line 1: only blanks may follow a quoted value"},
  };
  arbor_test_tmp_t t;
  open_tmp(&t, "envfile");
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", arbor_test_tmp_file(&t, "bad.env"));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_text(&t, "bad.env", bad[i].text);
    arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
        .name = "api", .argv = script_argv(&t, "true"), .env_file = path});
    assert_outcome(svc, FAILED);
    assert_code(arbor_error_code(arbor_node_error(svc)), ARBOR_EINVAL);
    char want[PATH_MAX + 100];
    snprintf(want, sizeof want, "process api: env_file %s %s", path, bad[i].why);
    assert_contains(arbor_error_message(arbor_node_error(svc)), want);
  }
  /* Not a regular file: refused, not read (a FIFO would block the loop). */
  assert_int_eq(mkfifo(arbor_test_tmp_file(&t, "fifo.env"), 0600), 0);
  snprintf(path, sizeof path, "%s", arbor_test_tmp_file(&t, "fifo.env"));
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "api", .argv = script_argv(&t, "true"), .env_file = path});
  assert_outcome(svc, FAILED);
  assert_contains(arbor_error_message(arbor_node_error(svc)), ": not a regular file");
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* ---------------------------------------------------------------- refusals */

/* Bad names and values are refused at add, the message naming the field. */
static void runas_bad_specs_refused_naming_the_field(void **state) {
  static char *ok[] = {"/bin/true", NULL};
  static char *nogroup[] = {"no-such-group-arbor", NULL};
  static const arbor_rlimit_t unknown[] = {{"files", 1, 1}};
  static const arbor_rlimit_t inverted[] = {{"nofile", 10, 5}};
  static const arbor_rlimit_t twice[] = {{"core", 0, 0}, {"core", 0, 0}};
  static const struct {
    arbor_service_spec_t spec;
    const char *msg;
  } *c, cases[] = {
      {{.argv = ok, .user = "no-such-user-arbor"}, "user: no user named \"no-such-user-arbor\""},
      {{.argv = ok, .user = ""}, "user: empty"},
      {{.argv = ok, .user = "99999999999"}, "user: no user named \"99999999999\""},
      {{.argv = ok, .group = "no-such-group-arbor"},
       "group: no group named \"no-such-group-arbor\""},
      {{.argv = ok, .umask_set = 1, .umask = 01000}, "umask: 01000 is above 0777"},
      {{.argv = ok, .rlimits = unknown, .nrlimits = 1},
       "rlimits: unknown resource \"files\" (expected one of: as, core, cpu, data, fsize, "
       "locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, "
       "stack)"},
      {{.argv = ok, .rlimits = inverted, .nrlimits = 1},
       "rlimits.nofile: soft limit 10 above the hard limit 5"},
      {{.argv = ok, .rlimits = twice, .nrlimits = 2}, "rlimits.core: given twice"},
  };
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  for (c = cases; c < cases + sizeof cases / sizeof cases[0]; c++) {
    char msg[512];
    arbor_node_t *n = NULL;
    assert_code(arbor_service_add(arbor_root(rt), &c->spec, &n), ARBOR_EINVAL);
    assert_null(n);
    assert_code(arbor_service_exec_check(&c->spec, msg, sizeof msg), ARBOR_EINVAL);
    assert_string_equal(msg, c->msg);
  }
  char msg[512];
  arbor_service_spec_t g = {.argv = ok, .groups = nogroup};
  assert_code(arbor_service_exec_check(&g, msg, sizeof msg), ARBOR_EINVAL);
  assert_string_equal(msg, "groups[0]: no group named \"no-such-group-arbor\"");
  /* A numeric uid with no passwd entry has no primary group: name one. */
  arbor_service_spec_t u = {.argv = ok, .user = "4000000001"};
  assert_code(arbor_service_exec_check(&u, msg, sizeof msg), ARBOR_EINVAL);
  assert_contains(msg, "uid 4000000001 has no entry in the user database");
  arbor_node_info_t info;
  arbor_node_info(arbor_root(rt), &info);
  assert_uint_eq(info.children_total, 0);
  arbor_test_close(rt, &loop);
}

/* What arbor not root may not do, checked in the calling process: returns 0 or
 * the number of the first check that failed (a child reports it as its exit
 * status), with what it got in got. */
static int not_root_checks(char *got, size_t size) {
  char *ok[] = {"/bin/true", NULL};
  char *root_group[] = {"root", NULL};
  struct passwd *self = getpwuid(geteuid());
  char me[64], want[256];
  snprintf(me, sizeof me, "%u", (unsigned)geteuid());
  struct rlimit cur;
  getrlimit(RLIMIT_NOFILE, &cur);
  const arbor_rlimit_t above[] = {{"nofile", cur.rlim_cur, ARBOR_RLIMIT_INFINITY}};
  const arbor_rlimit_t below[] = {{"nofile", 64, 64}};
  int rc = arbor_service_exec_check(&(arbor_service_spec_t){.name = "api", .argv = ok,
                                                            .user = "root"},
                                    got, size);
  snprintf(want, sizeof want,
           "user: arbor runs as uid %u, not root: it cannot run \"api\" as user \"root\"",
           (unsigned)geteuid());
  if (rc != ARBOR_EPERM || strcmp(got, want) != 0)
    return 1;
  rc = arbor_service_exec_check(&(arbor_service_spec_t){.name = "api", .argv = ok,
                                                       .group = "root"},
                                got, size);
  if (rc != ARBOR_EPERM || strstr(got, "group: arbor runs as uid ") != got ||
      strstr(got, "not root: it cannot run \"api\" as group \"root\"") == NULL)
    return 2;
  rc = arbor_service_exec_check(&(arbor_service_spec_t){.name = "api", .argv = ok,
                                                       .groups = root_group},
                                got, size);
  if (rc != ARBOR_EPERM || strstr(got, "cannot give \"api\" supplementary groups") == NULL)
    return 3;
  if (cur.rlim_max != RLIM_INFINITY) {
    rc = arbor_service_exec_check(&(arbor_service_spec_t){.name = "api", .argv = ok,
                                                         .rlimits = above, .nrlimits = 1},
                                  got, size);
    if (rc != ARBOR_EPERM || strstr(got, "rlimits.nofile: arbor runs as uid ") != got)
      return 4;
  }
  /* Its own user (by name and by number) and lower limits: accepted. */
  if (self != NULL &&
      arbor_service_exec_check(&(arbor_service_spec_t){.argv = ok, .user = self->pw_name}, got,
                               size) != 0)
    return 5;
  if (arbor_service_exec_check(&(arbor_service_spec_t){.argv = ok, .user = me, .group = "0"},
                               got, size) != ARBOR_EPERM ||
      arbor_service_exec_check(&(arbor_service_spec_t){.argv = ok, .rlimits = below,
                                                       .nrlimits = 1},
                               got, size) != 0)
    return 6;
  /* arbor_service_add refuses it too, and nothing is added. */
  uv_loop_t loop;
  arbor_runtime_t *rt;
  if (uv_loop_init(&loop) != 0 || arbor_runtime_new(&rt, &loop, NULL) != 0)
    return 7;
  arbor_node_t *n = NULL;
  rc = arbor_service_add(arbor_root(rt), &(arbor_service_spec_t){.argv = ok, .user = "root"}, &n);
  int closed = 0;
  arbor_runtime_close(rt, arbor_test_close_cb_, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (rc != ARBOR_EPERM || n != NULL || !closed || uv_loop_close(&loop) != 0)
    return 8;
  return 0;
}

/* arbor not root: another user, group, supplementary groups or a higher hard
 * limit are refused with ARBOR_EPERM and a message that says arbor is not root.
 * As root, a child process drops to nobody and checks; not root, the test
 * checks in place. */
static void runas_not_root_refused_with_clear_message(void **state) {
  char got[512] = "";
  if (geteuid() != 0) {
    int failed = not_root_checks(got, sizeof got);
    if (failed != 0)
      print_error("check %d failed: %s\n", failed, got);
    assert_int_eq(failed, 0);
    return;
  }
  struct passwd *pw = getpwnam("nobody");
  assert_non_null(pw);
  int fds[2];
  assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
      _exit(100);
    int failed = not_root_checks(got, sizeof got);
    if (write(fds[1], got, strlen(got)) < 0)
      _exit(101);
    _exit(failed);
  }
  close(fds[1]);
  ssize_t n = read(fds[0], got, sizeof got - 1);
  got[n > 0 ? n : 0] = '\0';
  close(fds[0]);
  int status;
  assert_int_eq(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  if (WEXITSTATUS(status) != 0)
    print_error("check %d failed; last message: %s\n", WEXITSTATUS(status), got);
  assert_int_eq(WEXITSTATUS(status), 0);
}

/* ----------------------------------------------------------- arbor-exec */

/* Runs arbor-exec with args; its exit status and stderr. */
static int run_helper(char *const *args, char *err, size_t size) {
  int fds[2];
  assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execv(args[0], args);
    _exit(99);
  }
  close(fds[1]);
  size_t used = 0;
  ssize_t n;
  while (used < size - 1 && (n = read(fds[0], err + used, size - 1 - used)) > 0)
    used += (size_t)n;
  err[used] = '\0';
  close(fds[0]);
  int status;
  assert_int_eq(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/* Bad arguments: 125 and a line naming the argument; a program not found: 127;
 * one that cannot be executed: 126 (env(1)'s statuses). */
static void exec_helper_bad_args_and_exec_failures(void **state) {
  char *h = (char *)helper_path();
  char err[1024];
  arbor_test_tmp_t t;
  arbor_test_tmp_open(&t, "helper");
  char plain[sizeof t.path], want126[sizeof t.path + 64];
  snprintf(plain, sizeof plain, "%s", arbor_test_tmp_file(&t, "plain"));
  arbor_test_tmp_touch(&t, "plain");
  assert_int_eq(chmod(plain, 0644), 0);   /* no x bit for anyone: even root cannot run it */
  snprintf(want126, sizeof want126, "arbor-exec: cannot run %s: Permission denied\n", plain);
  static const struct {
    char *args[8];
    int status;
    const char *err;
  } *c, cases[] = {
      {{NULL, "--uid", "x", "--", "/bin/true"}, 125,
       "arbor-exec: --uid \"x\": expected a number from 0 to 4294967294\n"},
      {{NULL, "--umask", "0999", "--", "/bin/true"}, 125,
       "arbor-exec: --umask \"0999\": expected octal digits from 0 to 0777\n"},
      {{NULL, "--rlimit", "files=1:2", "--", "/bin/true"}, 125,
       "arbor-exec: --rlimit \"files=1:2\": unknown resource \"files\"\n"},
      {{NULL, "--rlimit", "core=2:1", "--", "/bin/true"}, 125,
       "arbor-exec: --rlimit \"core=2:1\": the soft limit is above the hard limit\n"},
      {{NULL, "--bogus", "1", "--", "/bin/true"}, 125,
       "arbor-exec: unknown option \"--bogus\" (expected --rlimit, --umask, --groups, --gid, "
       "--uid, then -- PROGRAM)\n"},
      {{NULL, "--umask", "022"}, 125, "arbor-exec: expected -- PROGRAM [ARG]... after the options\n"},
      {{NULL, "--", "/nonexistent/prog"}, 127,
       "arbor-exec: cannot run /nonexistent/prog: No such file or directory\n"},
      {{NULL, "--", NULL}, 126, NULL},   /* plain, a file without an x bit */
      {{NULL, "--umask", "0", "--", "/bin/sh", "-c", "exit 7"}, 7, ""},
  };
  for (c = cases; c < cases + sizeof cases / sizeof cases[0]; c++) {
    char *args[8];
    memcpy(args, c->args, sizeof args);
    args[0] = h;
    if (c->err == NULL)
      args[2] = plain;
    int status = run_helper(args, err, sizeof err);
    assert_string_equal(err, c->err != NULL ? c->err : want126);
    assert_int_eq(status, c->status);
  }
  arbor_test_tmp_close(&t);
}

/* Through a service: the program's exec failure, and a missing helper, are
 * named in the run's chain. */
static void runas_exec_failures_named_in_chain(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  open_rt(&loop, &rt);
  char *missing[] = {"/nonexistent/prog", NULL};
  arbor_node_t *svc = run_once(&loop, rt, &(arbor_service_spec_t){
      .name = "missing", .argv = missing, .umask_set = 1, .umask = 022});
  assert_outcome(svc, FAILED);
  assert_contains(chain_text(svc), "process missing (pid ");
  assert_contains(chain_text(svc), "exited with status 127; stderr: "
                                   "\"arbor-exec: cannot run /nonexistent/prog: No such file "
                                   "or directory\"");
  arbor_test_close(rt, &loop);

  arbor_test_open(&loop, &rt, &(arbor_runtime_opts_t){.exec_helper = "/nonexistent/arbor-exec"});
  char *ok[] = {"/bin/true", NULL};
  svc = run_once(&loop, rt, &(arbor_service_spec_t){.name = "nohelper", .argv = ok,
                                                    .umask_set = 1, .umask = 022});
  assert_outcome(svc, FAILED);
  assert_string_equal(arbor_error_message(arbor_node_error(svc)),
                      "process nohelper: cannot run its exec helper /nonexistent/arbor-exec "
                      "(for user, group, umask or rlimits): no such file or directory");
  /* Nothing set: no helper needed, the program runs as before. */
  svc = run_once(&loop, rt, &(arbor_service_spec_t){.name = "plain", .argv = ok});
  assert_outcome(svc, OK);
  arbor_exec_info_t ei;
  assert_code(arbor_service_exec_info(svc, &ei), 0);
  assert_int_eq(ei.enabled, 0);
  assert_code(arbor_service_exec_info(arbor_root(rt), &ei), ARBOR_EKIND);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(runas_user_nobody_with_supplementary_group),
    cmocka_unit_test(runas_group_alone_keeps_uid),
    cmocka_unit_test(runas_umask_applies_to_created_files),
    cmocka_unit_test(runas_rlimits_soft_and_hard),
    cmocka_unit_test(runas_refused_rlimit_named_in_chain),
    cmocka_unit_test(runas_helper_keeps_pid_and_notify_fd),
    cmocka_unit_test(runas_env_file_syntax_and_precedence),
    cmocka_unit_test(runas_env_file_read_at_each_start),
    cmocka_unit_test(runas_env_file_missing_fails_run_naming_it),
    cmocka_unit_test(runas_env_file_bad_line_names_the_line),
    cmocka_unit_test(runas_bad_specs_refused_naming_the_field),
    cmocka_unit_test(runas_not_root_refused_with_clear_message),
    cmocka_unit_test(exec_helper_bad_args_and_exec_failures),
    cmocka_unit_test(runas_exec_failures_named_in_chain),
};

ARBOR_TEST_MAIN(tests)
