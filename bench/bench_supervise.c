/* bench/bench_supervise.c - benchmark C of ../shared/peers (process supervision),
 * for arbor; issue 5's figures.
 *
 * The supervised child is the peers' `stamp` (../shared/peers/src/stamp.c, static):
 * it appends "S <CLOCK_MONOTONIC ns> <pid>" to $STAMP_FILE when it runs, lives
 * $STAMP_LIFE_MS ms, appends "E <ns> <pid>" and exits 1. The restart gap is the
 * next S minus the previous E, computed exactly as lib/sup_bench.py does (same
 * percentile interpolation), so arbor's figures sit beside the floors' and the
 * peers'. PROG below is that binary; without it (or with PROG "self") this program
 * serves as the child itself (`bench_supervise stamp`, dynamically linked, so the
 * loader's cost lands in the gap).
 *
 *   restart LIFE_MS COUNT [PROG]   C1 (LIFE_MS 0) and C2 (LIFE_MS 1100): one
 *        supervisor (one_for_one, .no_backoff = 1, intensity COUNT + 10 per 5 s), one
 *        process service running PROG, restart permanent. Runs until COUNT + 1
 *        incarnations have ended (COUNT restarts), then cancels the supervisor.
 *        Prints sup_bench's GAPS and RESULT lines (peer=arbor bench=restart), plus
 *        restarts_per_s = (starts - 1) / (last S - first S) and where the gap goes,
 *        from arbor's own events (same clock): exit -> incarnation seen ended
 *        (seen_*), seen -> next incarnation CREATED (decide_*), CREATED -> next S
 *        (spawn_*: fiber start, uv_spawn, fork, exec).
 *   backoff COUNT MAX_MS [PROG]    C1 with the default backoff (backoff_ms 100,
 *        doubling, capped at MAX_MS, 0: the default 30000; jitter on): a child that
 *        exits at once, COUNT (<= 7) restarts. Prints, per restart, the policy's
 *        nominal delay, the delay arbor chose (arbor_service_failure().backoff_ms)
 *        and the observed gap (next S - E), and policy_ok=1 when every chosen delay
 *        is within [nominal - 25 %, nominal] and no observed gap is shorter.
 *   idle CHILDREN WINDOW_S [SETTLE_S [parallel|sequential]]   C3: CHILDREN process
 *        services running `/bin/sleep 3600` under one supervisor, with parallel_stop
 *        (the default: independent programs, as an operator runs them) or without
 *        (sequential: OTP's one child after the other). Once all run, an observer process
 *        (double-forked before the runtime exists, so its exit is not our SIGCHLD)
 *        waits SETTLE_S (default 3, as sup_bench), samples this process from /proc
 *        (voluntary + nonvoluntary context switches of every thread = wake-ups,
 *        schedstat CPU), sleeps WINDOW_S, samples again, reads VmRSS and Pss, counts
 *        the `sleep` children, takes the time and sends SIGTERM, arbor's shutdown
 *        signal. stop_all_ms runs from that SIGTERM until arbor_run has returned:
 *        every program reaped, the runtime closed. Prints sup_bench's idle RESULT line.
 *        With ARBOR_BENCH_MAX_MEMORY=BYTES in the environment every service gets that
 *        max_memory (issue 10: what the memory limit's readings cost; the line then
 *        says max_memory=BYTES): with a limit high enough, nothing is restarted and
 *        the wake-ups are the limit's timer. ARBOR_BENCH_MEMORY_SCAN=1 as well: the
 *        readings scan all of /proc (arbor_runtime_opts_t.memory_scan, the fallback).
 *   gaps PEER LIFE_MS FILE [COUNT]  parses a stamp file another supervisor produced
 *        (bench/run.sh runs the uv-loop floor, respawn_uv.c, that way) and prints the
 *        same GAPS and RESULT lines, so floor and arbor are computed by one parser.
 *   stamp                          the child itself (see above).
 *
 * Every mode uses arbor_run. Event recording stays on. Not a test: bench/run.sh
 * runs it beside the floor and reports medians.
 */
#include <arbor.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_INC 100000

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_supervise: %s: %s\n", what, rc < 0 ? arbor_strerror(rc) : "failed");
  exit(1);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ the child */

static void stamp_line(int fd, char tag) {
  char buf[96];
  int n = snprintf(buf, sizeof buf, "%c %llu %d\n", tag, (unsigned long long)mono_ns(),
                   (int)getpid());
  if (write(fd, buf, (size_t)n) != n)
    _exit(3);
}

/* stamp.c's behaviour, for when the static stamp binary is not there. */
static int stamp_main(void) {
  const char *path = getenv("STAMP_FILE");
  int fd = open(path ? path : "stamps.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0)
    return 2;
  stamp_line(fd, 'S');
  const char *life = getenv("STAMP_LIFE_MS");
  long ms = life ? strtol(life, NULL, 10) : 0;
  if (ms > 0) {
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
  }
  stamp_line(fd, 'E');
  return 1;
}

/* ----------------------------------------------------------- statistics */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* sup_bench.py's pct(): linear interpolation between closest ranks. Sorts xs. */
static double pct(double *xs, size_t n, double q) {
  if (n == 0)
    return 0.0 / 0.0;
  qsort(xs, n, sizeof *xs, cmp_double);
  double k = (double)(n - 1) * q;
  size_t lo = (size_t)k, hi = lo + 1 < n ? lo + 1 : n - 1;
  return xs[lo] + (xs[hi] - xs[lo]) * (k - (double)lo);
}

/* --------------------------------------------------------- stamp files */

typedef struct {
  char tag;
  uint64_t ns;
} stamp_t;

static stamp_t *stamps;
static size_t nstamps;

/* Reads FILE; keeps the first `limit` starts (0: all) and what follows them up to
 * the next start, so a run that caught one extra start counts as asked. */
static void read_stamps(const char *file, size_t limit) {
  FILE *f = fopen(file, "r");
  if (f == NULL) {
    fprintf(stderr, "bench_supervise: %s: %s\n", file, strerror(errno));
    exit(1);
  }
  size_t cap = 1024, starts = 0;
  stamps = malloc(cap * sizeof *stamps);
  char tag;
  unsigned long long ns;
  int pid;
  while (fscanf(f, " %c %llu %d", &tag, &ns, &pid) == 3) {
    if (tag == 'S' && limit != 0 && ++starts > limit)
      break;
    if (nstamps == cap)
      stamps = realloc(stamps, (cap *= 2) * sizeof *stamps);
    stamps[nstamps++] = (stamp_t){tag, ns};
  }
  fclose(f);
}

/* gap[i] = S(i+1) - E(i) in ms, as sup_bench pairs them: the S after an E. Also
 * start-to-start intervals. Fills the arrays (MAX_INC entries each); returns gaps. */
static size_t compute_gaps(double *gaps, double *s2s, size_t *ns2s, uint64_t *s_first,
                           uint64_t *s_last, size_t *nstarts) {
  size_t ng = 0, nss = 0, starts = 0;
  uint64_t last_e = 0, last_s = 0;
  int have_e = 0, have_s = 0;
  for (size_t i = 0; i < nstamps && ng < MAX_INC; i++) {
    if (stamps[i].tag == 'S') {
      if (have_e)
        gaps[ng++] = (double)(stamps[i].ns - last_e) / 1e6;
      if (have_s)
        s2s[nss++] = (double)(stamps[i].ns - last_s) / 1e6;
      else
        *s_first = stamps[i].ns;
      *s_last = stamps[i].ns;
      last_s = stamps[i].ns;
      have_s = 1;
      have_e = 0;
      starts++;
    } else {
      last_e = stamps[i].ns;
      have_e = 1;
    }
  }
  *ns2s = nss;
  *nstarts = starts;
  return ng;
}

/* Prints sup_bench's GAPS and RESULT lines for the stamps read; `extra` is appended
 * to the RESULT line (arbor's breakdown). */
static void print_restart(const char *peer, long life_ms, const char *extra) {
  double *gaps = malloc(MAX_INC * sizeof *gaps), *s2s = malloc(MAX_INC * sizeof *s2s);
  size_t nss, starts;
  uint64_t s_first = 0, s_last = 0;
  size_t ng = compute_gaps(gaps, s2s, &nss, &s_first, &s_last, &starts);
  printf("GAPS peer=%s life_ms=%ld ms=", peer, life_ms);
  for (size_t i = 0; i < ng; i++)
    printf("%s%.3f", i ? "," : "", gaps[i]);
  printf("\n");
  double rate = starts > 1 && s_last > s_first
                    ? (double)(starts - 1) / ((double)(s_last - s_first) / 1e9) : 0;
  double mn = ng ? gaps[0] : 0, mx = ng ? gaps[0] : 0;
  for (size_t i = 0; i < ng; i++) {
    if (gaps[i] < mn) mn = gaps[i];
    if (gaps[i] > mx) mx = gaps[i];
  }
  double p50 = pct(gaps, ng, .5), p90 = pct(gaps, ng, .9), p99 = pct(gaps, ng, .99);
  printf("RESULT peer=%s bench=restart life_ms=%ld restarts=%zu gap_p50_ms=%.3f "
         "gap_p90_ms=%.3f gap_p99_ms=%.3f gap_max_ms=%.3f gap_min_ms=%.3f "
         "start_to_start_p50_ms=%.3f restarts_per_s=%.1f leftover_killed=0%s\n",
         peer, life_ms, ng, p50, p90, p99, mx, mn, pct(s2s, nss, .5), rate, extra);
  free(gaps);
  free(s2s);
}

static char stamp_path[] = "/tmp/arbor-bench-stamps-XXXXXX";

static void make_stamp_file(long life_ms) {
  int fd = mkstemp(stamp_path);
  if (fd < 0) {
    perror("mkstemp");
    exit(1);
  }
  close(fd);
  char life[32];
  snprintf(life, sizeof life, "%ld", life_ms);
  setenv("STAMP_FILE", stamp_path, 1);
  setenv("STAMP_LIFE_MS", life, 1);
}

/* The child's argv: PROG, or this program in `stamp` mode. */
static char *child_argv[3];
static char self_exe[4096];

static void set_child(const char *prog) {
  if (prog != NULL && strcmp(prog, "self") != 0) {
    child_argv[0] = (char *)prog;
    child_argv[1] = NULL;
    return;
  }
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0)
    die("readlink /proc/self/exe", 0);
  self_exe[n] = '\0';
  child_argv[0] = self_exe;
  child_argv[1] = "stamp";
  child_argv[2] = NULL;
}

/* ------------------------------------------- incarnations, from the events */

typedef struct {
  uint64_t id;
  uint64_t created, started, ended;   /* event times (monotonic ns); 0: not yet */
} inc_t;

static arbor_runtime_t *rt;
static arbor_node_t *sup, *svc;
static uint64_t svc_id, cursor = 1, events_missed;
static inc_t *incs;
static size_t ninc, want_ended;
static uv_prepare_t watcher;
static int stopped;

static inc_t *inc_of(uint64_t id, int create) {
  for (size_t i = ninc; i > 0; i--)
    if (incs[i - 1].id == id)
      return &incs[i - 1];
  if (!create || ninc == MAX_INC)
    return NULL;
  incs[ninc] = (inc_t){.id = id};
  return &incs[ninc++];
}

/* Reads the new events: an incarnation is a child of the service; it has ended
 * when it leaves STARTED (STOPPING, STOPPED or FINISHED) or fails, whichever is
 * recorded first. */
static void read_events(void) {
  arbor_event_t ev[256];
  int n;
  uint64_t missed;
  while ((n = arbor_events_read(rt, &cursor, ev, 256, &missed)) > 0) {
    events_missed += missed;
    for (int i = 0; i < n; i++) {
      if (ev[i].parent_id != svc_id)
        continue;
      inc_t *c = inc_of(ev[i].node_id, ev[i].type == ARBOR_EVENT_CREATED);
      if (c == NULL)
        continue;
      if (ev[i].type == ARBOR_EVENT_CREATED && c->created == 0)
        c->created = ev[i].time_ns;
      else if (ev[i].type == ARBOR_EVENT_STATE && ev[i].to == ARBOR_STATE_STARTED)
        c->started = ev[i].time_ns;
      if (c->ended == 0 && c->started != 0 &&
          (ev[i].type == ARBOR_EVENT_FAILED ||
           (ev[i].type == ARBOR_EVENT_STATE && ev[i].to >= ARBOR_STATE_STOPPING)))
        c->ended = ev[i].time_ns;
    }
  }
}

static void on_closed(uv_handle_t *h) { (void)h; }

/* The delay chosen after each incarnation's failure, by incarnation: read while
 * the service lives (arbor_run frees every node, referenced or not). */
static uint64_t *chosen_ms;

static void record_history(void) {
  arbor_service_failure_t f;
  if (chosen_ms == NULL)
    return;
  for (size_t i = 0; arbor_service_failure(svc, i, &f) == 0; i++)
    for (size_t k = 0; k < ninc; k++)
      if (incs[k].id == f.incarnation_id && f.restarted)
        chosen_ms[k] = f.backoff_ms + 1;   /* 0: none */
}

/* Before each poll (after the drain, which a check handle would miss when the
 * loop then blocks): follow the events; once the wanted number of
 * incarnations has ended, cancel the supervisor (arbor_run then returns). */
static void on_prepare(uv_prepare_t *h) {
  (void)h;
  read_events();
  size_t ended = 0;
  for (size_t i = 0; i < ninc; i++)
    ended += incs[i].ended != 0;
  if (!stopped && ended >= want_ended) {
    stopped = 1;
    record_history();
    uv_close((uv_handle_t *)&watcher, on_closed);
    int rc = arbor_node_cancel(sup);
    if (rc < 0)
      die("arbor_node_cancel(supervisor)", rc);
  }
}

static void start_watcher(void) {
  uv_prepare_init(arbor_runtime_loop(rt), &watcher);
  uv_prepare_start(&watcher, on_prepare);
  uv_unref((uv_handle_t *)&watcher);
}

static void new_runtime(int no_signals) {
  uv_loop_t *loop = uv_default_loop();
  /* The default event ring: the watcher reads it before every poll, so it cannot
   * overflow between two reads, and a bigger one would only make fork dearer. */
  int rc = arbor_runtime_new(&rt, loop, &(arbor_runtime_opts_t){
      .no_signals = no_signals, .memory_scan = getenv("ARBOR_BENCH_MEMORY_SCAN") != NULL});
  if (rc < 0)
    die("arbor_runtime_new", rc);
}

static int finish_runtime(int run_rc) {
  uv_loop_t *loop = uv_default_loop();
  uv_run(loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(loop);
  if (run_rc < 0)
    fprintf(stderr, "bench_supervise: arbor_run: %s\n", arbor_strerror(run_rc));
  if (closed != 0)
    fprintf(stderr, "bench_supervise: uv_loop_close: %s\n", uv_strerror(closed));
  return run_rc < 0 || closed != 0;
}

/* One supervisor with one process service running the stamp child. */
static void add_stamp_service(const arbor_sup_opts_t *opts) {
  int rc = arbor_supervisor_new(arbor_root(rt), opts, &sup);
  if (rc < 0)
    die("arbor_supervisor_new", rc);
  rc = arbor_service_add(sup,
                         &(arbor_service_spec_t){.name = "stamp", .argv = child_argv,
                                                 .restart = ARBOR_PERMANENT},
                         &svc);
  if (rc < 0)
    die("arbor_service_add", rc);
  arbor_node_ref(sup);
  arbor_node_ref(svc);
  svc_id = arbor_node_id(svc);
}

/* --------------------------------------------------------------- restart */

static int run_restart(long life_ms, size_t count, const char *prog) {
  set_child(prog);
  make_stamp_file(life_ms);
  incs = calloc(MAX_INC, sizeof *incs);
  new_runtime(1);
  want_ended = count + 1;
  add_stamp_service(&(arbor_sup_opts_t){.name = "bench", .no_backoff = 1,
                                        .intensity = (int)count + 10});
  start_watcher();
  int rc = arbor_run(rt);
  int bad = finish_runtime(rc);

  /* Where the gap goes: E(k) -> ended(k) -> created(k+1) -> S(k+1). The stamps of
   * incarnation k are the k-th S and the E after it. */
  read_stamps(stamp_path, count + 1);
  double *seen = malloc(MAX_INC * sizeof *seen), *decide = malloc(MAX_INC * sizeof *decide),
         *spawn = malloc(MAX_INC * sizeof *spawn);
  size_t nb = 0, k = 0;
  uint64_t e_prev = 0;
  for (size_t i = 0; i < nstamps; i++) {
    if (stamps[i].tag == 'E') {
      e_prev = stamps[i].ns;
      continue;
    }
    /* the start of incarnation k (0-based) */
    if (k > 0 && e_prev != 0 && k < ninc && incs[k - 1].ended && incs[k].created) {
      seen[nb] = ((double)incs[k - 1].ended - (double)e_prev) / 1e6;
      decide[nb] = ((double)incs[k].created - (double)incs[k - 1].ended) / 1e6;
      spawn[nb] = ((double)stamps[i].ns - (double)incs[k].created) / 1e6;
      nb++;
    }
    e_prev = 0;
    k++;
  }
  char extra[256];
  snprintf(extra, sizeof extra,
           " seen_p50_ms=%.3f decide_p50_ms=%.3f spawn_p50_ms=%.3f incarnations=%zu"
           " events_missed=%llu",
           pct(seen, nb, .5), pct(decide, nb, .5), pct(spawn, nb, .5), ninc,
           (unsigned long long)events_missed);
  print_restart("arbor", life_ms, extra);
  unlink(stamp_path);
  free(seen);
  free(decide);
  free(spawn);
  free(stamps);
  free(incs);
  return bad;
}

/* --------------------------------------------------------------- backoff */

static int run_backoff(size_t count, uint64_t max_ms, const char *prog) {
  if (count < 1 || count > ARBOR_SERVICE_HISTORY - 1) {
    fprintf(stderr, "bench_supervise: backoff COUNT must be 1..%d (the failure history)\n",
            ARBOR_SERVICE_HISTORY - 1);
    return 2;
  }
  set_child(prog);
  make_stamp_file(0);
  incs = calloc(MAX_INC, sizeof *incs);
  chosen_ms = calloc(MAX_INC, sizeof *chosen_ms);
  new_runtime(1);
  want_ended = count + 1;
  /* Defaults but the intensity: 3 restarts per 5 s would end the loop after the
   * fourth. The period stays 5 s: a run that lasted a period resets the doubling. */
  add_stamp_service(&(arbor_sup_opts_t){.name = "bench", .intensity = (int)count + 10,
                                        .backoff_max_ms = max_ms});
  start_watcher();
  int rc = arbor_run(rt);
  int bad = finish_runtime(rc);

  /* The delays chosen after incarnations 1 .. count, oldest first. */
  uint64_t chosen[ARBOR_SERVICE_HISTORY];
  size_t nch = 0;
  while (nch < count && nch < ninc && chosen_ms[nch] != 0) {
    chosen[nch] = chosen_ms[nch] - 1;
    nch++;
  }
  read_stamps(stamp_path, count + 1);
  double *gaps = malloc(MAX_INC * sizeof *gaps), *s2s = malloc(MAX_INC * sizeof *s2s);
  size_t nss, starts;
  uint64_t s0, s1;
  size_t ng = compute_gaps(gaps, s2s, &nss, &s0, &s1, &starts);
  uint64_t base = 100, cap = max_ms ? max_ms : 30000;
  int ok = nch == count && ng == count;
  char nom_s[256] = "", ch_s[256] = "", ob_s[256] = "";
  double over[ARBOR_SERVICE_HISTORY], over_max = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t nominal = base << i < cap ? base << i : cap;
    snprintf(nom_s + strlen(nom_s), sizeof nom_s - strlen(nom_s), "%s%llu", i ? "," : "",
             (unsigned long long)nominal);
    if (i < nch) {
      snprintf(ch_s + strlen(ch_s), sizeof ch_s - strlen(ch_s), "%s%llu", i ? "," : "",
               (unsigned long long)chosen[i]);
      if (chosen[i] > nominal || chosen[i] < nominal - nominal / 4)
        ok = 0;
    }
    if (i < ng) {
      snprintf(ob_s + strlen(ob_s), sizeof ob_s - strlen(ob_s), "%s%.3f", i ? "," : "",
               gaps[i]);
      over[i] = i < nch ? gaps[i] - (double)chosen[i] : 0;
      if (over[i] < 0)
        ok = 0;
      if (over[i] > over_max)
        over_max = over[i];
    }
  }
  size_t no = ng < nch ? ng : nch;
  printf("RESULT peer=arbor bench=backoff restarts=%zu backoff_ms=%llu backoff_max_ms=%llu "
         "nominal_ms=%s chosen_ms=%s observed_ms=%s overhead_p50_ms=%.3f overhead_max_ms=%.3f "
         "policy_ok=%d\n",
         count, (unsigned long long)base, (unsigned long long)cap, nom_s, ch_s, ob_s,
         pct(over, no, .5), over_max, ok);
  unlink(stamp_path);
  free(gaps);
  free(s2s);
  free(stamps);
  free(incs);
  free(chosen_ms);
  return bad;
}

/* ------------------------------------------------------------------ idle */

typedef struct {
  unsigned long long ctx, vol, nonvol, main_ctx, cpu_ns;
} sample_t;

/* Filled by the observer, read by the supervisor after its run. */
struct shared {
  sample_t s0, s1;
  double window_s;
  long rss_kb, pss_kb, children_end;
  uint64_t t_kill;
  int done;
};
static struct shared *sh;

static long status_field(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[256];
  size_t kl = strlen(key);
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = strtol(line + kl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

/* Every thread of pid: sup_bench reads /proc/PID/status, which is the main
 * thread's; arbor's loop runs there, and any other thread's switches count too. */
static void take_sample(pid_t pid, sample_t *s) {
  char path[128];
  memset(s, 0, sizeof *s);
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    int tid = atoi(e->d_name);
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, tid);
    long v = status_field(path, "voluntary_ctxt_switches");
    long nv = status_field(path, "nonvoluntary_ctxt_switches");
    if (v < 0 || nv < 0)
      continue;
    s->vol += (unsigned long long)v;
    s->nonvol += (unsigned long long)nv;
    s->ctx += (unsigned long long)(v + nv);
    if (tid == (int)pid)
      s->main_ctx = (unsigned long long)(v + nv);
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, tid);
    FILE *f = fopen(path, "r");
    unsigned long long cpu;
    if (f != NULL && fscanf(f, "%llu", &cpu) == 1)
      s->cpu_ns += cpu;
    if (f != NULL)
      fclose(f);
  }
  closedir(d);
}

static long pss_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
  return status_field(path, "Pss");
}

/* `sleep` processes whose parent is pid. */
static long count_sleepers(pid_t pid) {
  DIR *d = opendir("/proc");
  long n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", atoi(e->d_name));
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *l = strchr(buf, '('), *r = strrchr(buf, ')');
    if (l == NULL || r == NULL)
      continue;
    char state;
    int ppid;
    if (sscanf(r + 2, "%c %d", &state, &ppid) == 2 && ppid == (int)pid && state != 'Z' &&
        r - l - 1 == 5 && strncmp(l + 1, "sleep", 5) == 0)
      n++;
  }
  if (d != NULL)
    closedir(d);
  return n;
}

/* The observer: a grandchild, so that its exit is no SIGCHLD of ours. Waits for
 * the go byte, then measures as sup_bench does and sends SIGTERM. */
static int go_fd;

static void start_observer(double settle_s, double window_s) {
  int p[2];
  if (pipe(p) < 0) {
    perror("pipe");
    exit(1);
  }
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  memset(sh, 0, sizeof *sh);
  pid_t sup_pid = getpid();
  pid_t mid = fork();
  if (mid < 0) {
    perror("fork");
    exit(1);
  }
  if (mid > 0) {
    close(p[0]);
    go_fd = p[1];
    waitpid(mid, NULL, 0);
    return;
  }
  if (fork() != 0)
    _exit(0);
  close(p[1]);
  char c;
  if (read(p[0], &c, 1) != 1)
    _exit(0);           /* the supervisor went away before the window */
  struct timespec d = {(time_t)settle_s, (long)((settle_s - (double)(time_t)settle_s) * 1e9)};
  nanosleep(&d, NULL);
  uint64_t t0 = mono_ns();
  take_sample(sup_pid, &sh->s0);
  d = (struct timespec){(time_t)window_s, (long)((window_s - (double)(time_t)window_s) * 1e9)};
  nanosleep(&d, NULL);
  take_sample(sup_pid, &sh->s1);
  sh->window_s = (double)(mono_ns() - t0) / 1e9;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)sup_pid);
  sh->rss_kb = status_field(path, "VmRSS");
  sh->pss_kb = pss_of(sup_pid);
  sh->children_end = count_sleepers(sup_pid);
  sh->done = 1;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  /* Signal it only if it is still the supervisor (same program name as ours, a
   * fork of it): a pid freed by a supervisor killed meanwhile could be reused. */
  char mine[64] = "", theirs[64] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", (int)sup_pid);
  FILE *f = fopen("/proc/self/comm", "r");
  if (f != NULL) {
    if (fgets(mine, sizeof mine, f) == NULL)
      mine[0] = '\0';
    fclose(f);
  }
  if ((f = fopen(path, "r")) != NULL) {
    if (fgets(theirs, sizeof theirs, f) == NULL)
      theirs[0] = '\0';
    fclose(f);
  }
  sh->t_kill = mono_ns();
  if (mine[0] != '\0' && strcmp(mine, theirs) == 0)
    kill(sup_pid, SIGTERM);
  _exit(0);
}

static arbor_node_t **sleepers;
static size_t nsleepers;
static uint64_t t_begin, t_ready, sup_finished;
static int *pids;
static uint64_t *svc_finished;   /* per service: when it FINISHED (finish callback) */

static void on_svc_finish(arbor_node_t *node, void *arg) {
  (void)node;
  svc_finished[(size_t)(uintptr_t)arg] = uv_hrtime();
}

static void on_sup_finish(arbor_node_t *node, void *arg) {
  (void)node;
  (void)arg;
  sup_finished = uv_hrtime();
}

static void on_idle_prepare(uv_prepare_t *h) {
  (void)h;
  size_t up = 0;
  for (size_t i = 0; i < nsleepers; i++) {
    arbor_service_info_t si;
    if (arbor_service_info(sleepers[i], &si) == 0 && si.phase == ARBOR_PHASE_RUNNING &&
        si.pid > 0) {
      pids[i] = si.pid;
      up++;
    }
  }
  if (up < nsleepers)
    return;
  t_ready = uv_hrtime();
  uv_close((uv_handle_t *)&watcher, on_closed);
  if (write(go_fd, "g", 1) != 1)
    die("write to the observer", 0);
  close(go_fd);
}

static int run_idle(size_t children, double window_s, double settle_s, int parallel) {
  start_observer(settle_s, window_s);
  new_runtime(0);
  sleepers = calloc(children, sizeof *sleepers);
  pids = calloc(children, sizeof *pids);
  svc_finished = calloc(children, sizeof *svc_finished);
  nsleepers = children;
  t_begin = uv_hrtime();
  int rc = arbor_supervisor_new(arbor_root(rt),
                                &(arbor_sup_opts_t){.name = "sleepers", .finish = on_sup_finish,
                                                    .parallel_stop = parallel},
                                &sup);
  if (rc < 0)
    die("arbor_supervisor_new", rc);
  static char *argv[] = {"/bin/sleep", "3600", NULL};
  const char *mm = getenv("ARBOR_BENCH_MAX_MEMORY");
  uint64_t max_memory = mm != NULL ? strtoull(mm, NULL, 10) : 0;
  for (size_t i = 0; i < children; i++) {
    char name[24];
    snprintf(name, sizeof name, "s%03zu", i);
    rc = arbor_service_add(sup,
                           &(arbor_service_spec_t){.name = name, .argv = argv,
                                                   .max_memory = max_memory,
                                                   .finish = on_svc_finish,
                                                   .arg = (void *)(uintptr_t)i},
                           &sleepers[i]);
    if (rc < 0)
      die("arbor_service_add", rc);
    arbor_node_ref(sleepers[i]);
  }
  uv_prepare_init(arbor_runtime_loop(rt), &watcher);
  uv_prepare_start(&watcher, on_idle_prepare);
  uv_unref((uv_handle_t *)&watcher);
  rc = arbor_run(rt);       /* until the observer's SIGTERM has stopped everything */
  uint64_t t_end = uv_hrtime();
  int bad = finish_runtime(rc == ARBOR_ECANCELED ? 0 : rc);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (!sh->done) {
    fprintf(stderr, "bench_supervise: the run ended before the observer's window\n");
    return 1;
  }
  long leftover = 0;
  for (size_t i = 0; i < children; i++)
    if (pids[i] > 0 && kill(pids[i], 0) == 0) {
      kill(pids[i], SIGKILL);
      leftover++;
    }
  /* How the stop went: when the first and the last service finished, and
   * whether they finished newest first, one after the other (reverse order). */
  uint64_t first = 0, last = 0;
  size_t in_reverse = 0;
  for (size_t i = 0; i < children; i++) {
    uint64_t t = svc_finished[i];
    if (t == 0)
      continue;
    if (first == 0 || t < first) first = t;
    if (t > last) last = t;
    if (i + 1 < children && svc_finished[i + 1] != 0 && svc_finished[i + 1] <= t)
      in_reverse++;
  }
  double w = sh->window_s;
  printf("RESULT peer=arbor bench=idle children=%zu children_end=%ld sup_procs=1 "
         "ready_s=%.2f rss_main_kb=%ld pss_main_kb=%ld rss_total_kb=%ld pss_total_kb=%ld "
         "wakeups_per_s=%.2f vol_per_s=%.2f nonvol_per_s=%.2f main_wakeups_per_s=%.2f "
         "cpu_us_per_s=%.1f window_s=%.1f stop_all_ms=%.1f leftover_killed=%ld run_rc=%s "
         "first_svc_finished_ms=%.1f last_svc_finished_ms=%.1f sup_finished_ms=%.1f "
         "finished_in_reverse=%zu stop=%s max_memory=%llu memory_scan=%d\n",
         children, sh->children_end, (double)(t_ready - t_begin) / 1e9, sh->rss_kb, sh->pss_kb,
         sh->rss_kb, sh->pss_kb, (double)(sh->s1.ctx - sh->s0.ctx) / w,
         (double)(sh->s1.vol - sh->s0.vol) / w, (double)(sh->s1.nonvol - sh->s0.nonvol) / w,
         (double)(sh->s1.main_ctx - sh->s0.main_ctx) / w,
         (double)(sh->s1.cpu_ns - sh->s0.cpu_ns) / 1e3 / w,
         w, (double)(t_end - sh->t_kill) / 1e6, leftover,
         rc == 0 ? "0" : arbor_strerror(rc), first ? (double)(first - sh->t_kill) / 1e6 : -1.0,
         last ? (double)(last - sh->t_kill) / 1e6 : -1.0,
         sup_finished ? (double)(sup_finished - sh->t_kill) / 1e6 : -1.0, in_reverse,
         parallel ? "parallel" : "sequential", (unsigned long long)max_memory,
         getenv("ARBOR_BENCH_MEMORY_SCAN") != NULL);
  return bad;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "stamp") == 0)
    return stamp_main();
  if (strcmp(mode, "restart") == 0 && (argc == 4 || argc == 5))
    return run_restart(strtol(argv[2], NULL, 10), strtoull(argv[3], NULL, 10),
                       argc == 5 ? argv[4] : NULL);
  if (strcmp(mode, "backoff") == 0 && (argc == 4 || argc == 5))
    return run_backoff(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10),
                       argc == 5 ? argv[4] : NULL);
  if (strcmp(mode, "idle") == 0 && argc >= 4 && argc <= 6)
    return run_idle(strtoull(argv[2], NULL, 10), strtod(argv[3], NULL),
                    argc >= 5 ? strtod(argv[4], NULL) : 3.0,
                    argc == 6 && strcmp(argv[5], "sequential") == 0 ? 0 : 1);
  if (strcmp(mode, "gaps") == 0 && (argc == 5 || argc == 6)) {
    read_stamps(argv[4], argc == 6 ? strtoull(argv[5], NULL, 10) + 1 : 0);
    print_restart(argv[2], strtol(argv[3], NULL, 10), "");
    free(stamps);
    return 0;
  }
  fprintf(stderr,
          "usage: %s restart LIFE_MS COUNT [PROG]   C1/C2, no backoff\n"
          "       %s backoff COUNT MAX_MS [PROG]    C1, default backoff (COUNT <= %d)\n"
          "       %s idle CHILDREN WINDOW_S [SETTLE_S [parallel|sequential]]   C3\n"
          "       %s gaps PEER LIFE_MS STAMP_FILE [COUNT]\n"
          "       %s stamp\n",
          argv[0], argv[0], ARBOR_SERVICE_HISTORY - 1, argv[0], argv[0], argv[0]);
  return 2;
}
