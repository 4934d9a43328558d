/* supervisor/procstat.c - what a process service's program and its descendants
 * use (CPU, memory, fds, threads, processes), read from /proc when someone asks
 * (arbor.h, arbor_service_usage).
 *
 * No timer: a sample is taken inside the call that wants it (the node endpoint,
 * a /metrics scrape, the dashboard polling the node), so an idle arbor never
 * wakes up for it. The one piece of state is on the service: the sample that
 * cpu_percent is measured from (struct arbor__usage_ref).
 *
 * Which processes count. A program runs in a session and process group of its
 * own (procsvc.c, setsid), but its children may setsid() or setpgid() away, so
 * membership is by parent links, not by group: /proc is read once into a table
 * (pid, ppid, sid and the figures of each process), then walked from the
 * program's pid. Because arbor is the child subreaper (reaper.c), an orphan is
 * re-parented to arbor, not to the program, and the parent links no longer lead
 * to it; those orphans are found by their session: a child of arbor in the
 * program's session (its sid is the program's pid) came from the program, as
 * arbor's own children stay in arbor's session. They count, with their
 * descendants, since the program's work is theirs (a `daemon &` in a start
 * script). What escapes: a process that left the program's session and then
 * lost its parent, which is the classic daemon (fork, setsid, fork): nothing
 * left in /proc ties it to the program. It is not in the program's group
 * either, so the stop signal does not reach it; reaper.c still reaps it.
 *
 * Bounded work: one sample reads at most ARBOR_USAGE_SCAN_MAX entries of /proc
 * (one small read of /proc/PID/stat each), then opens /proc/PID/fd for the
 * members only. On a machine with more processes the rest are not read and the
 * sample says `partial` (the program itself is always read). A process that
 * exits while it is being read is skipped, never an error: the figures are a
 * moment's, and that process is gone from the next one.
 *
 * The memory limit (memlimit.c, max_memory) needs the same figures often and
 * promptly, from a timer that runs only while a limited program runs: it calls
 * arbor__procstat_scan once per tick and arbor__procstat_tree for each limited
 * program (no arbor__usage_ref involved, so its ticks do not disturb
 * cpu_percent), skipping the fd counting with ARBOR__PROCSTAT_NO_FDS (the only
 * per-member directory read).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MIN_WINDOW_NS 1000000000u    /* cpu_percent over at least 1 s of ticks */

/* One process of the scan. */
struct ps_entry {
  int pid, ppid, sid;
  uint32_t threads;
  uint64_t ticks;                /* utime + stime + cutime + cstime, clock ticks */
  uint64_t start_ticks;          /* since boot */
  uint64_t rss_pages;
};

struct arbor__pstable {
  struct ps_entry *v;
  size_t n;
  int partial;                   /* more processes than ARBOR_USAGE_SCAN_MAX */
  int self;                      /* arbor's pid: the orphans' parent */
};

/* Reads /proc/PID/stat into *e. 0, or -1 when the process is gone (or the line
 * is not what proc(5) says). The command name (field 2) may hold spaces and
 * parentheses: the fields are counted from the last ')'. One open, read, close:
 * stdio would add an fstat and a buffer per file, and a memory limit's tick
 * reads a file per process of the machine. */
static int read_stat(int pid, struct ps_entry *e) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n;
  do
    n = read(fd, buf, sizeof buf - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  if (p == NULL)
    return -1;
  /* after ')': state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8) flags(9)
   * minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15) cutime(16)
   * cstime(17) priority(18) nice(19) num_threads(20) itrealvalue(21)
   * starttime(22) vsize(23) rss(24) */
  char state;
  int ppid, pgrp, sid;
  unsigned long long ut, st, start, rss;
  long long cut, cst, threads;
  if (sscanf(p + 1,
             " %c %d %d %d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld %*d %*d %lld"
             " %*d %llu %*u %llu",
             &state, &ppid, &pgrp, &sid, &ut, &st, &cut, &cst, &threads, &start,
             &rss) != 11)
    return -1;
  e->pid = pid;
  e->ppid = ppid;
  e->sid = sid;
  e->threads = threads > 0 ? (uint32_t)threads : 0;
  e->ticks = ut + st + (cut > 0 ? (uint64_t)cut : 0) + (cst > 0 ? (uint64_t)cst : 0);
  e->start_ticks = start;
  e->rss_pages = rss;
  (void)state;
  (void)pgrp;
  return 0;
}

int arbor__procstat_one(int pid, struct arbor__psone *out) {
  struct ps_entry e;
  long page = sysconf(_SC_PAGESIZE);
  if (read_stat(pid, &e) != 0 || page <= 0)
    return ARBOR_ENOENT;
  out->ppid = e.ppid;
  out->sid = e.sid;
  out->threads = e.threads;
  out->rss_bytes = e.rss_pages * (uint64_t)page;
  return 0;
}

/* Reads up to ARBOR_USAGE_SCAN_MAX processes of /proc. Errors: ARBOR_ENOENT (no
 * /proc), ARBOR_ENOMEM. *out is the caller's (arbor__procstat_free). */
int arbor__procstat_scan(struct arbor__pstable **out) {
  struct arbor__pstable *t = calloc(1, sizeof *t);
  if (t == NULL)
    return ARBOR_ENOMEM;
  size_t cap = 256;
  if ((t->v = malloc(cap * sizeof *t->v)) == NULL) {
    free(t);
    return ARBOR_ENOMEM;
  }
  t->self = (int)getpid();
  DIR *d = opendir("/proc");
  if (d == NULL) {
    arbor__procstat_free(t);
    return ARBOR_ENOENT;
  }
  struct dirent *de;
  size_t seen = 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    if (seen++ == ARBOR_USAGE_SCAN_MAX) {
      t->partial = 1;
      break;
    }
    if (t->n == cap) {
      struct ps_entry *v = realloc(t->v, cap * 2 * sizeof *v);
      if (v == NULL) {
        closedir(d);
        arbor__procstat_free(t);
        return ARBOR_ENOMEM;
      }
      t->v = v;
      cap *= 2;
    }
    if (read_stat(atoi(de->d_name), &t->v[t->n]) == 0)
      t->n++;                    /* else it is gone already: skipped */
  }
  closedir(d);
  *out = t;
  return 0;
}

void arbor__procstat_free(struct arbor__pstable *t) {
  if (t == NULL)
    return;
  free(t->v);
  free(t);
}

/* Entries of /proc/PID/fd, or 0 when it cannot be read (gone, or another
 * user's). */
static uint32_t count_fds(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return 0;
  uint32_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* Now since boot, in ns: the clock /proc's starttime counts from. */
static uint64_t boot_now_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sums the program pid and its descendants (see the top of the file) into
 * *out; cpu_percent is left 0 but for a run's lifetime average in *life_percent
 * (NULL: not wanted). flags: ARBOR__PROCSTAT_NO_FDS leaves fds 0;
 * ARBOR__PROCSTAT_FROM_TABLE takes the program's figures from t when it is
 * there instead of reading them again. Errors:
 * ARBOR_ENOENT (pid is gone), ARBOR_ENOMEM. */
int arbor__procstat_tree(const struct arbor__pstable *t, int pid, int flags,
                         arbor_process_usage_t *out, double *life_percent) {
  memset(out, 0, sizeof *out);
  out->sampled_ns = arbor__now();
  out->pid = pid;
  out->partial = t->partial;
  long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  if (hz <= 0 || page <= 0)
    return ARBOR_ENOENT;

  /* The program itself, read again even when the scan has it: always there
   * past the cap, and its figures as fresh as can be. With
   * ARBOR__PROCSTAT_FROM_TABLE the table's entry serves when it has one (a
   * memory limit's tick has just read it: a file less per program). */
  struct ps_entry self;
  const struct ps_entry *found = NULL;
  for (size_t i = 0; (flags & ARBOR__PROCSTAT_FROM_TABLE) && i < t->n && found == NULL; i++)
    if (t->v[i].pid == pid)
      found = &t->v[i];
  if (found != NULL)
    self = *found;
  else if (read_stat(pid, &self) != 0)
    return ARBOR_ENOENT;
  /* The members: a queue of table indices (-1: the program), walked
   * breadth-first over the ppid links. Parent links form a tree and the roots
   * are distinct, so an entry enters once; the bound on the queue keeps a
   * table read across pid reuse (not one instant) from looping. */
  long *queue = malloc((t->n + 1) * sizeof *queue);
  if (queue == NULL)
    return ARBOR_ENOMEM;
  size_t head = 0, tail = 0;
  queue[tail++] = -1;
  for (size_t i = 0; i < t->n; i++)   /* orphans of its session, now arbor's */
    if (t->v[i].ppid == t->self && t->v[i].sid == pid && t->v[i].pid != pid)
      queue[tail++] = (long)i;
  uint64_t ticks = 0, rss = 0;
  uint32_t threads = 0, fds = 0, procs = 0;
  while (head < tail) {
    long at = queue[head++];
    const struct ps_entry *m = at < 0 ? &self : &t->v[at];
    ticks += m->ticks;
    rss += m->rss_pages;
    threads += m->threads;
    procs++;
    if (!(flags & ARBOR__PROCSTAT_NO_FDS))
      fds += count_fds(m->pid);
    for (size_t i = 0; i < t->n && tail <= t->n; i++)
      if (t->v[i].ppid == m->pid && t->v[i].pid != pid)
        queue[tail++] = (long)i;
  }
  free(queue);
  out->processes = procs;
  out->threads = threads;
  out->fds = fds;
  out->rss_bytes = rss * (uint64_t)page;
  out->cpu_ns = ticks * (1000000000u / (uint64_t)hz);
  if (life_percent != NULL) {
    uint64_t now = boot_now_ns(), start = self.start_ticks * (1000000000u / (uint64_t)hz);
    *life_percent = now > start ? 100.0 * (double)out->cpu_ns / (double)(now - start) : 0.0;
  }
  return 0;
}

/* ------------------------------------------------------------ the API */

/* cpu_percent from the service's reference sample. A run's first sample gives
 * the average over the program's life so far (what ps shows), which is a real
 * figure, where 0 would be a lie and NaN has no JSON. After that: the CPU used
 * since the reference over the time since, the reference moving on only once it
 * is MIN_WINDOW_NS old: /proc counts in clock ticks (10 ms at 100 Hz), so two
 * samples a few ms apart (a dashboard poll and a scrape) would give noise; they
 * get the last figure instead. A drop of cpu_ns (an orphan reaped by arbor takes
 * its ticks with it) counts as no CPU used, never as a negative rate. */
static void usage_percent(struct arbor__usage_ref *ref, uint64_t inc_id,
                          arbor_process_usage_t *u, double life) {
  if (ref->inc_id != inc_id || ref->pid != u->pid) {
    ref->inc_id = inc_id;
    ref->pid = u->pid;
    ref->cpu_ns = u->cpu_ns;
    ref->at_ns = u->sampled_ns;
    ref->percent = life;
  } else if (u->sampled_ns - ref->at_ns >= MIN_WINDOW_NS) {
    uint64_t used = u->cpu_ns > ref->cpu_ns ? u->cpu_ns - ref->cpu_ns : 0;
    ref->percent = 100.0 * (double)used / (double)(u->sampled_ns - ref->at_ns);
    ref->cpu_ns = u->cpu_ns;
    ref->at_ns = u->sampled_ns;
  }
  u->cpu_percent = ref->percent;
}

/* 0 when svc is a process service; its running program's pid in *pid (0:
 * none). */
static int usage_check(arbor_node_t *svc, int *pid) {
  if (svc == NULL)
    return ARBOR_EINVAL;
  if (svc->kind != ARBOR_KIND_SERVICE || svc->u.svc == NULL || svc->u.svc->proc == NULL)
    return ARBOR_EKIND;
  *pid = arbor__process_pid(svc);
  return 0;
}

static int usage_one(const struct arbor__pstable *t, arbor_node_t *svc, int pid,
                     arbor_process_usage_t *out) {
  double life = 0.0;
  int rc = arbor__procstat_tree(t, pid, 0, out, &life);
  if (rc < 0)
    return rc;
  struct arbor__svc *s = svc->u.svc;
  usage_percent(&s->usage, s->inc != NULL ? s->inc->id : 0, out, life);
  return 0;
}

int arbor_service_usage(arbor_node_t *svc, arbor_process_usage_t *out) {
  int pid = 0;
  int rc = out == NULL ? ARBOR_EINVAL : usage_check(svc, &pid);
  if (rc < 0)
    return rc;
  if (pid == 0)
    return ARBOR_ENOENT;
  struct arbor__pstable *t;
  if ((rc = arbor__procstat_scan(&t)) < 0)
    return rc;
  rc = usage_one(t, svc, pid, out);
  arbor__procstat_free(t);
  return rc;
}

int arbor_service_usage_many(arbor_node_t *const *svcs, size_t n, arbor_process_usage_t *out,
                             int *rcs) {
  if (n == 0)
    return 0;
  if (svcs == NULL || out == NULL || rcs == NULL || n > INT32_MAX)
    return ARBOR_EINVAL;
  struct arbor__pstable *t = NULL;
  int sampled = 0;
  for (size_t i = 0; i < n; i++) {
    int pid = 0;
    memset(&out[i], 0, sizeof out[i]);
    if ((rcs[i] = usage_check(svcs[i], &pid)) < 0)
      continue;
    if (pid == 0) {
      rcs[i] = ARBOR_ENOENT;
      continue;
    }
    if (t == NULL) {             /* read /proc once, and only if someone runs */
      int rc = arbor__procstat_scan(&t);
      if (rc < 0)
        return rc;
    }
    if ((rcs[i] = usage_one(t, svcs[i], pid, &out[i])) == 0)
      sampled++;
  }
  arbor__procstat_free(t);
  return sampled;
}
