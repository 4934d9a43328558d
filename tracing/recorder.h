/* tracing/recorder.h - the event ring: a bounded ring of fixed-size records.
 *
 * Memory is capacity * sizeof(struct arbor__event) and never grows. When the ring
 * is full the oldest record is overwritten and counted as dropped. A record's seq
 * is implicit: record k of the ring holds seq k + 1 modulo the capacity, so the ring
 * needs no per-record sequence field. Names live in the node table, not here.
 */
#ifndef ARBOR_TRACING_RECORDER_H
#define ARBOR_TRACING_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "arbor.h"

struct arbor__event {
  uint64_t time_ns;
  uint64_t node_id;
  uint64_t parent_id;
  arbor_error_t *error;      /* a reference, or NULL */
  uint8_t type, kind, from, to;
};

struct arbor__events_sub;     /* extension.h */

struct arbor__recorder {
  struct arbor__event *ring;
  size_t mask;               /* capacity - 1 */
  uint64_t next_seq;         /* seq the next record gets; the first is 1 */
  uint64_t dropped;
  uint64_t counts[ARBOR_EVENT_COUNT];   /* by type, also when off */
  int off;                   /* no_events: count, record nothing */
  unsigned armed;            /* subscriptions waiting for the next record */
  struct arbor__events_sub *subs;       /* every subscription (extension.h) */
};

int arbor__recorder_init(struct arbor__recorder *r, size_t capacity);
void arbor__recorder_free(struct arbor__recorder *r);

/* Calls and disarms every armed subscription (out of line: rarely taken). */
void arbor__recorder_fire(struct arbor__recorder *r);

/* Appends one record; takes a new reference to err. Cannot fail. */
static inline void arbor__recorder_add(struct arbor__recorder *r, uint64_t time_ns,
                                       uint64_t node_id, uint64_t parent_id, int type,
                                       int kind, int from, int to, arbor_error_t *err) {
  r->counts[type]++;
  if (r->off)
    return;
  struct arbor__event *e = &r->ring[(r->next_seq - 1) & r->mask];
  if (r->next_seq > r->mask + 1) {   /* the slot holds the oldest record: drop it */
    r->dropped++;
    if (e->error != NULL)
      arbor_error_unref(e->error);
  }
  e->time_ns = time_ns;
  e->node_id = node_id;
  e->parent_id = parent_id;
  e->error = err != NULL ? arbor_error_ref(err) : NULL;
  e->type = (uint8_t)type;
  e->kind = (uint8_t)kind;
  e->from = (uint8_t)from;
  e->to = (uint8_t)to;
  r->next_seq++;
  if (r->armed != 0)
    arbor__recorder_fire(r);
}

void arbor__recorder_stats(const struct arbor__recorder *r, arbor_events_stats_t *stats);
int arbor__recorder_read(const struct arbor__recorder *r, uint64_t *cursor, arbor_event_t *out,
                         size_t max, uint64_t *missed);

#endif /* ARBOR_TRACING_RECORDER_H */
