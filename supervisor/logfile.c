/* supervisor/logfile.c - a process service's log file: stdout + stderr appended
 * to FILE, rotated by size (FILE.1 newest .. FILE.N oldest), optionally with a
 * UTC timestamp at the start of every line (arbor.h, arbor_service_spec_t).
 *
 * Why the thread pool and not a plain write() from the loop (what supervisord
 * does): a write to a regular file cannot be made non-blocking, and a slow or
 * hung disk (NFS, a full device being flushed, dirty-page throttling) would
 * stall the loop, so every service, the admin API and every timer with it
 * (DESIGN.md, "Threading"). So the loop only appends to an in-memory queue and
 * hands it to libuv's thread pool, one job at a time per file: jobs of one file
 * never overlap, so bytes land in arrival order and the worker alone touches the
 * fd and the file's size while a job runs. At most QUEUE_MAX bytes wait per file;
 * what does not fit is dropped and counted (arbor_service_log_file_info), never
 * grown without bound, never waited for. A hung disk therefore holds at most one
 * pool thread per file, and costs the service only the output it drops.
 *
 * Rotation happens in the worker, before a write that would take the file past
 * max_bytes: close, rename FILE.(N-1) -> FILE.N ... FILE -> FILE.1, open FILE
 * anew (with no backups: truncate FILE instead). A write is cut after its last
 * newline that fits, so lines stay whole unless one alone is longer than the
 * file may be. An existing file is appended to and its size counted, so a
 * restarted arbor rotates when due.
 *
 * Failures (cannot open: no such directory, permission denied; ENOSPC on write)
 * never reach the service: the file is marked broken, the error is told once
 * through on_error (procsvc.c writes it into the service's log ring), and output
 * is dropped and counted, without touching the disk, until a rotation's worth
 * (max_bytes) was dropped or the service runs again (arbor__logfile_retry); then
 * the next job tries to open the file again.
 *
 * Lifetime: the service owns its logfile (created at a run's start by
 * procsvc.c). arbor__logfile_close lets go of it: the last job flushes what is
 * queued, closes the fd and frees it. A job in flight holds the runtime
 * (arbor__runtime_hold), so arbor_runtime_close waits for the last bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_MAX_BYTES (10u * 1024 * 1024)
#define QUEUE_MIN (4 * 1024)     /* first queue buffer; doubles up to QUEUE_MAX */
#define QUEUE_MAX (1024 * 1024)  /* bytes waiting for the disk, per file */
#define STAMP_LEN 25             /* "2026-11-24T22:40:01.123Z " */
/* 0640: logs often hold what programs print about their config (hosts, user
 * names, sometimes tokens); the owner and its group (adm, say) may read them,
 * others not. The umask applies on top. supervisord gets 0644 (Python's open). */
#define FILE_MODE 0640

struct arbor__logfile {
  arbor_runtime_t *rt;
  char *path;
  uint64_t max_bytes;
  unsigned backups;
  uint8_t timestamps;
  /* The loop's. */
  uint8_t at_line_start;         /* the next byte begins a line (carried across reads) */
  uint8_t busy;                  /* a job is queued or running */
  uint8_t closing;               /* the owner let go: free after the last job */
  uint8_t broken;                /* open or write failed: drop until a retry */
  int reported;                  /* the error on_error last told (0: none) */
  uint64_t dropped_broken;       /* dropped since it broke: a rotation's worth retries */
  char *pend;                    /* the queue: bytes for the next job */
  size_t pend_len, pend_cap;
  arbor_log_file_info_t info;
  void (*on_error)(void *arg, const char *line, size_t len);
  void *on_error_arg;
  /* The job's: the worker's while busy, the loop's otherwise. */
  uv_work_t req;
  char *job;
  size_t job_len, job_cap;
  int fd;                        /* -1: not open */
  uint64_t size;                 /* the open file's */
  uint8_t job_close;             /* last job: close the fd at the end */
  int job_err;                   /* the job's failure (negative errno), 0: none */
  const char *job_what;          /* "open", "write", "rename" */
  uint64_t job_written, job_dropped, job_rotations;
};

/* ------------------------------------------------------- the worker's side */

/* Opens FILE for appending (truncated when trunc) and learns its size. */
static int lf_open(struct arbor__logfile *lf, int trunc) {
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0);
  int fd;
  do
    fd = open(lf->path, flags, FILE_MODE);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    lf->job_what = "open";
    return -errno;
  }
  struct stat st;
  lf->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  lf->fd = fd;
  return 0;
}

static void lf_close_fd(struct arbor__logfile *lf) {
  if (lf->fd >= 0)
    close(lf->fd);
  lf->fd = -1;
}

/* FILE.(N-1) -> FILE.N ... FILE -> FILE.1, then a fresh FILE; with no backups,
 * FILE truncated. A missing FILE.i is no error (fewer rotations so far). */
static int lf_rotate(struct arbor__logfile *lf) {
  lf_close_fd(lf);
  lf->job_rotations++;
  if (lf->backups == 0)
    return lf_open(lf, 1);
  char from[PATH_MAX + 16], to[PATH_MAX + 16];   /* the spec's path is < PATH_MAX */
  size_t len = sizeof from;
  for (unsigned i = lf->backups; i > 1; i--) {
    snprintf(from, len, "%s.%u", lf->path, i - 1);
    snprintf(to, len, "%s.%u", lf->path, i);
    if (rename(from, to) < 0 && errno != ENOENT) {
      lf->job_what = "rename";
      return -errno;
    }
  }
  snprintf(to, len, "%s.1", lf->path);
  if (rename(lf->path, to) < 0 && errno != ENOENT) {
    lf->job_what = "rename";
    return -errno;
  }
  return lf_open(lf, 0);
}

/* Writes all n bytes, or fails with a negative errno. */
static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* On a pool thread: the queued bytes into the file, rotating on the way. */
static void job_run(uv_work_t *req) {
  struct arbor__logfile *lf = req->data;
  const char *p = lf->job;
  size_t left = lf->job_len;
  int rc = 0;
  if (left > 0 && lf->fd < 0)
    rc = lf_open(lf, 0);
  while (rc == 0 && left > 0) {
    if (lf->size >= lf->max_bytes && (rc = lf_rotate(lf)) < 0)
      break;
    uint64_t room = lf->max_bytes - lf->size;
    size_t n = left <= room ? left : (size_t)room;
    if (n < left) {              /* cut after the last whole line that fits */
      const char *nl = memrchr(p, '\n', n);
      if (nl != NULL)
        n = (size_t)(nl - p) + 1;
      else if (lf->size > 0) {   /* the line fits a fresh file better */
        rc = lf_rotate(lf);
        continue;
      }
    }
    if ((rc = write_all(lf->fd, p, n)) < 0) {
      lf->job_what = "write";
      break;
    }
    lf->size += n;
    lf->job_written += n;
    p += n;
    left -= n;
  }
  if (rc < 0) {
    lf->job_err = rc;
    lf->job_dropped += left;
    lf_close_fd(lf);             /* opened again only on a retry */
  }
  if (lf->job_close)
    lf_close_fd(lf);
}

/* --------------------------------------------------------- the loop's side */

static void job_after(uv_work_t *req, int status);

/* Hands the queue to the pool (the caller checked that no job runs). */
static void job_start(struct arbor__logfile *lf) {
  char *b = lf->job;
  size_t cap = lf->job_cap;
  lf->job = lf->pend;
  lf->job_cap = lf->pend_cap;
  lf->job_len = lf->pend_len;
  lf->pend = b;
  lf->pend_cap = cap;
  lf->pend_len = 0;
  lf->job_close = lf->closing;
  lf->job_err = 0;
  lf->job_written = lf->job_dropped = lf->job_rotations = 0;
  if (!lf->busy)
    arbor__runtime_hold(lf->rt);
  lf->busy = 1;
  int rc = uv_queue_work(lf->rt->loop, &lf->req, job_run, job_after);
  ARBOR_ASSERT(rc == 0);         /* fails only without a work callback */
  (void)rc;
}

static void lf_free(struct arbor__logfile *lf) {
  lf_close_fd(lf);
  free(lf->pend);
  free(lf->job);
  free(lf->path);
  free(lf);
}

/* Tells the owner, once per distinct error, and once when writing works again. */
static void report(struct arbor__logfile *lf, int err, const char *what) {
  if (err == lf->reported || lf->on_error == NULL) {
    lf->reported = err;
    return;
  }
  char line[512];
  int n;
  if (err < 0)
    n = snprintf(line, sizeof line, "arbor: log file %s: cannot %s: %s; output dropped\n",
                 lf->path, what, uv_strerror(err));
  else
    n = snprintf(line, sizeof line, "arbor: log file %s: writing again (%llu bytes dropped)\n",
                 lf->path, (unsigned long long)lf->info.bytes_dropped);
  lf->reported = err;
  if (n > 0)
    lf->on_error(lf->on_error_arg, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void job_after(uv_work_t *req, int status) {
  (void)status;                  /* never cancelled: uv_cancel is not used */
  struct arbor__logfile *lf = req->data;
  lf->info.bytes_written += lf->job_written;
  lf->info.bytes_dropped += lf->job_dropped;
  lf->info.rotations += lf->job_rotations;
  if (lf->job_err < 0) {
    lf->broken = 1;
    lf->dropped_broken = 0;
    lf->info.error = lf->job_err;
    lf->info.bytes_dropped += lf->pend_len;   /* queued behind the failure */
    lf->pend_len = 0;
    report(lf, lf->job_err, lf->job_what);
  } else if (lf->job_written > 0 && lf->info.error != 0) {
    lf->info.error = 0;
    report(lf, 1, NULL);
  }
  if (lf->pend_len > 0 || (lf->closing && lf->fd >= 0)) {
    job_start(lf);               /* keeps the runtime held */
    return;
  }
  lf->busy = 0;
  arbor_runtime_t *rt = lf->rt;
  if (lf->closing)
    lf_free(lf);
  arbor__runtime_release(rt);    /* may free the runtime: last */
}

/* Room for n more queued bytes, growing the queue up to QUEUE_MAX. */
static int reserve(struct arbor__logfile *lf, size_t n) {
  if (lf->pend_len + n <= lf->pend_cap)
    return 0;
  if (lf->pend_len + n > QUEUE_MAX)
    return ARBOR_ENOSPC;
  size_t cap = lf->pend_cap > 0 ? lf->pend_cap : QUEUE_MIN;
  while (cap < lf->pend_len + n)
    cap *= 2;
  if (cap > QUEUE_MAX)
    cap = QUEUE_MAX;
  char *b = realloc(lf->pend, cap);
  if (b == NULL)
    return ARBOR_ENOMEM;
  lf->pend = b;
  lf->pend_cap = cap;
  return 0;
}

/* "2026-11-24T22:40:01.123Z " into out (STAMP_LEN bytes, no NUL). */
static void stamp(char *out) {
  struct timespec ts;
  struct tm tm;
  char buf[32];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);   /* 19 bytes to 9999 */
  unsigned ms = (unsigned)(ts.tv_nsec / 1000000) % 1000;
  buf[n++] = '.';
  buf[n++] = (char)('0' + ms / 100);
  buf[n++] = (char)('0' + ms / 10 % 10);
  buf[n++] = (char)('0' + ms % 10);
  buf[n++] = 'Z';
  buf[n++] = ' ';
  ARBOR_ASSERT(n == STAMP_LEN);
  memcpy(out, buf, STAMP_LEN);
}

void arbor__logfile_write(struct arbor__logfile *lf, const char *b, size_t n) {
  if (lf == NULL || n == 0)
    return;
  if (lf->broken) {              /* no disk access until a retry is due */
    lf->info.bytes_dropped += n;
    lf->dropped_broken += n;
    if (lf->dropped_broken >= lf->max_bytes)
      lf->broken = 0;            /* a rotation's worth: the next write tries again */
    return;
  }
  size_t lines = 0;
  if (lf->timestamps) {          /* one stamp per line start in b */
    lines = lf->at_line_start;
    for (const char *q = b; (q = memchr(q, '\n', (size_t)(b + n - q))) != NULL && ++q < b + n;)
      lines++;
  }
  if (reserve(lf, n + lines * STAMP_LEN) < 0) {
    lf->info.bytes_dropped += n;
    if (n > 0)
      lf->at_line_start = b[n - 1] == '\n';
  } else if (!lf->timestamps) {
    memcpy(lf->pend + lf->pend_len, b, n);
    lf->pend_len += n;
  } else {
    char s[STAMP_LEN];
    stamp(s);                    /* the time this read arrived, for all its lines */
    char *o = lf->pend + lf->pend_len;
    for (size_t i = 0; i < n; i++) {
      if (lf->at_line_start) {
        memcpy(o, s, STAMP_LEN);
        o += STAMP_LEN;
      }
      *o++ = b[i];
      lf->at_line_start = b[i] == '\n';
    }
    lf->pend_len = (size_t)(o - lf->pend);
  }
  if (!lf->busy && lf->pend_len > 0)
    job_start(lf);
}

int arbor__logfile_new(arbor_runtime_t *rt, const char *path, uint64_t max_bytes,
                       unsigned backups, int timestamps, struct arbor__logfile **out) {
  struct arbor__logfile *lf = calloc(1, sizeof *lf);
  if (lf == NULL || (lf->path = strdup(path)) == NULL) {
    free(lf);
    return ARBOR_ENOMEM;
  }
  lf->rt = rt;
  lf->max_bytes = max_bytes > 0 ? max_bytes : DEFAULT_MAX_BYTES;
  lf->backups = backups;
  lf->timestamps = timestamps != 0;
  lf->at_line_start = 1;
  lf->fd = -1;
  lf->req.data = lf;
  lf->info.enabled = 1;
  *out = lf;
  return 0;
}

int arbor__logfile_same(const struct arbor__logfile *lf, const char *path, uint64_t max_bytes,
                        unsigned backups, int timestamps) {
  return strcmp(lf->path, path) == 0 &&
         lf->max_bytes == (max_bytes > 0 ? max_bytes : DEFAULT_MAX_BYTES) &&
         lf->backups == backups && lf->timestamps == (timestamps != 0);
}

void arbor__logfile_on_error(struct arbor__logfile *lf,
                             void (*cb)(void *arg, const char *line, size_t len), void *arg) {
  lf->on_error = cb;
  lf->on_error_arg = arg;
}

void arbor__logfile_retry(struct arbor__logfile *lf) {
  if (lf != NULL)
    lf->broken = 0;
}

void arbor__logfile_take_counts(struct arbor__logfile *lf, const struct arbor__logfile *old) {
  lf->info.bytes_written = old->info.bytes_written;
  lf->info.bytes_dropped = old->info.bytes_dropped;
  lf->info.rotations = old->info.rotations;
}

void arbor__logfile_info(const struct arbor__logfile *lf, arbor_log_file_info_t *info) {
  *info = lf->info;
}

/* The owner lets go. From the loop: the last job flushes the queue and closes
 * the file, then frees it. While the runtime is being freed the loop no longer
 * runs, so no job could finish: the file is closed here and the queue dropped. */
void arbor__logfile_close(struct arbor__logfile *lf) {
  if (lf == NULL)
    return;
  lf->on_error = NULL;
  lf->closing = 1;
  if (lf->busy)
    return;                      /* job_after finishes it */
  if (!lf->rt->freeing && (lf->pend_len > 0 || lf->fd >= 0)) {
    job_start(lf);
    return;
  }
  lf_free(lf);
}

int arbor_service_log_file_info(const arbor_node_t *svc, arbor_log_file_info_t *info) {
  if (svc == NULL || info == NULL)
    return ARBOR_EINVAL;
  if (svc->kind != ARBOR_KIND_SERVICE || svc->u.svc->proc == NULL)
    return ARBOR_EKIND;
  memset(info, 0, sizeof *info);
  if (svc->u.svc->logfile != NULL)
    arbor__logfile_info(svc->u.svc->logfile, info);
  return 0;
}
