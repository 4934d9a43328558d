/* tracing/recorder.c - the event ring (see recorder.h). */
#include "recorder.h"

#include "extension.h"

#include <stdlib.h>

static size_t round_up_pow2(size_t n) {
  size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

/* Allocates the ring. Returns 0 or ARBOR_ENOMEM; capacity 0 means 16384. */
int arbor__recorder_init(struct arbor__recorder *r, size_t capacity) {
  size_t cap = round_up_pow2(capacity == 0 ? 16384 : capacity);
  r->ring = calloc(cap, sizeof *r->ring);
  if (r->ring == NULL)
    return ARBOR_ENOMEM;
  r->mask = cap - 1;
  r->next_seq = 1;
  r->dropped = 0;
  return 0;
}

/* Drops the error references the ring still holds and frees it. */
void arbor__recorder_free(struct arbor__recorder *r) {
  if (r->ring == NULL)
    return;
  for (size_t i = 0; i <= r->mask; i++)
    arbor_error_unref(r->ring[i].error);
  free(r->ring);
  r->ring = NULL;
}

static uint64_t first_seq(const struct arbor__recorder *r) {
  uint64_t recorded = r->next_seq - 1;
  uint64_t cap = r->mask + 1;
  return recorded > cap ? recorded - cap + 1 : 1;
}

void arbor__recorder_stats(const struct arbor__recorder *r, arbor_events_stats_t *stats) {
  stats->recorded = r->next_seq - 1;
  stats->dropped = r->dropped;
  stats->first_seq = first_seq(r);
  stats->capacity = r->mask + 1;
}

/* Copies records seq >= *cursor into out (at most max); see arbor_events_read. */
int arbor__recorder_read(const struct arbor__recorder *r, uint64_t *cursor, arbor_event_t *out,
                         size_t max, uint64_t *missed) {
  uint64_t seq = *cursor == 0 ? 1 : *cursor;
  uint64_t oldest = first_seq(r);
  size_t n = 0;

  if (missed != NULL)
    *missed = 0;
  if (seq < oldest) {           /* the ring overwrote what this reader had not seen */
    if (missed != NULL)
      *missed = oldest - seq;
    seq = oldest;
  }
  while (n < max && seq < r->next_seq) {
    const struct arbor__event *e = &r->ring[(seq - 1) & r->mask];
    arbor_event_t *o = &out[n++];
    o->seq = seq;
    o->time_ns = e->time_ns;
    o->node_id = e->node_id;
    o->parent_id = e->parent_id;
    o->type = (arbor_event_type_t)e->type;
    o->kind = (arbor_kind_t)e->kind;
    o->from = (arbor_state_t)e->from;
    o->to = (arbor_state_t)e->to;
    o->error = e->error;
    seq++;
  }
  *cursor = seq;
  return (int)n;
}

void arbor__recorder_fire(struct arbor__recorder *r) {
  struct arbor__events_sub *next;
  for (struct arbor__events_sub *s = r->subs; s != NULL && r->armed > 0; s = next) {
    next = s->next;
    if (!s->armed)
      continue;
    s->armed = 0;
    r->armed--;
    s->fn(s->arg);
  }
}
