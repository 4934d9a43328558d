/* supervisor/logring.c - a process service's captured output: a bounded byte ring
 * and its public reader, arbor_service_log_read (arbor.h, "supervision").
 *
 * One ring per service holds stdout and stderr as one stream, in the order the
 * loop read them, across every incarnation. Writing never blocks and never fails:
 * the newest bytes overwrite the oldest, so a program that talks a lot while
 * nobody reads costs log_size bytes, no more. Offsets are absolute (bytes ever
 * written), so a reader keeps one number and learns what it missed, exactly as
 * arbor_events_read does with its cursor.
 */
#include <string.h>

#include "internal.h"

#define DEFAULT_LOG_SIZE (64 * 1024)

/* Allocates the ring's buffer: cap bytes, 0 meaning 64 KiB. On failure the ring is
 * left empty (buf NULL), so arbor__logring_free stays safe. ARBOR_ENOMEM. */
int arbor__logring_init(struct arbor__logring *r, size_t cap) {
  if (cap == 0)
    cap = DEFAULT_LOG_SIZE;
  r->end = 0;
  r->cap = 0;
  r->buf = malloc(cap);
  if (r->buf == NULL)
    return ARBOR_ENOMEM;
  r->cap = cap;
  return 0;
}

/* Safe on a zeroed ring and twice in a row. */
void arbor__logring_free(struct arbor__logring *r) {
  free(r->buf);
  r->buf = NULL;
  r->cap = 0;
}

/* Appends n bytes. Of a write longer than the ring only its tail can survive, so
 * only that is copied; `end` still counts every byte, which is what tells a
 * reader how much it missed. At most two memcpy calls (the wrap). */
void arbor__logring_write(struct arbor__logring *r, const char *p, size_t n) {
  if (r->buf == NULL || n == 0)
    return;
  uint64_t end = r->end + n;
  if (n > r->cap) {
    p += n - r->cap;
    n = r->cap;
  }
  size_t at = (size_t)((end - n) % r->cap);
  size_t first = r->cap - at < n ? r->cap - at : n;
  memcpy(r->buf + at, p, first);
  memcpy(r->buf, p + first, n - first);
  r->end = end;
}

/* The oldest offset still in the ring. */
static uint64_t logring_start(const struct arbor__logring *r) {
  return r->end > r->cap ? r->end - r->cap : 0;
}

/* Copies bytes from *offset on, as arbor_service_log_read documents. */
static size_t logring_read(const struct arbor__logring *r, uint64_t *offset, char *buf,
                           size_t size, uint64_t *missed) {
  uint64_t off = *offset, start = logring_start(r);
  if (missed != NULL)
    *missed = 0;
  if (off < start) {             /* overwritten before this reader got to it */
    if (missed != NULL)
      *missed = start - off;
    off = start;
  }
  if (off >= r->end)             /* nothing new (or an offset from the future: kept) */
    return 0;
  uint64_t avail = r->end - off;
  size_t n = avail < size ? (size_t)avail : size;
  if (n == 0) {                  /* size 0 (buf may be NULL): only *missed and the skip */
    *offset = off;
    return 0;
  }
  size_t at = (size_t)(off % r->cap);
  size_t first = r->cap - at < n ? r->cap - at : n;
  memcpy(buf, r->buf + at, first);
  memcpy(buf + first, r->buf, n - first);
  *offset = off + n;
  return n;
}

int arbor_service_log_read(const arbor_node_t *svc, uint64_t *offset, char *buf, size_t size,
                           uint64_t *missed) {
  if (svc == NULL || offset == NULL || (buf == NULL && size > 0))
    return ARBOR_EINVAL;
  if (svc->kind != ARBOR_KIND_SERVICE || svc->u.svc->proc == NULL)
    return ARBOR_EKIND;
  if (size > INT32_MAX)          /* the count must fit the int we return */
    size = INT32_MAX;
  return (int)logring_read(&svc->u.svc->log, offset, buf, size, missed);
}
