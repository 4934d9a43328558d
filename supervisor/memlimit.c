/* supervisor/memlimit.c - a process service's memory limit (arbor.h,
 * arbor_service_spec_t.max_memory): a run whose program and descendants stay
 * over max_memory of resident memory for max_memory_for_ms is failed with
 * ARBOR_EMEMLIMIT through arbor_service_fail, so its supervisor restarts it as
 * any failure (restart type, backoff, intensity), with the reading in the chain:
 *   EMEMLIMIT: process api (pid 4242): RSS 312.4 MiB (3 processes) over
 *   max_memory 256 MiB for 1004 ms (max_memory_for_ms 1000)
 *
 * Why a timer, and only one: RSS grows without any event the loop could wait
 * for, so it has to be read. PM2 reads it every 30 s, which lets a leak run for
 * half a minute past its limit; here one runtime-wide timer reads it every
 * ARBOR_MEMORY_CHECK_MS for every limited program at once.
 *
 * What a tick reads: only the limited programs' trees, so that its cost grows
 * with them and not with the machine. From each program, its children are
 * followed through /proc/PID/task/TID/children (one small file per thread:
 * a child is listed under the thread that forked it), and each member's RSS
 * read from /proc/PID/stat: two files per single-threaded process. Orphans
 * the program left count too, as procstat.c counts them: arbor is the child
 * subreaper, so they are arbor's children now, in the program's session; the
 * tick lists arbor's children once, drops the programs libuv spawned (a walk
 * of the loop's process handles, no file read) and reads the session of the
 * rest (few, usually none). A process that forks or exits while its parent's
 * list is read may be missed by that reading (proc(5) says the lists are
 * exact only for stopped processes); the next one has it. Without those lists
 * (a kernel without CONFIG_PROC_CHILDREN) a tick falls back to procstat.c's
 * scan of all of /proc and each program's tree from that table, which costs a
 * /proc/PID/stat per process of the machine (about 10 us each).
 *
 * Either way a tick never takes more than 1/COST_SHARE of a core: the next
 * one comes COST_SHARE times the last tick's duration later when that is
 * longer than ARBOR_MEMORY_CHECK_MS (many limited programs, or the scan on a
 * machine with thousands of processes).
 *
 * Why it costs an idle arbor nothing: the timer runs only while at least one
 * limited program runs. A program is put on the list when it is spawned with a
 * limit (arbor__memlimit_watch, from procsvc.c) and taken off when it is reaped
 * or its run is failed (arbor__memlimit_unwatch); the timer starts with the
 * first and stops with the last, so 100 services without a limit have no timer
 * at all (bench_supervise idle). Sampling on request (arbor_service_usage) is
 * procstat.c's and does not go through here; the readings here never move its
 * cpu_percent reference.
 *
 * When a run is failed: at the first reading over the limit for
 * max_memory_for_ms 0; else at the first reading at least max_memory_for_ms
 * after the first of an unbroken series of readings over it (a reading under
 * it starts the series again). So a leak is caught within one period of
 * crossing the limit (plus max_memory_for_ms), and a spike shorter than
 * max_memory_for_ms is let through. This is not a hard cap: between two
 * readings a program can allocate much more, and the stop signal gives it its
 * shutdown timeout to exit. A hard cap is the kernel's (cgroup memory.max,
 * systemd's MemoryMax=). RSS is summed over the processes, a page shared by two
 * counted twice, as ps and top count it.
 *
 * The list holds the service nodes, not references: a listed program is not
 * reaped, so its incarnation is not FINISHED, so neither is its service, and no
 * node can be freed while listed (child_free unlists anyway, as a guard).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* A tick may take at most 1/COST_SHARE of the time between two: 2 % of a core. */
#define COST_SHARE 50
#define MEMBERS_MAX 4096         /* processes one program's reading follows at most */
#define ORPHANS_MAX 4096         /* children of arbor one tick looks at */

/* A list of pids that grows, kept from tick to tick (no malloc per tick). */
struct pids {
  int *v;
  size_t n, cap;
};

struct orphan {
  int pid, sid;
};

struct arbor__memlimit {
  uv_timer_t timer;              /* armed for the next tick while n > 0 */
  struct arbor__closer closer;   /* the runtime's close closes the timer */
  arbor_runtime_t *rt;
  arbor_node_t **v;              /* the services whose program is watched */
  uint32_t n, cap;
  uint64_t ticks;
  uint64_t period_ms;            /* until the next tick (ARBOR_MEMORY_CHECK_MS or more) */
  int direct;                    /* 1: the children lists are there; 0: scan /proc */
  struct pids queue;             /* one program's members, breadth first */
  struct pids kids;              /* arbor's children */
  struct pids spawned;           /* the pids of the loop's uv_process_t handles */
  struct orphan *orphans;        /* arbor's other children and their sessions */
  size_t norphans, orphans_cap;
};

/* ------------------------------------------------------------- the text */

/* "256 MiB", "312.4 MiB", "1.5 GiB", "900 KiB", "12 bytes": binary units, a
 * decimal only when it is not whole, as the config writes limits. */
static void fmt_bytes(uint64_t b, char *out, size_t size) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (b < 1024) {
    snprintf(out, size, "%llu bytes", (unsigned long long)b);
    return;
  }
  int u = 0;
  uint64_t div = 1024;
  while (u < 3 && b >= div * 1024) {
    div *= 1024;
    u++;
  }
  if (b % div == 0)
    snprintf(out, size, "%llu %s", (unsigned long long)(b / div), units[u]);
  else
    snprintf(out, size, "%.1f %s", (double)b / (double)div, units[u]);
}

/* The run's error, with the reading that decided it. NULL when out of memory
 * (arbor_service_fail is then not called: the next reading tries again). */
static arbor_error_t *limit_error(arbor_node_t *svc, const struct arbor__memwatch *m,
                                  uint64_t over_ms, char *line, size_t linesize) {
  char rss[32], max[32], how[96] = "";
  fmt_bytes(m->rss_bytes, rss, sizeof rss);
  fmt_bytes(m->max_bytes, max, sizeof max);
  if (m->for_ms > 0)
    snprintf(how, sizeof how, " for %llu ms (max_memory_for_ms %llu)",
             (unsigned long long)over_ms, (unsigned long long)m->for_ms);
  snprintf(line, linesize, "RSS %s (%u process%s) over max_memory %s%s", rss, m->processes,
           m->processes == 1 ? "" : "es", max, how);
  return arbor_error_new_at(ARBOR_EMEMLIMIT, NULL, "", 0, "", "process %s (pid %d): %s",
                            svc->name, m->pid, line);
}

/* ------------------------------------------------------- reading a tree */

/* Appends pid, unless max are there already or memory is short (then the
 * reading misses it: a partial figure, not an error). */
static void pids_push(struct pids *p, int pid, size_t max) {
  if (p->n == p->cap) {
    size_t cap = p->cap > 0 ? p->cap * 2 : 64;
    int *v = p->n < max ? realloc(p->v, cap * sizeof *v) : NULL;
    if (v == NULL)
      return;
    p->v = v;
    p->cap = cap;
  }
  if (p->n < max)
    p->v[p->n++] = pid;
}

/* The pids of a children file ("12 345 "), appended to out. */
static void read_children_file(const char *path, struct pids *out, size_t max) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;                      /* the thread or process is gone */
  char buf[4096];
  int pid = 0, in = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] >= '0' && buf[i] <= '9') {
        pid = pid * 10 + (buf[i] - '0');
        in = 1;
      } else if (in) {
        pids_push(out, pid, max);
        pid = in = 0;
      }
    }
  }
  if (in)
    pids_push(out, pid, max);
  close(fd);
}

/* The children of process pid: one file when it has one thread, else one per
 * thread (threads 0: unknown, read them all). */
static void children_of(int pid, uint32_t threads, struct pids *out, size_t max) {
  char path[96];
  if (threads == 1) {
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    read_children_file(path, out, max);
    return;
  }
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%d/task/%.16s/children", pid, e->d_name);
    read_children_file(path, out, max);
  }
  closedir(d);
}

static void collect_spawned(uv_handle_t *h, void *arg) {
  if (h->type == UV_PROCESS && !uv_is_closing(h))
    pids_push(arg, ((uv_process_t *)h)->pid, SIZE_MAX);
}

/* Once a tick: arbor's children that libuv did not spawn, with their
 * sessions: the orphans a program left (see the top of the file). */
static void collect_orphans(struct arbor__memlimit *ml) {
  ml->kids.n = ml->spawned.n = ml->norphans = 0;
  children_of((int)getpid(), 0, &ml->kids, ORPHANS_MAX);
  uv_walk(ml->rt->loop, collect_spawned, &ml->spawned);
  for (size_t i = 0; i < ml->kids.n; i++) {
    int pid = ml->kids.v[i], known = 0;
    for (size_t k = 0; k < ml->spawned.n && !known; k++)
      known = ml->spawned.v[k] == pid;
    struct arbor__psone one;
    if (known || arbor__procstat_one(pid, &one) < 0)
      continue;
    if (ml->norphans == ml->orphans_cap) {
      size_t cap = ml->orphans_cap > 0 ? ml->orphans_cap * 2 : 16;
      struct orphan *v = realloc(ml->orphans, cap * sizeof *v);
      if (v == NULL)
        return;
      ml->orphans = v;
      ml->orphans_cap = cap;
    }
    ml->orphans[ml->norphans++] = (struct orphan){.pid = pid, .sid = one.sid};
  }
}

/* The program pid, its descendants and the orphans of its session, summed
 * into *u (rss_bytes, processes). ARBOR_ENOENT when the program is gone. */
static int read_tree(struct arbor__memlimit *ml, int pid, arbor_process_usage_t *u) {
  struct pids *q = &ml->queue;
  q->n = 0;
  pids_push(q, pid, MEMBERS_MAX);
  for (size_t i = 0; i < ml->norphans; i++)
    if (ml->orphans[i].sid == pid && ml->orphans[i].pid != pid)
      pids_push(q, ml->orphans[i].pid, MEMBERS_MAX);
  memset(u, 0, sizeof *u);
  u->pid = pid;
  u->sampled_ns = arbor__now();
  for (size_t head = 0; head < q->n; head++) {
    struct arbor__psone one;
    if (arbor__procstat_one(q->v[head], &one) < 0) {
      if (head == 0)
        return ARBOR_ENOENT;
      continue;                  /* gone since it was listed */
    }
    u->rss_bytes += one.rss_bytes;
    u->processes++;
    children_of(q->v[head], one.threads, q, MEMBERS_MAX);
  }
  u->partial = q->n == MEMBERS_MAX;
  return 0;
}

/* ------------------------------------------------------------ the verdict */

/* The run goes over its limit: unlisted first (its program is being stopped,
 * nothing more to read), then failed. A line in its log ring says it beside the
 * output, where `arbor ctl log` and the dashboard's log tail show it. */
static void exceeded(arbor_node_t *svc, uint64_t over_ms) {
  struct arbor__svc *s = svc->u.svc;
  char line[200], text[240];
  arbor_error_t *err = limit_error(svc, &s->mem, over_ms, line, sizeof line);
  if (err == NULL)
    return;
  arbor__memlimit_unwatch(svc);
  if (arbor_service_fail(svc, err) == 0) {
    s->mem.exceeded++;
    int n = snprintf(text, sizeof text, "arbor: %s: stopping it\n", line);
    arbor__logring_write(&s->log, text, n > 0 && (size_t)n < sizeof text ? (size_t)n : 0);
  }
  /* else: it is stopping or restarting already (ARBOR_ESTATE); that stop ends
   * the program as well. */
}

/* One reading of one service: its tree walked (t NULL), or from the tick's
 * table of /proc. Returns 1 when the run must be failed, with how long it has
 * been over in *over_ms. */
static int judge(struct arbor__memlimit *ml, const struct arbor__pstable *t, arbor_node_t *svc,
                 uint64_t *over_ms) {
  struct arbor__memwatch *m = &svc->u.svc->mem;
  arbor_process_usage_t u;
  if (arbor__process_pid(svc) != m->pid)
    return 0;                    /* exiting: its reap unlists it */
  int rc = t == NULL ? read_tree(ml, m->pid, &u)
                     : arbor__procstat_tree(t, m->pid,
                                            ARBOR__PROCSTAT_NO_FDS | ARBOR__PROCSTAT_FROM_TABLE,
                                            &u, NULL);
  if (rc < 0)
    return 0;
  m->readings++;
  m->rss_bytes = u.rss_bytes;
  m->processes = u.processes;
  m->sampled_ns = u.sampled_ns;
  if (u.rss_bytes <= m->max_bytes) {
    m->over_since_ns = 0;
    return 0;
  }
  if (m->over_since_ns == 0)
    m->over_since_ns = u.sampled_ns;
  *over_ms = (u.sampled_ns - m->over_since_ns) / 1000000u;
  return u.sampled_ns - m->over_since_ns >= m->for_ms * 1000000u;
}

static void on_tick(uv_timer_t *h);

/* The next tick, COST_SHARE times what this one took but never sooner than
 * ARBOR_MEMORY_CHECK_MS, if anything is still listed. */
static void rearm(struct arbor__memlimit *ml, uint64_t took_ns) {
  uint64_t ms = took_ns * COST_SHARE / 1000000u;
  ml->period_ms = ms > ARBOR_MEMORY_CHECK_MS ? ms : ARBOR_MEMORY_CHECK_MS;
  if (ml->n > 0)
    uv_timer_start(&ml->timer, on_tick, ml->period_ms, 0);
}

static void on_tick(uv_timer_t *h) {
  struct arbor__memlimit *ml = h->data;
  uint64_t t0 = uv_hrtime();
  ml->ticks++;
  struct arbor__pstable *t = NULL;
  if (ml->direct) {
    collect_orphans(ml);
  } else if (arbor__procstat_scan(&t) < 0) {
    rearm(ml, uv_hrtime() - t0);   /* out of memory (or no /proc): the next tick tries */
    return;
  }
  /* Backwards: failing a run unlists it, which moves the last entry (already
   * read) into its slot. */
  for (uint32_t i = ml->n; i-- > 0;) {
    if (i >= ml->n)
      continue;                  /* the list shrank under a verdict */
    arbor_node_t *svc = ml->v[i];
    uint64_t over_ms = 0;
    if (judge(ml, t, svc, &over_ms))
      exceeded(svc, over_ms);
  }
  arbor__procstat_free(t);      /* NULL is fine */
  rearm(ml, uv_hrtime() - t0);
}

/* ---------------------------------------------------------- the runtime */

static void memlimit_closed(uv_handle_t *h) {
  struct arbor__memlimit *ml = h->data;
  arbor_runtime_t *rt = ml->rt;
  free(ml->v);
  free(ml->queue.v);
  free(ml->kids.v);
  free(ml->spawned.v);
  free(ml->orphans);
  free(ml);
  arbor__runtime_release(rt);
}

/* The runtime closes: every node has FINISHED, so nothing is listed. */
static void memlimit_close(struct arbor__closer *c) {
  struct arbor__memlimit *ml = (struct arbor__memlimit *)((char *)c -
                                                          offsetof(struct arbor__memlimit, closer));
  ml->rt->memlimit = NULL;
  uv_close((uv_handle_t *)&ml->timer, memlimit_closed);
}

/* Room on the list for one more program, and the timer made, before the spawn,
 * so that watching it afterwards cannot fail. ARBOR_ENOMEM. */
int arbor__memlimit_reserve(arbor_runtime_t *rt) {
  struct arbor__memlimit *ml = rt->memlimit;
  if (ml == NULL) {
    if ((ml = calloc(1, sizeof *ml)) == NULL)
      return ARBOR_ENOMEM;
    int rc = uv_timer_init(rt->loop, &ml->timer);   /* cannot fail on a live loop */
    ARBOR_ASSERT(rc == 0);
    (void)rc;
    /* It never keeps the loop alive: a listed program's own handle does. */
    uv_unref((uv_handle_t *)&ml->timer);
    ml->timer.data = ml;
    ml->rt = rt;
    ml->closer.close = memlimit_close;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    ml->direct = access(path, R_OK) == 0 && !rt->memory_scan;
    arbor__runtime_hold(rt);
    arbor__runtime_add_closer(rt, &ml->closer);
    rt->memlimit = ml;
  }
  if (ml->n < ml->cap)
    return 0;
  uint32_t cap = ml->cap > 0 ? ml->cap * 2 : 8;
  arbor_node_t **v = realloc(ml->v, cap * sizeof *v);
  if (v == NULL)
    return ARBOR_ENOMEM;
  ml->v = v;
  ml->cap = cap;
  return 0;
}

void arbor__memlimit_watch(arbor_node_t *svc, int pid, uint64_t max_bytes, uint64_t for_ms) {
  struct arbor__memlimit *ml = svc->rt->memlimit;
  struct arbor__memwatch *m = &svc->u.svc->mem;
  ARBOR_ASSERT(ml != NULL && ml->n < ml->cap && m->slot == 0);
  uint64_t exceeded_before = m->exceeded;
  *m = (struct arbor__memwatch){.max_bytes = max_bytes, .for_ms = for_ms, .pid = pid,
                                .exceeded = exceeded_before};
  ml->v[ml->n++] = svc;
  m->slot = ml->n;
  if (ml->n == 1) {
    ml->period_ms = ARBOR_MEMORY_CHECK_MS;
    uv_timer_start(&ml->timer, on_tick, ml->period_ms, 0);
  }
}

void arbor__memlimit_unwatch(arbor_node_t *svc) {
  struct arbor__memwatch *m = &svc->u.svc->mem;
  struct arbor__memlimit *ml = svc->rt->memlimit;
  if (m->slot == 0)
    return;
  uint32_t i = m->slot - 1;
  m->slot = 0;
  if (ml == NULL)
    return;                      /* the runtime is being freed */
  ARBOR_ASSERT(i < ml->n && ml->v[i] == svc);
  ml->v[i] = ml->v[--ml->n];
  if (i < ml->n)
    ml->v[i]->u.svc->mem.slot = i + 1;
  if (ml->n == 0)
    uv_timer_stop(&ml->timer);   /* nothing limited runs: an idle arbor sleeps */
}

/* ------------------------------------------------------------- the API */

int arbor_service_memory_limit(const arbor_node_t *svc, arbor_memory_limit_info_t *info) {
  if (svc == NULL || info == NULL)
    return ARBOR_EINVAL;
  if (svc->kind != ARBOR_KIND_SERVICE || svc->u.svc == NULL || svc->u.svc->proc == NULL)
    return ARBOR_EKIND;
  const struct arbor__svc *s = svc->u.svc;
  const struct arbor__memwatch *m = &s->mem;
  memset(info, 0, sizeof *info);
  info->exceeded = m->exceeded;
  if (m->slot != 0) {            /* the running program's limit and readings */
    info->max_memory = m->max_bytes;
    info->max_memory_for_ms = m->for_ms;
    info->rss_bytes = m->rss_bytes;
    info->processes = m->processes;
    info->sampled_ns = m->sampled_ns;
    info->over_since_ns = m->over_since_ns;
    info->readings = m->readings;
    info->check_ms = svc->rt->memlimit->period_ms;
  } else {                       /* between runs: what the next one gets */
    arbor__proc_spec_memory(s->next_proc != NULL ? s->next_proc : s->proc,
                            &info->max_memory, &info->max_memory_for_ms);
  }
  return 0;
}
