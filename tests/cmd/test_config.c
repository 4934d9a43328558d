/* tests/cmd/test_config.c - the daemon's config errors (cmd/config.c,
 * cmd/config_syntax.c), through the built `arbor` program: each error is one
 * line on stderr naming the file and the line and column (syntax) or the JSON
 * path (meaning), arbor exits 2, and nothing was started. */
#include "harness.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbor_proc.h"

/* The first service of every bad config would create DIR/started: it must not. */
#define STAMP "{\"service\": \"stamp\", \"argv\": [\"touch\", \"started\"]}"

static void expect_error(const char *json, const char *want_stderr) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  arbor_proc_write(&p, "bad.json", json);
  char *out = NULL, *err = NULL;
  char *argv[] = {"arbor", "run", "bad.json", "--port", "0", NULL};
  int rc = arbor_proc_run(&p, argv, &out, &err);
  char *started = arbor_proc_read(&p, "started");
  arbor_proc_cleanup(&p);
  if (strcmp(err, want_stderr) != 0)
    print_error("stderr:\n%s\nwanted:\n%s\n", err, want_stderr);
  assert_int_eq(rc, 2);
  assert_string_equal(err, want_stderr);
  assert_string_equal(out, "");  /* no dashboard URL: nothing was served */
  assert_null(started);
  free(out);
  free(err);
}

static void config_syntax_error_names_line_and_column(void **state) {
  expect_error("{\n"
               "  \"tree\": [\n"
               "    " STAMP "\n"
               "    {\"service\": \"b\", \"argv\": [\"true\"]}\n"
               "  ]\n"
               "}\n",
               "arbor: bad.json:4:5: expected ',' or ']' after an array element\n");
}

static void config_syntax_error_trailing_comma(void **state) {
  expect_error("{\"tree\": [" STAMP "],\n \"admin\": {\"port\": 0,}}",
               "arbor: bad.json:2:22: trailing ',' before '}': expected another member\n");
}

static void config_syntax_error_unterminated(void **state) {
  expect_error("{\"tree\": [" STAMP "]", "arbor: bad.json:1:62: unexpected end of file: "
                                         "expected ',' or '}' (an object is not closed)\n");
}

static void config_syntax_error_comment(void **state) {
  expect_error("{\n  // services\n  \"tree\": [" STAMP "]}",
               "arbor: bad.json:2:3: comments are not allowed in JSON: expected a string key\n");
}

/* A lone UTF-16 surrogate in a \u escape is a syntax error, at its place: cJSON
 * refuses it, and config.c took cJSON's refusal of text the syntax check passed
 * for "out of memory" (found by fuzz/fuzz_config.c). A pair is fine. */
static void config_syntax_error_lone_surrogate_is_named(void **state) {
  expect_error("{\"tree\": [{\"service\": \"a\\ud800\", \"argv\": [\"true\"]}]}",
               "arbor: bad.json:1:31: bad \\u escape: a high surrogate (\\uD800-\\uDBFF) must "
               "be followed by a low one (\\uDC00-\\uDFFF)\n");
  expect_error("{\"tree\": [{\"service\": \"a\\udc00x\", \"argv\": [\"true\"]}]}",
               "arbor: bad.json:1:26: bad \\u escape: a low surrogate (\\uDC00-\\uDFFF) without "
               "a high one before it\n");
  expect_error("{\"tree\": [{\"service\": \"a\\ud83c\\udf33\", \"argv\": [\"true\"]}]}",
               "arbor: bad.json: tree[0].service: expected a name: 1 to 64 characters from A-Z "
               "a-z 0-9 _ - .\n");
}

static void config_semantic_error_names_json_path(void **state) {
  expect_error("{\"tree\": [" STAMP ", {\"supervisor\": \"s\", \"children\": ["
               "{\"service\": \"x\", \"argv\": []}]}]}",
               "arbor: bad.json: tree[1].children[0].argv: expected a non-empty array of "
               "strings\n");
}

static void config_unknown_key_is_an_error(void **state) {
  expect_error("{\"tree\": [" STAMP ", {\"service\": \"a\", \"argv\": [\"true\"], "
               "\"restrat\": \"temporary\"}]}",
               "arbor: bad.json: tree[1]: unknown key \"restrat\" (expected one of: service, "
               "argv, env, cwd, restart, stop_signal, shutdown_timeout_ms, min_uptime_ms, "
               "notify_fd, log_size, log_file, log_file_max_bytes, log_file_backups, "
               "log_timestamps, requires, after, user, group, groups, umask, rlimits, "
               "env_file, max_memory, max_memory_for_ms, liveness, readiness)\n");
  expect_error("{\"tree\": [" STAMP "], \"admn\": {}}",
               "arbor: bad.json: unknown key \"admn\" (expected one of: admin, "
               "shutdown_timeout_ms, event_capacity, service_name, trace_out, trace_format, "
               "otlp_endpoint, tree)\n");
}

/* JSON lets a key hold any control character ("\n" in the text): the error that
 * quotes it is still one line, the character written as an escape (found by
 * fuzz/fuzz_service.c; config_error_set). */
static void config_error_quoting_control_characters_is_one_line(void **state) {
  expect_error("{\"tree\": [" STAMP "], \"ad\\nmin\\u0001\\t\": {}}",
               "arbor: bad.json: unknown key \"ad\\nmin\\x01\\t\" (expected one of: admin, "
               "shutdown_timeout_ms, event_capacity, service_name, trace_out, trace_format, "
               "otlp_endpoint, tree)\n");
  expect_error("{\"tree\": [{\"service\": \"a\", \"argv\": [\"true\"], "
               "\"liveness\": {\"tcp\": {\"port\": 1}, \"x\\r\": 1}}]}",
               "arbor: bad.json: tree[0].liveness: unknown key \"x\\x0d\" (expected one of: "
               "http, tcp, exec, interval_ms, timeout_ms, failure_threshold, success_threshold, "
               "initial_delay_ms)\n");
}

static void config_duplicate_name_is_an_error(void **state) {
  expect_error("{\"tree\": [" STAMP ", {\"supervisor\": \"s\", \"children\": ["
               "{\"service\": \"web\", \"argv\": [\"true\"]},"
               "{\"supervisor\": \"web\"}]}]}",
               "arbor: bad.json: tree[1].children[1]: duplicate name \"web\" (also "
               "tree[1].children[0]): names must be unique among siblings\n");
}

static void config_bad_strategy_is_an_error(void **state) {
  expect_error("{\"tree\": [" STAMP ", {\"supervisor\": \"s\", \"strategy\": \"one_for_two\"}]}",
               "arbor: bad.json: tree[1].strategy: expected \"one_for_one\", \"one_for_all\" "
               "or \"rest_for_one\"\n");
}

static void config_bad_values_are_errors(void **state) {
  expect_error("{\"tree\": [" STAMP "], \"admin\": {\"port\": 70000}}",
               "arbor: bad.json: admin.port: expected an integer from 0 to 65535, not this "
               "number\n");
  expect_error("{\"tree\": [" STAMP ", {\"service\": \"a\", \"argv\": [\"true\"], "
               "\"stop_signal\": \"SIGFOO\"}]}",
               "arbor: bad.json: tree[1].stop_signal: expected a signal name (\"SIGTERM\", "
               "\"SIGINT\", \"SIGQUIT\", \"SIGHUP\", \"SIGUSR1\", ...) or a number from 1 to 64\n");
  expect_error("{\"tree\": [" STAMP ", {\"service\": \"a b\", \"argv\": [\"true\"]}]}",
               "arbor: bad.json: tree[1].service: expected a name: 1 to 64 characters from "
               "A-Z a-z 0-9 _ - .\n");
  expect_error("{\"tree\": [" STAMP ", {\"argv\": [\"true\"]}]}",
               "arbor: bad.json: tree[1]: expected a \"service\" or a \"supervisor\" key (the "
               "node's name)\n");
  expect_error("{\"tree\": [" STAMP ", {\"service\": \"a\", \"argv\": [\"true\"], "
               "\"env\": {\"A\": 1}}]}",
               "arbor: bad.json: tree[1].env.A: expected a string, not a number\n");
  expect_error("{\"tree\": [" STAMP "], \"admin\": {\"token\": \"x\", \"token_file\": \"y\"}}",
               "arbor: bad.json: admin: expected \"token\" or \"token_file\", not both\n");
  expect_error("{\"trees\": []}", "arbor: bad.json: unknown key \"trees\" (expected one of: "
                                  "admin, shutdown_timeout_ms, event_capacity, service_name, "
                                  "trace_out, trace_format, otlp_endpoint, tree)\n");
  expect_error("{}", "arbor: bad.json: expected a \"tree\" key: the array of services and "
                     "supervisors to run\n");
}

/* Each log file key's error names the key and what it wants. */
static void config_log_file_errors_name_the_key(void **state) {
#define SVC "{\"service\": \"a\", \"argv\": [\"true\"], "
  expect_error("{\"tree\": [" STAMP ", " SVC "\"log_file\": \"\"}]}",
               "arbor: bad.json: tree[1].log_file: expected a non-empty string or null, not "
               "\"\"\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"log_file\": 3}]}",
               "arbor: bad.json: tree[1].log_file: expected a non-empty string or null, not a "
               "number\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"log_file\": \"a.log\", "
               "\"log_file_max_bytes\": 10}]}",
               "arbor: bad.json: tree[1].log_file_max_bytes: expected an integer from 64 to "
               "1099511627776, not this number\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"log_file\": \"a.log\", "
               "\"log_file_backups\": 1001}]}",
               "arbor: bad.json: tree[1].log_file_backups: expected an integer from 0 to 1000, "
               "not this number\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"log_file\": \"a.log\", "
               "\"log_timestamps\": \"yes\"}]}",
               "arbor: bad.json: tree[1].log_timestamps: expected true or false, not a "
               "string\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"log_file_backups\": 3}]}",
               "arbor: bad.json: tree[1].log_file_backups: needs \"log_file\" (the file to "
               "write the output to)\n");
#undef SVC
}

/* max_memory takes bytes or a size with a binary unit; anything else, a size
 * out of range and max_memory_for_ms alone are refused, naming the key. */
static void config_max_memory_errors_name_the_key(void **state) {
#define SVC "{\"service\": \"a\", \"argv\": [\"true\"], "
  static const char *const bad_sizes[] = {"\"512MB\"", "\"1.5G\"", "\"M\"", "\"12 M\"",
                                          "-1", "1.5", "true", "\"99999999999999999999K\""};
  for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
    char json[256], want[512];
    snprintf(json, sizeof json, "{\"tree\": [" STAMP ", " SVC "\"max_memory\": %s}]}",
             bad_sizes[i]);
    snprintf(want, sizeof want,
             "arbor: bad.json: tree[1].max_memory: expected a size in bytes: an integer, or "
             "a string with a binary unit such as \"512M\", \"1G\", \"64K\" or \"256MiB\", "
             "not %s\n",
             bad_sizes[i][0] == '"' ? "this string"
             : strcmp(bad_sizes[i], "true") == 0 ? "a boolean"
                                                 : "a number");
    expect_error(json, want);
  }
  expect_error("{\"tree\": [" STAMP ", " SVC "\"max_memory\": \"512K\"}]}",
               "arbor: bad.json: tree[1].max_memory: expected from 1M (1048576 bytes) to 16T, "
               "not 524288 bytes\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"max_memory\": 1000}]}",
               "arbor: bad.json: tree[1].max_memory: expected from 1M (1048576 bytes) to 16T, "
               "not 1000 bytes\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"max_memory\": \"1G\", "
               "\"max_memory_for_ms\": 86400001}]}",
               "arbor: bad.json: tree[1].max_memory_for_ms: expected an integer from 0 to "
               "86400000, not this number\n");
  expect_error("{\"tree\": [" STAMP ", " SVC "\"max_memory_for_ms\": 500}]}",
               "arbor: bad.json: tree[1].max_memory_for_ms: needs \"max_memory\" (the limit "
               "it applies to)\n");
#undef SVC
}

/* A relative log_file is the config's directory's, not arbor's cwd; the
 * program's output lands there, each line stamped. */
static void config_log_file_relative_to_config_dir(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  assert_int_eq(mkdir(arbor_proc_path(&p, "conf"), 0755), 0);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"tree\": [{\"service\": \"talker\", \"argv\": [\"/bin/sh\", \"-c\", "
           "\"echo hello; while [ ! -e %s ]; do sleep 0.05; done\"], "
           "\"log_file\": \"svc.log\", \"log_file_max_bytes\": 4096, "
           "\"log_file_backups\": 2, \"log_timestamps\": true}]}",
           arbor_proc_path(&p, "stop"));
  arbor_proc_write(&p, "conf/cfg.json", json);
  char *argv[] = {"arbor", "run", "conf/cfg.json", "--port", "0", NULL};
  arbor_proc_start(&p, argv, NULL);
  assert_int_eq(arbor_proc_read_url(&p), 0);
  arbor_proc_wait_text(&p, "conf/svc.log", "Z hello\n");
  char *log = arbor_proc_read(&p, "conf/svc.log");
  assert_non_null(log);
  assert_int_eq((int)strlen(log), 25 + 6);   /* "2026-11-24T22:40:01.123Z hello\n" */
  assert_int_eq(log[10], 'T');
  free(log);
  assert_null(arbor_proc_read(&p, "svc.log"));
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  arbor_proc_cleanup(&p);
}

/* requires / after: cycles of length 1, 2 and 3 are refused, each named in
 * order from the node that closes it, at the key of its edge. */
#define DEP(name, key, deps) \
  "{\"service\": \"" name "\", \"argv\": [\"true\"], \"" key "\": [" deps "]}"
static void config_dependency_cycle_is_named(void **state) {
  expect_error("{\"tree\": [" STAMP ", " DEP("web", "requires", "\"web\"") "]}",
               "arbor: bad.json: tree[1].requires: dependency cycle: web -> web\n");
  expect_error("{\"tree\": [" STAMP ", " DEP("web", "requires", "\"api\"") ", "
               DEP("api", "after", "\"web\"") "]}",
               "arbor: bad.json: tree[1].requires: dependency cycle: web -> api -> web\n");
  expect_error("{\"tree\": [" STAMP ", {\"supervisor\": \"s\", \"children\": ["
               DEP("web", "requires", "\"api\"") ", " DEP("api", "requires", "\"db\"") ", "
               DEP("db", "requires", "\"web\"") "]}]}",
               "arbor: bad.json: tree[1].children[0].requires: dependency cycle: web -> api -> "
               "db -> web\n");
  /* A cycle further down a chain is named from where it closes. */
  expect_error("{\"tree\": [" STAMP ", " DEP("web", "requires", "\"api\"") ", "
               DEP("api", "requires", "\"db\"") ", " DEP("db", "after", "\"api\"") "]}",
               "arbor: bad.json: tree[2].requires: dependency cycle: api -> db -> api\n");
}

/* Unknown names, names of non-siblings and non-permanent requirements. */
static void config_dependency_on_unknown_name_is_an_error(void **state) {
  expect_error("{\"tree\": [" STAMP ", " DEP("db", "after", "") ", "
               DEP("web", "requires", "\"db\", \"dbb\"") "]}",
               "arbor: bad.json: tree[2].requires[1]: no sibling named \"dbb\" (requires and "
               "after name nodes of the same supervisor)\n");
  /* stamp is in the tree, but not beside web. */
  expect_error("{\"tree\": [" STAMP ", {\"supervisor\": \"s\", \"children\": ["
               DEP("web", "after", "\"stamp\"") "]}]}",
               "arbor: bad.json: tree[1].children[0].after[0]: no sibling named \"stamp\" "
               "(requires and after name nodes of the same supervisor)\n");
  expect_error("{\"tree\": [" STAMP ", " DEP("web", "requires", "3") "]}",
               "arbor: bad.json: tree[1].requires[0]: expected a name: 1 to 64 characters from "
               "A-Z a-z 0-9 _ - .\n");
  expect_error("{\"tree\": [" STAMP ", " DEP("web", "requires", "") ", "
               DEP("api", "after", "") "], \"x\": 1}",
               "arbor: bad.json: unknown key \"x\" (expected one of: admin, "
               "shutdown_timeout_ms, event_capacity, service_name, trace_out, trace_format, "
               "otlp_endpoint, tree)\n");
  expect_error("{\"tree\": [" STAMP ", {\"service\": \"web\", \"argv\": [\"true\"], "
               "\"requires\": \"db\"}]}",
               "arbor: bad.json: tree[1].requires: expected an array of names (of this node's "
               "siblings), not a string\n");
  expect_error("{\"tree\": [" STAMP ", {\"service\": \"migrate\", \"argv\": [\"true\"], "
               "\"restart\": \"temporary\"}, " DEP("web", "requires", "\"migrate\"") "]}",
               "arbor: bad.json: tree[2].requires[0]: \"migrate\" is temporary: what a node "
               "requires must be permanent (\"after\" only orders)\n");
  /* parallel_stop would stop web and db at once. */
  expect_error("{\"tree\": [" STAMP ", {\"supervisor\": \"s\", \"parallel_stop\": true, "
               "\"children\": [" DEP("web", "requires", "\"db\"") ", " DEP("db", "after", "")
               "]}]}",
               "arbor: bad.json: tree[1].parallel_stop: true would stop every child at once, "
               "not each before what it requires or comes after: leave it out or set it to "
               "false\n");
}
#undef DEP
static int occurrences(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

/* A log file that cannot be opened: the service runs on, arbor's stderr says
 * so once (not once per write), and so does the service's log. */
static void config_log_file_error_logged_once_service_runs(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"tree\": [{\"service\": \"talker\", \"argv\": [\"/bin/sh\", \"-c\", "
           "\"while [ ! -e %s ]; do echo tick; sleep 0.05; done\"], "
           "\"log_file\": \"missing/svc.log\"}]}",
           arbor_proc_path(&p, "stop"));
  arbor_proc_write(&p, "cfg.json", json);
  char *argv[] = {"arbor", "run", "cfg.json", "--port", "0", NULL};
  arbor_proc_start(&p, argv, NULL);
  assert_int_eq(arbor_proc_read_url(&p), 0);
  arbor_proc_wait_text(&p, "stderr", "missing/svc.log: no such file or directory; output "
                                     "dropped until it can be written");
  usleep(500 * 1000);            /* ten more writes and five daemon ticks */
  arbor_proc_kill(&p, SIGTERM);
  assert_int_eq(arbor_proc_wait(&p), 0);
  char *err = arbor_proc_read(&p, "stderr");
  assert_non_null(err);
  assert_int_eq(occurrences(err, "log file"), 1);
  assert_non_null(strstr(err, "service talker (id "));
  free(err);
  arbor_proc_cleanup(&p);
}

/* Health probes: exactly one kind, each value checked, the path named. */
static void config_probe_errors_name_the_key(void **state) {
#define SVC(probe) "{\"tree\": [" STAMP ", {\"service\": \"a\", \"argv\": [\"true\"], " probe "}]}"
  expect_error(SVC("\"liveness\": {\"interval_ms\": 5}"),
               "arbor: bad.json: tree[1].liveness: expected exactly one of \"http\", \"tcp\" and "
               "\"exec\" (what to probe), not none\n");
  expect_error(SVC("\"readiness\": {\"tcp\": {\"port\": 1}, \"exec\": [\"true\"]}"),
               "arbor: bad.json: tree[1].readiness: expected exactly one of \"http\", \"tcp\" and "
               "\"exec\" (what to probe), not several\n");
  expect_error(SVC("\"liveness\": {\"http\": {\"port\": 0}}"),
               "arbor: bad.json: tree[1].liveness.http.port: expected an integer from 1 to "
               "65535, not this number\n");
  expect_error(SVC("\"liveness\": {\"http\": {\"port\": 80, \"path\": \"healthz\"}}"),
               "arbor: bad.json: tree[1].liveness.http.path: expected a path starting with '/', "
               "without spaces or control characters, not this string\n");
  expect_error(SVC("\"liveness\": {\"tcp\": {\"port\": 80, \"path\": \"/\"}}"),
               "arbor: bad.json: tree[1].liveness.tcp: unknown key \"path\" (expected one of: "
               "port, host)\n");
  expect_error(SVC("\"readiness\": {\"exec\": []}"),
               "arbor: bad.json: tree[1].readiness.exec: expected a non-empty array of strings "
               "(the command and its arguments), not this array\n");
  expect_error(SVC("\"liveness\": {\"tcp\": {\"port\": 80}, \"timeout_ms\": 0}"),
               "arbor: bad.json: tree[1].liveness.timeout_ms: expected an integer from 1 to "
               "86400000, not this number\n");
  expect_error(SVC("\"liveness\": {\"tcp\": {\"port\": 80}, \"success_threshold\": 2}"),
               "arbor: bad.json: tree[1].liveness.success_threshold: must be 1 for a liveness "
               "probe (one pass shows it is alive; as in Kubernetes)\n");
  expect_error(SVC("\"readiness\": {\"tcp\": {\"port\": 80, \"host\": \"a b\"}}"),
               "arbor: bad.json: tree[1].readiness.tcp.host: expected a host name or an IP "
               "address (letters, digits, '.', '-', ':'), not this string\n");
  expect_error(SVC("\"readiness\": {\"tcp\": {\"port\": 80}, \"period\": 1}"),
               "arbor: bad.json: tree[1].readiness: unknown key \"period\" (expected one of: "
               "http, tcp, exec, interval_ms, timeout_ms, failure_threshold, success_threshold, "
               "initial_delay_ms)\n");
#undef SVC
}

static void config_missing_file_is_an_error(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  char *err = NULL;
  char *argv[] = {"arbor", "run", "nope.json", NULL};
  int rc = arbor_proc_run(&p, argv, NULL, &err);
  arbor_proc_cleanup(&p);
  assert_int_eq(rc, 2);
  assert_string_equal(err, "arbor: nope.json: No such file or directory\n");
  free(err);
}

static void config_check_accepts_a_good_config(void **state) {
  struct arbor_proc p;
  arbor_proc_init(&p);
  arbor_proc_write(&p, "good.json",
                   "{\"admin\": {\"bind\": \"127.0.0.1\", \"port\": 0, \"max_connections\": 8},\n"
                   " \"shutdown_timeout_ms\": 2000, \"event_capacity\": 1024,\n"
                   " \"tree\": [" STAMP ",\n"
                   "  {\"supervisor\": \"s\", \"strategy\": \"rest_for_one\", \"intensity\": 5,"
                   "   \"period_ms\": 1000, \"backoff_ms\": 0, \"restart\": \"transient\","
                   "   \"parallel_stop\": false, \"children\": [\n"
                   "    {\"service\": \"a\", \"argv\": [\"true\", \"\"], \"env\": {\"K\": \"V\"},"
                   "     \"cwd\": \".\", \"restart\": \"temporary\", \"stop_signal\": 2,"
                   "     \"shutdown_timeout_ms\": 100, \"min_uptime_ms\": 10, \"notify_fd\": 3,"
                   "     \"log_size\": 4096, \"log_file\": \"a.log\","
                   "     \"log_file_max_bytes\": 65536, \"log_file_backups\": 3,"
                   "     \"log_timestamps\": false, \"max_memory\": \"512M\","
                   "     \"max_memory_for_ms\": 1000,"
                   "     \"liveness\": {\"http\": {\"port\": 8080, \"path\": \"/healthz\","
                   "       \"host\": \"localhost\"}, \"interval_ms\": 1000, \"timeout_ms\": 500,"
                   "       \"failure_threshold\": 3, \"success_threshold\": 1,"
                   "       \"initial_delay_ms\": 0},"
                   "     \"readiness\": {\"tcp\": {\"port\": 6379}, \"success_threshold\": 2}},\n"
                   "    {\"service\": \"b\", \"argv\": [\"true\"], \"max_memory\": 1048576},\n"
                   "    {\"service\": \"c\", \"argv\": [\"true\"], \"max_memory\": \"2GiB\"},\n"
                   "    {\"service\": \"d\", \"argv\": [\"true\"], \"max_memory\": \"1024k\"}]}]}\n");
  char *out = NULL, *err = NULL;
  char *argv[] = {"arbor", "run", "--check", "good.json", NULL};
  int rc = arbor_proc_run(&p, argv, &out, &err);
  char *started = arbor_proc_read(&p, "started");
  arbor_proc_cleanup(&p);
  assert_int_eq(rc, 0);
  assert_string_equal(out, "good.json: ok\n");
  assert_string_equal(err, "");
  assert_null(started);
  free(out);
  free(err);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(config_syntax_error_names_line_and_column),
    cmocka_unit_test(config_syntax_error_trailing_comma),
    cmocka_unit_test(config_syntax_error_unterminated),
    cmocka_unit_test(config_syntax_error_comment),
    cmocka_unit_test(config_syntax_error_lone_surrogate_is_named),
    cmocka_unit_test(config_semantic_error_names_json_path),
    cmocka_unit_test(config_unknown_key_is_an_error),
    cmocka_unit_test(config_error_quoting_control_characters_is_one_line),
    cmocka_unit_test(config_duplicate_name_is_an_error),
    cmocka_unit_test(config_bad_strategy_is_an_error),
    cmocka_unit_test(config_bad_values_are_errors),
    cmocka_unit_test(config_log_file_errors_name_the_key),
    cmocka_unit_test(config_max_memory_errors_name_the_key),
    cmocka_unit_test(config_log_file_relative_to_config_dir),
    cmocka_unit_test(config_dependency_cycle_is_named),
    cmocka_unit_test(config_dependency_on_unknown_name_is_an_error),
    cmocka_unit_test(config_log_file_error_logged_once_service_runs),
    cmocka_unit_test(config_probe_errors_name_the_key),
    cmocka_unit_test(config_missing_file_is_an_error),
    cmocka_unit_test(config_check_accepts_a_good_config),
};

ARBOR_TEST_MAIN(tests)
