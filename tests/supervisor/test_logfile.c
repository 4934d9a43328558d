/* tests/supervisor/test_logfile.c - a process service's log file
 * (supervisor/logfile.c, and its use in procsvc.c): the program's stdout and
 * stderr land in the file exactly, in arrival order; rotation keeps every file
 * within max bytes and exactly the backups asked for (none: truncation); an
 * existing file is appended to and its size counted; timestamps start lines and
 * only lines; an unwritable path is reported once and never stops the service;
 * the queue is bounded and what did not fit is counted; bad specs are refused.
 *
 * Programs are /bin/sh scripts held at points by files the test creates ("go"),
 * as in test_procsvc.c. The file is written from the thread pool, so a test
 * waits (bounded loop passes with a 1 ms timer) until the file holds what it
 * expects, then checks it exactly. Nothing asserts on time.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ------------------------------------------------------------------ helpers */

/* The whole file `name` into buf (NUL-terminated); its size, -1 when absent. */
static long slurp(arbor_test_tmp_t *t, const char *name, char *buf, size_t size) {
  FILE *f = fopen(arbor_test_tmp_file(t, name), "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}

/* The file at path, NUL-terminated, into buf (which it returns). */
static const char *f_read_file(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static int exists(arbor_test_tmp_t *t, const char *name) {
  struct stat st;
  return stat(arbor_test_tmp_file(t, name), &st) == 0;
}

static arbor_node_t *add_service(arbor_node_t *parent, const arbor_service_spec_t *spec) {
  arbor_node_t *n = NULL;
  assert_code(arbor_service_add(parent, spec, &n), 0);
  assert_non_null(n);
  return n;
}

/* The whole log ring of a service, NUL-terminated, into buf. */
static size_t read_ring(const arbor_node_t *svc, char *buf, size_t size) {
  uint64_t off = 0;
  int n = arbor_service_log_read(svc, &off, buf, size - 1, NULL);
  assert_true(n >= 0);
  buf[n] = '\0';
  return (size_t)n;
}

static int ring_has(const arbor_node_t *svc, const char *what) {
  static char buf[8192];
  read_ring(svc, buf, sizeof buf);
  return strstr(buf, what) != NULL;
}

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

#define assert_contains_(hay, needle)                                                  \
  do {                                                                                 \
    const char *h_ = (hay), *n_ = (needle);                                            \
    if (strstr(h_, n_) == NULL) {                                                      \
      print_error("\"%s\" does not contain \"%s\"\n", h_, n_);                         \
      _fail(__FILE__, __LINE__);                                                       \
    }                                                                                  \
  } while (0)

static arbor_log_file_info_t file_info(const arbor_node_t *svc) {
  arbor_log_file_info_t info;
  assert_code(arbor_service_log_file_info(svc, &info), 0);
  return info;
}

/* A script that prints `lines` lines of exactly 50 bytes ("line 007 xxx...\n"),
 * then waits for `go` and exits 0. */
static void lines_script(char *out, size_t size, arbor_test_tmp_t *t, int lines) {
  snprintf(out, size,
           "i=0; while [ $i -lt %d ]; do "
           "printf 'line %%03d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n' $i; i=$((i+1)); done; "
           "while [ ! -e %s/go ]; do sleep 0.01; done",
           lines, t->dir);
}

/* ------------------------------------------------------------------- tests */

/* stdout and stderr go to the one file, in the order they arrived (the ring's
 * order), byte for byte. */
static void logfile_stdout_and_stderr_land_in_file_in_order(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512], buf[256];
  arbor_test_tmp_open(&t, "logfile");
  snprintf(script, sizeof script,
           "echo one; while [ ! -e %s/go1 ]; do sleep 0.01; done; "
           "echo two >&2; while [ ! -e %s/go2 ]; do sleep 0.01; done; echo three",
           t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  char path[128];
  snprintf(path, sizeof path, "%s/out.log", t.dir);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "talker", .argv = argv,
                                                      .restart = ARBOR_TEMPORARY,
                                                      .log_file = path});
  arbor_test_run_ticking_until(&loop, ring_has(svc, "one\n"));
  arbor_test_tmp_touch(&t, "go1");
  arbor_test_run_ticking_until(&loop, ring_has(svc, "two\n"));
  arbor_test_tmp_touch(&t, "go2");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, OK);
  arbor_test_run_ticking_until(&loop, slurp(&t, "out.log", buf, sizeof buf) == 14);
  assert_string_equal(buf, "one\ntwo\nthree\n");
  char ring[256];
  read_ring(svc, ring, sizeof ring);
  assert_string_equal(ring, buf);
  assert_int_eq(exists(&t, "out.log.1"), 0);
  arbor_test_close(rt, &loop);
  unlink(arbor_test_tmp_file(&t, "go1"));
  arbor_test_tmp_close(&t);
}

/* max 1000 bytes, 2 backups, 5000 bytes written: FILE, FILE.1, FILE.2 and no
 * FILE.3, each within 1000 bytes, the newest lines in FILE, whole lines only. */
static void logfile_rotation_keeps_max_size_and_backup_count(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512], path[128], buf[2048];
  arbor_test_tmp_open(&t, "logfile");
  lines_script(script, sizeof script, &t, 100);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  snprintf(path, sizeof path, "%s/svc.log", t.dir);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "rotor", .argv = argv,
                                                      .restart = ARBOR_TEMPORARY,
                                                      .log_file = path,
                                                      .log_file_max_bytes = 1000,
                                                      .log_file_backups = 2});
  arbor_test_run_ticking_until(&loop, file_info(svc).bytes_written == 5000);
  arbor_log_file_info_t info = file_info(svc);
  assert_int_eq(info.enabled, 1);
  assert_int_eq(info.error, 0);
  assert_uint_eq(info.bytes_dropped, 0);
  assert_uint_eq(info.rotations, 4);
  assert_int_eq(slurp(&t, "svc.log", buf, sizeof buf), 1000);
  assert_int_eq(strncmp(buf, "line 080 ", 9), 0);
  assert_non_null(strstr(buf, "line 099 "));
  assert_int_eq(slurp(&t, "svc.log.1", buf, sizeof buf), 1000);
  assert_int_eq(strncmp(buf, "line 060 ", 9), 0);
  assert_int_eq(slurp(&t, "svc.log.2", buf, sizeof buf), 1000);
  assert_int_eq(strncmp(buf, "line 040 ", 9), 0);
  assert_int_eq(exists(&t, "svc.log.3"), 0);
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* No backups: rotation truncates the one file. */
static void logfile_zero_backups_truncates(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512], path[128], buf[2048];
  arbor_test_tmp_open(&t, "logfile");
  lines_script(script, sizeof script, &t, 100);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  snprintf(path, sizeof path, "%s/svc.log", t.dir);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "trunc", .argv = argv,
                                                      .restart = ARBOR_TEMPORARY,
                                                      .log_file = path,
                                                      .log_file_max_bytes = 1000});
  arbor_test_run_ticking_until(&loop, file_info(svc).bytes_written == 5000);
  assert_uint_eq(file_info(svc).rotations, 4);
  assert_int_eq(slurp(&t, "svc.log", buf, sizeof buf), 1000);
  assert_int_eq(strncmp(buf, "line 080 ", 9), 0);
  assert_int_eq(exists(&t, "svc.log.1"), 0);
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* An existing file (arbor restarted) is appended to, and its size counts: it
 * rotates when it would pass max bytes, its old content in FILE.1. */
static void logfile_existing_file_appended_then_rotated(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512], path[128], buf[2048];
  arbor_test_tmp_open(&t, "logfile");
  FILE *f = fopen(arbor_test_tmp_file(&t, "svc.log"), "w");
  assert_non_null(f);
  for (int i = 0; i < 18; i++)   /* 900 bytes of an earlier run */
    fprintf(f, "old  %03d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", i);
  fclose(f);
  lines_script(script, sizeof script, &t, 4);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  snprintf(path, sizeof path, "%s/svc.log", t.dir);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "again", .argv = argv,
                                                      .restart = ARBOR_TEMPORARY,
                                                      .log_file = path,
                                                      .log_file_max_bytes = 1000,
                                                      .log_file_backups = 3});
  arbor_test_run_ticking_until(&loop, file_info(svc).bytes_written == 200);
  assert_uint_eq(file_info(svc).rotations, 1);
  assert_int_eq(slurp(&t, "svc.log.1", buf, sizeof buf), 1000);
  assert_int_eq(strncmp(buf, "old  000 ", 9), 0);
  assert_non_null(strstr(buf, "old  017 x"));
  assert_non_null(strstr(buf, "\nline 001 "));
  assert_int_eq(slurp(&t, "svc.log", buf, sizeof buf), 100);
  assert_int_eq(strncmp(buf, "line 002 ", 9), 0);
  assert_int_eq(exists(&t, "svc.log.2"), 0);
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* 1 when line is "YYYY-MM-DDTHH:MM:SS.mmmZ " followed by text. */
static int stamped(const char *line) {
  const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ ";
  for (size_t i = 0; shape[i] != '\0'; i++) {
    if (shape[i] == 'd' ? (line[i] < '0' || line[i] > '9') : line[i] != shape[i])
      return 0;
  }
  return 1;
}

/* Every line starts with a UTC time, and only line starts: a line written in
 * two pieces, across two reads, gets one. */
static void logfile_timestamps_prefix_each_line_once(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512], path[128], buf[512];
  arbor_test_tmp_open(&t, "logfile");
  snprintf(script, sizeof script,
           "printf 'ab'; while [ ! -e %s/go ]; do sleep 0.01; done; printf 'cd\\nef\\n' >&2",
           t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  snprintf(path, sizeof path, "%s/ts.log", t.dir);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "stamps", .argv = argv,
                                                      .restart = ARBOR_TEMPORARY,
                                                      .log_file = path,
                                                      .log_timestamps = 1});
  arbor_test_run_ticking_until(&loop, ring_has(svc, "ab"));
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  arbor_test_run_ticking_until(&loop, slurp(&t, "ts.log", buf, sizeof buf) == 2 * 25 + 8);
  assert_true(stamped(buf));
  assert_int_eq(strncmp(buf + 25, "abcd\n", 5), 0);
  assert_true(stamped(buf + 30));
  assert_string_equal(buf + 55, "ef\n");
  char ring[64];
  read_ring(svc, ring, sizeof ring);
  assert_string_equal(ring, "abcd\nef\n");   /* the ring has no stamps */
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A log file that cannot be opened: the service still runs, the error is told
 * once in its log ring and in arbor_service_log_file_info, output is counted
 * as dropped; a restart tries again. */
static void logfile_unwritable_path_reported_once_service_runs(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512], path[160], ring[4096];
  arbor_test_tmp_open(&t, "logfile");
  snprintf(script, sizeof script,
           "echo first; while [ ! -e %s/go ]; do sleep 0.01; done; echo second; echo third; "
           "while [ ! -e %s/go2 ]; do sleep 0.01; done",
           t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  snprintf(path, sizeof path, "%s/no-such-dir/svc.log", t.dir);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "homeless", .argv = argv,
                                                      .restart = ARBOR_TEMPORARY,
                                                      .log_file = path});
  arbor_test_run_ticking_until(&loop, file_info(svc).error != 0);
  assert_state(svc, STARTED);
  assert_code(file_info(svc).error, -ENOENT);
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_ticking_until(&loop, ring_has(svc, "third\n"));
  assert_state(svc, STARTED);
  arbor_log_file_info_t info = file_info(svc);
  assert_uint_eq(info.bytes_written, 0);
  assert_uint_eq(info.bytes_dropped, strlen("first\nsecond\nthird\n"));
  read_ring(svc, ring, sizeof ring);
  assert_int_eq(count_of(ring, "arbor: log file"), 1);
  assert_contains_(ring, "no-such-dir/svc.log: cannot open: no such file or directory");
  arbor_test_tmp_touch(&t, "go2");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  assert_outcome(svc, OK);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* A broken log file is tried again when the service runs again: once its
 * directory exists, a restart writes, and the ring says so. */
static void logfile_unwritable_path_retried_at_restart(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[512], path[200], sub[128], buf[64];
  arbor_test_tmp_open(&t, "logfile");
  snprintf(script, sizeof script, "echo run; while [ ! -e %s/go ]; do sleep 0.01; done", t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  snprintf(sub, sizeof sub, "%s/later", t.dir);
  snprintf(path, sizeof path, "%s/svc.log", sub);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "later", .argv = argv,
                                                      .log_file = path});
  arbor_test_run_ticking_until(&loop, file_info(svc).error != 0);
  assert_code(file_info(svc).error, -ENOENT);
  assert_int_eq(mkdir(sub, 0755), 0);
  assert_code(arbor_service_restart(svc), 0);
  arbor_test_run_ticking_until(&loop, file_info(svc).bytes_written == 4);
  arbor_log_file_info_t info = file_info(svc);
  assert_int_eq(info.error, 0);
  assert_uint_eq(info.bytes_dropped, 4);
  arbor_test_run_ticking_until(&loop, ring_has(svc, "writing again (4 bytes dropped)\n"));
  assert_string_equal(f_read_file(path, buf, sizeof buf), "run\n");
  arbor_test_tmp_touch(&t, "go");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  arbor_test_close(rt, &loop);
  unlink(path);
  rmdir(sub);
  arbor_test_tmp_close(&t);
}

/* While the service runs on, a broken log file is tried again once a
 * rotation's worth of output (max bytes) was dropped, not at every write. */
static void logfile_unwritable_path_retried_after_max_bytes_dropped(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  char script[768], path[200], sub[128], buf[256];
  arbor_test_tmp_open(&t, "logfile");
  snprintf(script, sizeof script,
           "echo a; while [ ! -e %s/go ]; do sleep 0.01; done; "
           "printf 'line xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n%%.0s' 1 2 3; "
           "while [ ! -e %s/go2 ]; do sleep 0.01; done; echo after; "
           "while [ ! -e %s/go3 ]; do sleep 0.01; done",
           t.dir, t.dir, t.dir);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  snprintf(sub, sizeof sub, "%s/later", t.dir);
  snprintf(path, sizeof path, "%s/svc.log", sub);
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = add_service(arbor_root(rt), &(arbor_service_spec_t){
                                                      .name = "patient", .argv = argv,
                                                      .restart = ARBOR_TEMPORARY,
                                                      .log_file = path,
                                                      .log_file_max_bytes = 100});
  arbor_test_run_ticking_until(&loop, file_info(svc).error != 0);
  assert_int_eq(mkdir(sub, 0755), 0);
  arbor_test_tmp_touch(&t, "go");           /* 150 bytes: at least 100 dropped, then a retry is due */
  arbor_log_file_info_t info;
  arbor_test_run_ticking_until(
      &loop, (info = file_info(svc), info.bytes_dropped + info.bytes_written == 2 + 150));
  assert_true(info.bytes_dropped >= 2 + 100);
  uint64_t before = info.bytes_written;   /* 0, or the line read after the retry */
  arbor_test_tmp_touch(&t, "go2");
  arbor_test_run_ticking_until(&loop, file_info(svc).bytes_written == before + 6);
  assert_int_eq(file_info(svc).error, 0);
  size_t n = strlen(f_read_file(path, buf, sizeof buf));
  assert_uint_eq(n, before + 6);
  assert_string_equal(buf + n - 6, "after\n");
  arbor_test_tmp_touch(&t, "go3");
  arbor_test_run_once_until(&loop, arbor_node_is_finished(svc));
  arbor_test_close(rt, &loop);
  unlink(path);
  rmdir(sub);
  arbor_test_tmp_close(&t);
}

/* The queue waiting for the disk is bounded: what does not fit while a write
 * is in flight is dropped and counted, and written + dropped adds up. */
static void logfile_queue_bounded_drops_and_counts(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_tmp_t t;
  arbor_test_tmp_open(&t, "logfile");
  arbor_test_open(&loop, &rt, NULL);
  struct arbor__logfile *lf;
  assert_code(arbor__logfile_new(rt, arbor_test_tmp_file(&t, "big.log"), 64u << 20, 0, 0, &lf), 0);
  static char chunk[16 * 1024];
  memset(chunk, 'x', sizeof chunk);
  chunk[sizeof chunk - 1] = '\n';
  uint64_t total = 0;
  for (int i = 0; i < 128; i++) {   /* 2 MiB with no loop pass: the pool's job waits */
    arbor__logfile_write(lf, chunk, sizeof chunk);
    total += sizeof chunk;
  }
  arbor_log_file_info_t info;
  arbor__logfile_info(lf, &info);
  assert_true(info.bytes_dropped > 0);
  assert_true(info.bytes_dropped <= total - (1u << 20));
  arbor_test_run_ticking_until(
      &loop, (arbor__logfile_info(lf, &info), info.bytes_written + info.bytes_dropped == total));
  struct stat st;
  assert_int_eq(stat(arbor_test_tmp_file(&t, "big.log"), &st), 0);
  assert_uint_eq((uint64_t)st.st_size, info.bytes_written);
  arbor__logfile_close(lf);
  arbor_test_close(rt, &loop);
  arbor_test_tmp_close(&t);
}

/* Bad log file settings are refused and start nothing; a service without a
 * log file reports it disabled; a fiber service has none at all. */
static void logfile_bad_specs_refused(void **state) {
  (void)state;
  uv_loop_t loop;
  arbor_runtime_t *rt;
  char *argv[] = {"/bin/true", NULL};
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *n = NULL;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.argv = argv, .log_file = "/tmp/x.log",
                                                        .log_file_max_bytes = 63},
                                &n),
              ARBOR_EINVAL);
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.argv = argv, .log_file = "/tmp/x.log",
                                                        .log_file_backups = 1001},
                                &n),
              ARBOR_EINVAL);
  assert_null(n);
  n = add_service(arbor_root(rt), &(arbor_service_spec_t){.argv = argv, .log_file = ""});
  assert_int_eq(file_info(n).enabled, 0);
  arbor_log_file_info_t info;
  assert_code(arbor_service_log_file_info(NULL, &info), ARBOR_EINVAL);
  assert_code(arbor_service_log_file_info(n, NULL), ARBOR_EINVAL);
  assert_code(arbor_service_log_file_info(arbor_root(rt), &info), ARBOR_EKIND);
  arbor_test_run_once_until(&loop, arbor_node_is_finished(n));
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest logfile_tests[] = {
    cmocka_unit_test(logfile_stdout_and_stderr_land_in_file_in_order),
    cmocka_unit_test(logfile_rotation_keeps_max_size_and_backup_count),
    cmocka_unit_test(logfile_zero_backups_truncates),
    cmocka_unit_test(logfile_existing_file_appended_then_rotated),
    cmocka_unit_test(logfile_timestamps_prefix_each_line_once),
    cmocka_unit_test(logfile_unwritable_path_reported_once_service_runs),
    cmocka_unit_test(logfile_unwritable_path_retried_at_restart),
    cmocka_unit_test(logfile_unwritable_path_retried_after_max_bytes_dropped),
    cmocka_unit_test(logfile_queue_bounded_drops_and_counts),
    cmocka_unit_test(logfile_bad_specs_refused),
};

ARBOR_TEST_MAIN(logfile_tests)
