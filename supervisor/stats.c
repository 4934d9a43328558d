/* supervisor/stats.c - the runtime's counters and histograms (arbor_runtime_stats)
 * and the state-entry times of a node: what GET /metrics and the exporters read.
 *
 * Everything here is a plain increment on the loop thread where the tree changes
 * (node.c, lifecycle.c, service.c), so keeping it costs a few stores per
 * transition, and reading it never walks the tree.
 */
#include <string.h>

#include "internal.h"

/* 1, 2.5, 5 x 10^k ns from 1 us to 1000 s: task lifetimes start at microseconds
 * (a fiber that only yields), restart gaps end at minutes of backoff. */
static const uint64_t bounds_ns[ARBOR_HISTOGRAM_BUCKETS] = {
    1000ull,          2500ull,          5000ull,
    10000ull,         25000ull,         50000ull,
    100000ull,        250000ull,        500000ull,
    1000000ull,       2500000ull,       5000000ull,
    10000000ull,      25000000ull,      50000000ull,
    100000000ull,     250000000ull,     500000000ull,
    1000000000ull,    2500000000ull,    5000000000ull,
    10000000000ull,   25000000000ull,   50000000000ull,
    100000000000ull,  250000000000ull,  500000000000ull,
    1000000000000ull,
};

uint64_t arbor_histogram_bound_ns(size_t i) {
  return i < ARBOR_HISTOGRAM_BUCKETS ? bounds_ns[i] : UINT64_MAX;
}

void arbor__hist_add(arbor_histogram_t *h, uint64_t ns) {
  size_t lo = 0, hi = ARBOR_HISTOGRAM_BUCKETS;   /* first bound >= ns, or the last */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (bounds_ns[mid] < ns)
      lo = mid + 1;
    else
      hi = mid;
  }
  h->buckets[lo]++;
  h->count++;
  h->sum_ns += ns;
}

void arbor_runtime_stats(const arbor_runtime_t *rt, arbor_stats_t *stats) {
  if (rt == NULL || stats == NULL)
    return;
  *stats = rt->stats;
  memcpy(stats->events, rt->rec.counts, sizeof stats->events);
  stats->events_recorded = rt->rec.next_seq - 1;
  stats->events_dropped = rt->rec.dropped;
}

int arbor_node_state_times(const arbor_node_t *n, uint64_t times[ARBOR_STATE_COUNT]) {
  if (n == NULL || times == NULL)
    return ARBOR_EINVAL;
  times[ARBOR_STATE_CREATED] = n->t_created;
  for (int s = ARBOR_STATE_STARTING; s <= ARBOR_STATE_STOPPED; s++)
    times[s] = n->t_entered[s - ARBOR_STATE_STARTING];
  times[ARBOR_STATE_FINISHED] = n->t_finished;
  return 0;
}
