/* tests/supervisor/test_procstat.c - resource figures of process services
 * (supervisor/procstat.c, arbor_service_usage): plausible against /proc read
 * independently here, descendants found by parent links (a child that left the
 * session, an orphan re-parented to arbor), CPU time that grows with work, and
 * the errors (no program, wrong kind, a program that vanished).
 *
 * Programs are /bin/sh scripts that report ready on fd 3 (notify_fd) once they
 * hold what the test measures; where a figure needs time to settle (an orphan
 * re-parented, CPU burnt), the loop is driven with a 1 ms timer for a bounded
 * number of passes. Nothing asserts on time.
 */
#include "harness.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* ------------------------------------------------------------------ helpers */

/* A process service running `script` under /bin/sh, STARTED (it wrote a newline
 * to fd 3). */
static arbor_node_t *run_script(uv_loop_t *loop, arbor_runtime_t *rt, const char *name,
                                const char *script) {
  char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
  arbor_node_t *svc = NULL;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = name, .argv = argv,
                                                        .notify_fd = 3},
                                &svc),
              0);
  arbor_test_run_once_until(loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  return svc;
}

static int service_pid(const arbor_node_t *svc) {
  arbor_service_info_t info;
  assert_code(arbor_service_info(svc, &info), 0);
  return info.pid;
}

/* A fresh sample (must succeed). */
static arbor_process_usage_t usage_of(arbor_node_t *svc) {
  arbor_process_usage_t u;
  assert_code(arbor_service_usage(svc, &u), 0);
  return u;
}

/* Entries of /proc/PID/fd, read here, not by procstat.c. */
static uint32_t fds_of(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  assert_non_null(d);
  uint32_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

/* 1 once the program is sleep (its exec done). */
static int is_sleep(int pid) {
  char path[64], comm[32] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  int ok = fgets(comm, sizeof comm, f) != NULL && strcmp(comm, "sleep\n") == 0;
  fclose(f);
  return ok;
}

/* VmRSS of /proc/PID/status in bytes, read here. */
static uint64_t vmrss_of(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  unsigned long long kb = 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
      break;
  fclose(f);
  return (uint64_t)kb * 1024u;
}

/* ---------------------------------------------------------------- figures */

/* A shell that holds a 20 MB string (command substitution: the bytes are
 * written, so resident) shows at least 15 MB, as VmRSS says too. */
static void procstat_rss_counts_touched_memory(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = run_script(&loop, rt, "hog",
                                 "x=$(head -c 20000000 /dev/zero | tr '\\0' a); "
                                 "echo >&3; exec 3>&-; while :; do sleep 1; done");
  int pid = service_pid(svc);
  arbor_process_usage_t u = usage_of(svc);
  assert_int_eq(u.pid, pid);
  assert_true(u.rss_bytes >= 15u * 1000 * 1000);
  uint64_t independent = vmrss_of(pid);
  assert_true(independent >= 15u * 1000 * 1000);
  /* the shell's own RSS is most of it; its sleep adds a little */
  assert_uint_le(independent / 2, u.rss_bytes);
  assert_true(u.threads >= 1);
  assert_true(u.processes >= 1);
  arbor_test_close(rt, &loop);
}

/* Two background children of the shell: three processes, three threads. */
static void procstat_children_counted_as_processes(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc =
      run_script(&loop, rt, "family", "sleep 30 & sleep 30 & echo >&3; wait");
  arbor_process_usage_t u = usage_of(svc);
  assert_uint_eq(u.processes, 3);
  assert_uint_eq(u.threads, 3);
  arbor_test_close(rt, &loop);
}

/* Membership is by parent links, not by session or group: a child that called
 * setsid() still counts, and so does an orphan of the program's session that
 * the kernel re-parented to arbor (the child subreaper). The subshell that
 * leaves the orphan behind exits at once: the count settles at 3. */
static void procstat_descendants_found_after_setsid_and_orphaning(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = run_script(&loop, rt, "escapers",
                                 "setsid sleep 30 & (sleep 30 &); echo >&3; wait");
  arbor_process_usage_t u;
  arbor_test_run_ticking_until(&loop, arbor_service_usage(svc, &u) == 0 && u.processes == 3);
  arbor_test_close(rt, &loop);
}

/* The fds a program holds, against /proc/PID/fd read here: 0-2, two more it
 * opened, and any fd arbor's own caller leaked to it. The program is a plain
 * sleep by then (exec), so nothing moves between the two reads. */
static void procstat_open_fds_match_proc(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = run_script(&loop, rt, "holder",
                                 "exec 5</dev/null 6</dev/null; echo >&3; exec 3>&-; "
                                 "exec sleep 30");
  int pid = service_pid(svc);
  /* the exec after the newline: wait until fd 3 is gone */
  /* the exec comes after the newline: wait for it */
  arbor_test_run_ticking_until(&loop, is_sleep(pid));
  arbor_process_usage_t u = usage_of(svc);
  assert_uint_eq(u.processes, 1);
  assert_uint_eq(u.fds, fds_of(pid));
  assert_true(u.fds >= 5);       /* 0-2, 5, 6 (and whatever arbor's caller leaked) */
  arbor_test_close(rt, &loop);
}

/* A busy loop's CPU time grows; the first sample's cpu_percent is the average
 * over its life (a number, never NaN), and a later one over at least 1 s is
 * above 0. */
static void procstat_cpu_time_of_busy_loop_grows(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = run_script(&loop, rt, "spinner", "echo >&3; while :; do :; done");
  arbor_process_usage_t first = usage_of(svc), later;
  assert_false(isnan(first.cpu_percent));
  assert_true(first.cpu_percent >= 0.0);
  arbor_test_run_ticking_until(&loop, arbor_service_usage(svc, &later) == 0 &&
                                          later.cpu_ns >= first.cpu_ns + 100000000u &&
                                          later.sampled_ns >= first.sampled_ns + 1000000000u);
  assert_true(later.cpu_percent > 0.0);
  arbor_test_close(rt, &loop);
}

/* Samples under a second apart share the last figure: clock ticks are too
 * coarse for a rate over a few ms. */
static void procstat_samples_under_a_second_apart_keep_the_percent(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *svc = run_script(&loop, rt, "spinner", "echo >&3; while :; do :; done");
  arbor_process_usage_t a = usage_of(svc), b = usage_of(svc);
  if (b.sampled_ns - a.sampled_ns < 1000000000u)
    assert_true(a.cpu_percent == b.cpu_percent);
  arbor_test_close(rt, &loop);
}

/* -------------------------------------------------------------- errors */

/* No program, no figures: a fiber service is the wrong kind, a process service
 * whose program was killed (and reaped) has none running, NULL is refused. */
static void procstat_vanished_program_gives_enoent(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  char *argv[] = {"/bin/sh", "-c", "echo >&3; exec sleep 30", NULL};
  arbor_node_t *svc = NULL;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "victim", .argv = argv,
                                                        .notify_fd = 3,
                                                        .restart = ARBOR_TEMPORARY},
                                &svc),
              0);
  arbor_test_run_once_until(&loop, arbor_node_state(svc) == ARBOR_STATE_STARTED);
  int pid = service_pid(svc);
  arbor_process_usage_t u = usage_of(svc);
  assert_int_eq(u.pid, pid);
  assert_int_eq(kill(pid, SIGKILL), 0);
  arbor_test_run_once_until(&loop, service_pid(svc) == 0);
  assert_code(arbor_service_usage(svc, &u), ARBOR_ENOENT);
  assert_code(arbor_service_usage(NULL, &u), ARBOR_EINVAL);
  assert_code(arbor_service_usage(svc, NULL), ARBOR_EINVAL);
  assert_code(arbor_service_usage(arbor_root(rt), &u), ARBOR_EKIND);
  arbor_test_close(rt, &loop);
}

/* The sampler itself: a pid that is gone between the scan and the walk (here:
 * a child that exited and was reaped) is ARBOR_ENOENT, not a crash or zeros. */
static void procstat_pid_gone_mid_read_is_enoent(void **state) {
  (void)state;
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0)
    _exit(0);
  struct arbor__pstable *t = NULL;
  assert_code(arbor__procstat_scan(&t), 0);
  assert_int_eq(waitpid(child, NULL, 0), child);
  arbor_process_usage_t u;
  assert_code(arbor__procstat_tree(t, (int)child, 0, &u, NULL), ARBOR_ENOENT);
  assert_code(arbor__procstat_tree(t, (int)getpid(), ARBOR__PROCSTAT_NO_FDS, &u, NULL), 0);
  assert_uint_eq(u.fds, 0);
  assert_true(u.processes >= 1);
  arbor__procstat_free(t);
}

/* Many services, one read of /proc: each gets its own result. */
static int idle_fiber(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600u * 1000u);
}

static void procstat_usage_many_one_result_each(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_test_open(&loop, &rt, NULL);
  arbor_node_t *a = run_script(&loop, rt, "a", "echo >&3; exec sleep 30");
  arbor_node_t *b = run_script(&loop, rt, "b", "sleep 30 & echo >&3; wait");
  arbor_node_t *f = NULL;
  assert_code(arbor_service_add(arbor_root(rt),
                                &(arbor_service_spec_t){.name = "fiber", .fiber = idle_fiber},
                                &f),
              0);
  arbor_node_t *svcs[] = {a, f, b};
  arbor_process_usage_t out[3];
  int rcs[3];
  assert_int_eq(arbor_service_usage_many(svcs, 3, out, rcs), 2);
  assert_code(rcs[0], 0);
  assert_code(rcs[1], ARBOR_EKIND);
  assert_code(rcs[2], 0);
  assert_uint_eq(out[0].processes, 1);
  assert_uint_eq(out[2].processes, 2);
  assert_int_eq(out[0].pid, service_pid(a));
  assert_code(arbor_service_usage_many(NULL, 3, out, rcs), ARBOR_EINVAL);
  assert_int_eq(arbor_service_usage_many(NULL, 0, NULL, NULL), 0);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest procstat_tests[] = {
    cmocka_unit_test(procstat_rss_counts_touched_memory),
    cmocka_unit_test(procstat_children_counted_as_processes),
    cmocka_unit_test(procstat_descendants_found_after_setsid_and_orphaning),
    cmocka_unit_test(procstat_open_fds_match_proc),
    cmocka_unit_test(procstat_cpu_time_of_busy_loop_grows),
    cmocka_unit_test(procstat_samples_under_a_second_apart_keep_the_percent),
    cmocka_unit_test(procstat_vanished_program_gives_enoent),
    cmocka_unit_test(procstat_pid_gone_mid_read_is_enoent),
    cmocka_unit_test(procstat_usage_many_one_result_each),
};

ARBOR_TEST_MAIN(procstat_tests)
