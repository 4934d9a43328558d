/* bench/bench_limits.c - issue 10's memory-limit benchmark: the time from a
 * program crossing its max_memory to arbor failing the run and to the new run
 * (docs/PERFORMANCE.md, "Limits").
 *
 *   cross COUNT [LIMIT_MIB]   COUNT times, one after the other: a process service
 *        (max_memory LIMIT_MIB, default 64; max_memory_for_ms 0) under a
 *        supervisor without backoff runs this program as `hog`, which waits a
 *        random 0-200 ms (so the crossing falls anywhere in the 100 ms period),
 *        then touches memory 1 MiB at a time, reading its own RSS from
 *        /proc/self/statm after each MiB, and writes the CLOCK_MONOTONIC time at
 *        which it first went over the limit to a stamp file. The service's next
 *        run finds a marker and only sleeps. Measured against that stamp, on the
 *        same clock (uv_hrtime is CLOCK_MONOTONIC): detect = the EMEMLIMIT error
 *        made (arbor_error_time_ns of the kept failure), restart = the next run
 *        STARTED (its node's started_ns: a program is STARTED at its spawn).
 *        Prints one RESULT line with the median, p90, min and max of each, in ms.
 *   hog LIMIT_BYTES STAMP MARKER   the child (above).
 *
 * The loop is driven by hand with a 1 ms timer (as the tests do) only to see
 * when a run is over; it does not move arbor's own readings. Not a test:
 * docs/PERFORMANCE.md has the method and the figures.
 */
#include <arbor.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_limits: %s: %s\n", what, rc < 0 ? arbor_strerror(rc) : "failed");
  exit(1);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ the child */

static uint64_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long size = 0, res = 0;
  if (f != NULL) {
    if (fscanf(f, "%llu %llu", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int hog_main(uint64_t limit, const char *stamp, const char *marker) {
  struct stat st;
  if (stat(marker, &st) == 0) {  /* the restarted run: stay small */
    sleep(60);
    return 0;
  }
  int fd = open(marker, O_WRONLY | O_CREAT, 0644);
  if (fd >= 0)
    close(fd);
  srand((unsigned)mono_ns());
  struct timespec d = {0, (long)(rand() % 200) * 1000000L};
  nanosleep(&d, NULL);
  size_t mib = 1024 * 1024, total = (size_t)limit + 16 * mib;
  char *p = malloc(total);
  if (p == NULL)
    return 2;
  int crossed = 0;
  for (size_t off = 0; off < total; off += mib) {
    memset(p + off, 1, mib);
    if (!crossed && rss_bytes() > limit) {
      crossed = 1;
      char line[32];
      int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)mono_ns());
      if ((fd = open(stamp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
        if (write(fd, line, (size_t)n) != n)
          return 3;
        close(fd);
      }
    }
  }
  sleep(60);                     /* the stop signal ends it */
  return 0;
}

/* ----------------------------------------------------------- the parent */

static void tick(uv_timer_t *t) { (void)t; }

static uint64_t read_stamp(const char *path) {
  FILE *f = fopen(path, "r");
  unsigned long long v = 0;
  if (f != NULL) {
    if (fscanf(f, "%llu", &v) != 1)
      v = 0;
    fclose(f);
  }
  return v;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Linear interpolation between closest ranks, as bench_supervise. Sorts xs. */
static double pct(double *xs, size_t n, double q) {
  qsort(xs, n, sizeof *xs, cmp_double);
  double k = (double)(n - 1) * q;
  size_t lo = (size_t)k, hi = lo + 1 < n ? lo + 1 : n - 1;
  return xs[lo] + (xs[hi] - xs[lo]) * (k - (double)lo);
}

/* The run after the first has STARTED (it is not the one that failed). */
static uint64_t next_run_started(arbor_runtime_t *rt, arbor_node_t *svc, uint64_t failed_inc) {
  arbor_service_info_t si;
  if (arbor_service_info(svc, &si) != 0 || si.incarnation_id == 0 ||
      si.incarnation_id == failed_inc)
    return 0;
  arbor_node_t *inc = arbor_node_find(rt, si.incarnation_id);
  arbor_node_info_t in;
  if (inc == NULL || arbor_node_state(inc) < ARBOR_STATE_STARTED)
    return 0;
  arbor_node_info(inc, &in);
  return in.started_ns;
}

static int run_cross(size_t count, uint64_t limit_mib) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    die("readlink /proc/self/exe", 0);
  self[n] = '\0';
  char dir[] = "/tmp/bench-limits-XXXXXX";
  if (mkdtemp(dir) == NULL)
    die("mkdtemp", 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  arbor_runtime_t *rt;
  int rc = arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1});
  if (rc < 0)
    die("arbor_runtime_new", rc);
  arbor_node_t *sup;
  rc = arbor_supervisor_new(arbor_root(rt),
                            &(arbor_sup_opts_t){.name = "sup", .no_backoff = 1,
                                                .intensity = 100000, .period_ms = 1000},
                            &sup);
  if (rc < 0)
    die("arbor_supervisor_new", rc);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, tick, 1, 1);
  double *detect = calloc(count, sizeof *detect), *restart = calloc(count, sizeof *restart);
  uint64_t limit = limit_mib * 1024 * 1024;
  char limit_s[32];
  snprintf(limit_s, sizeof limit_s, "%llu", (unsigned long long)limit);
  for (size_t i = 0; i < count; i++) {
    char name[32], stamp[128], marker[128];
    snprintf(name, sizeof name, "hog%zu", i);
    snprintf(stamp, sizeof stamp, "%s/%s.stamp", dir, name);
    snprintf(marker, sizeof marker, "%s/%s.marker", dir, name);
    char *argv[] = {self, "hog", limit_s, stamp, marker, NULL};
    arbor_node_t *svc;
    rc = arbor_service_add(sup, &(arbor_service_spec_t){.name = name, .argv = argv,
                                                        .max_memory = limit}, &svc);
    if (rc < 0)
      die("arbor_service_add", rc);
    arbor_node_ref(svc);
    arbor_service_failure_t f;
    uint64_t started = 0;
    while (arbor_service_failure(svc, 0, &f) != 0)
      uv_run(&loop, UV_RUN_ONCE);
    if (arbor_error_code(f.error) != ARBOR_EMEMLIMIT) {
      arbor_error_print(f.error, stderr);
      die("the run failed otherwise", 0);
    }
    while ((started = next_run_started(rt, svc, f.incarnation_id)) == 0)
      uv_run(&loop, UV_RUN_ONCE);
    uint64_t crossed = read_stamp(stamp);
    if (crossed == 0)
      die("no stamp from the hog", 0);
    detect[i] = (double)(arbor_error_time_ns(f.error) - crossed) / 1e6;
    restart[i] = (double)(started - crossed) / 1e6;
    arbor_node_cancel(svc);
    while (!arbor_service_is_finished(svc))
      uv_run(&loop, UV_RUN_ONCE);
    arbor_node_unref(svc);
    unlink(stamp);
    unlink(marker);
  }
  arbor_node_cancel(sup);
  uv_close((uv_handle_t *)&t, NULL);
  arbor_runtime_close(rt, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    die("uv_loop_close: handles left", 0);
  rmdir(dir);
  printf("RESULT peer=arbor bench=memlimit_cross count=%zu limit_mib=%llu check_ms=%d "
         "detect_median_ms=%.1f detect_p90_ms=%.1f detect_min_ms=%.1f detect_max_ms=%.1f "
         "restart_median_ms=%.1f restart_p90_ms=%.1f restart_min_ms=%.1f "
         "restart_max_ms=%.1f\n",
         count, (unsigned long long)limit_mib, ARBOR_MEMORY_CHECK_MS, pct(detect, count, 0.5),
         pct(detect, count, 0.9), pct(detect, count, 0.0), pct(detect, count, 1.0),
         pct(restart, count, 0.5), pct(restart, count, 0.9), pct(restart, count, 0.0),
         pct(restart, count, 1.0));
  free(detect);
  free(restart);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "hog") == 0 && argc == 5)
    return hog_main(strtoull(argv[2], NULL, 10), argv[3], argv[4]);
  if (strcmp(mode, "cross") == 0 && (argc == 3 || argc == 4))
    return run_cross(strtoull(argv[2], NULL, 10), argc == 4 ? strtoull(argv[3], NULL, 10) : 64);
  fprintf(stderr,
          "usage: %s cross COUNT [LIMIT_MIB]   time from crossing max_memory to the restart\n"
          "       %s hog LIMIT_BYTES STAMP MARKER   the child\n",
          argv[0], argv[0]);
  return 2;
}
