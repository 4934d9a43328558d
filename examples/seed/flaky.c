/* examples/seed/flaky.c - an upstream that fails now and then, for the retry
 * service and the circuit breaker to guard against. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "seed.h"

/* xorshift32: small, seeded, and the same seed fails the same calls, so a demo
 * run can be replayed. The state must not be 0. */
static uint32_t next_random(seed_flaky_t *f) {
  uint32_t x = f->seed != 0 ? f->seed : 1;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  f->seed = x;
  return x;
}

/* Whether call number n (1, 2, ...) fails. */
static int fails(seed_flaky_t *f, uint64_t n) {
  if (f->pattern != NULL && f->pattern[0] != '\0')
    return f->pattern[(n - 1) % strlen(f->pattern)] == 'x';
  return (int)(next_random(f) % 100) < f->fail_percent;
}

/* Checkpoint: one call. Returns 0, ARBOR_ECANCELED (stopped during its latency:
 * the call did not happen and is not counted), or the failure's code with a
 * new error in *err (NULL if it could not be allocated). */
int seed_flaky_call(arbor_ctx_t *cx, seed_flaky_t *f, arbor_error_t **err) {
  int rc;
  *err = NULL;
  if (f->latency_ms > 0 && (rc = arbor_sleep(cx, f->latency_ms)) < 0)
    return rc;
  f->calls++;
  if (!fails(f, f->calls))
    return 0;
  f->failures++;
  *err = arbor_error_new(-ECONNREFUSED, "upstream call %" PRIu64 " failed: connection refused",
                         f->calls);
  return -ECONNREFUSED;
}
