/* bench/bench_exec.c - what starting a process service through arbor-exec costs
 * (supervisor/runas.c: user, group, umask, rlimits), against a direct spawn.
 *
 *   bench_exec MODE COUNT [PROG]
 *
 * A crash loop like bench_supervise's C1: one one_for_one supervisor with
 * .no_backoff = 1, one permanent process service running PROG (default
 * /bin/true, which exits at once), timed from the runtime's start until COUNT
 * restarts have happened; then the supervisor is cancelled. MODE:
 *   direct   no execution settings: uv_spawn runs PROG (what every service did
 *            before arbor-exec);
 *   umask    umask 022: uv_spawn runs arbor-exec, which sets it and execs PROG;
 *   user     user nobody with its groups, umask and two rlimits (root only): the
 *            whole path (setrlimit x2, umask, setgroups, setgid, setuid, exec).
 * Prints RESULT peer=arbor bench=exec mode=MODE n=COUNT us_per_restart=...
 * restarts_per_s=...; the difference between modes is arbor-exec's share (one
 * more execve and dynamic load of a small program). The helper is the one beside
 * this build (build/<variant>/arbor-exec). Not a test; see docs/PERFORMANCE.md.
 */
#include <arbor.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_exec: %s: %s\n", what, rc < 0 ? arbor_strerror(rc) : "failed");
  exit(1);
}

struct run {
  arbor_node_t *sup, *svc;
  uint32_t count;
  uint64_t done_ns;
};

/* Polls the restart count each millisecond: a 1 ms tick against runs of
 * hundreds of ms (COUNT >= 300), under 0.5 % of the figure. */
static void on_tick(uv_timer_t *t) {
  struct run *r = t->data;
  arbor_service_info_t si;
  if (r->done_ns == 0 && arbor_service_info(r->svc, &si) == 0 && si.restarts >= r->count) {
    r->done_ns = mono_ns();
    arbor_node_cancel(r->sup);
    uv_close((uv_handle_t *)t, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_exec direct|umask|user COUNT [PROG]\n");
    return 2;
  }
  const char *mode = argv[1];
  struct run r = {.count = (uint32_t)strtoul(argv[2], NULL, 10)};
  char *prog[] = {argc > 3 ? argv[3] : "/bin/true", NULL};
  char helper[PATH_MAX], self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    die("readlink /proc/self/exe", 0);
  self[n] = '\0';
  *strrchr(self, '/') = '\0';    /* build/<v>/bench */
  *strrchr(self, '/') = '\0';
  snprintf(helper, sizeof helper, "%.*s/arbor-exec", (int)(sizeof helper - 16), self);

  arbor_service_spec_t spec = {.name = "child", .argv = prog};
  const arbor_rlimit_t limits[] = {{"nofile", 1024, 4096}, {"core", 0, 0}};
  if (strcmp(mode, "umask") == 0) {
    spec.umask_set = 1;
    spec.umask = 022;
  } else if (strcmp(mode, "user") == 0) {
    if (geteuid() != 0)
      die("mode user needs root", 0);
    spec.user = "nobody";
    spec.umask_set = 1;
    spec.umask = 022;
    spec.rlimits = limits;
    spec.nrlimits = 2;
  } else if (strcmp(mode, "direct") != 0) {
    die("MODE must be direct, umask or user", 0);
  }

  uv_loop_t loop;
  arbor_runtime_t *rt;
  uv_loop_init(&loop);
  int rc = arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.exec_helper = helper});
  if (rc < 0)
    die("arbor_runtime_new", rc);
  rc = arbor_supervisor_new(arbor_root(rt),
                            &(arbor_sup_opts_t){.name = "sup", .no_backoff = 1,
                                                .intensity = (int)r.count + 10,
                                                .period_ms = 3600000},
                            &r.sup);
  if (rc < 0 || (rc = arbor_service_add(r.sup, &spec, &r.svc)) < 0)
    die("arbor_service_add", rc);
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  tick.data = &r;
  uv_timer_start(&tick, on_tick, 1, 1);
  uint64_t t0 = mono_ns();
  arbor_run(rt);
  if (!uv_is_closing((uv_handle_t *)&tick))   /* the supervisor gave up first */
    uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (r.done_ns == 0)
    die("the supervisor ended before COUNT restarts", 0);
  double us = (double)(r.done_ns - t0) / 1e3 / r.count;
  printf("RESULT peer=arbor bench=exec mode=%s n=%u us_per_restart=%.1f restarts_per_s=%.0f\n",
         mode, r.count, us, 1e6 / us);
  return 0;
}
