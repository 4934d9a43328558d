/* examples/seed/breaker.c - a circuit breaker around the flaky call.
 *
 *   closed --threshold failures in a row--> open --cooldown--> half-open
 *   half-open --success--> closed;  half-open --failure--> open
 *
 * Open, it answers at once without calling the upstream (a rejected call), which
 * is the point: a failing dependency is given time to recover instead of being
 * hammered. The state is the service's attribute "circuit". */
#include <stdio.h>
#include <string.h>

#include "seed.h"

const char *seed_circuit_name(seed_circuit_t s) {
  switch (s) {
  case SEED_CLOSED:
    return "closed";
  case SEED_OPEN:
    return "open";
  case SEED_HALF_OPEN:
    return "half-open";
  }
  return "unknown";
}

/* Keeps the last 63 states as letters: the trail tests read. */
static void trail_add(seed_breaker_t *b, char c) {
  size_t len = strlen(b->trail);
  if (len == sizeof b->trail - 1) {
    memmove(b->trail, b->trail + 1, len - 1);
    len--;
  }
  b->trail[len] = c;
  b->trail[len + 1] = '\0';
}

static void enter(arbor_ctx_t *cx, seed_breaker_t *b, seed_circuit_t s) {
  static const char letter[] = {'C', 'O', 'H'};
  if (b->log != NULL)
    fprintf(b->log, "breaker: %s -> %s\n", seed_circuit_name(b->state), seed_circuit_name(s));
  b->state = s;
  if (s == SEED_OPEN)
    b->opened++;
  else if (s == SEED_CLOSED)
    b->closed++;
  else
    b->half_opened++;
  trail_add(b, letter[s]);
  (void)arbor_node_attr_set(seed_service_of(cx), "circuit", seed_circuit_name(s));
}

/* Records the outcome of a call let through. */
static void settle(arbor_ctx_t *cx, seed_breaker_t *b, int ok, uint64_t now) {
  arbor_node_t *svc = seed_service_of(cx);
  if (ok) {
    b->failures_in_row = 0;
    if (b->state != SEED_CLOSED)
      enter(cx, b, SEED_CLOSED);
  } else if (++b->failures_in_row >= b->threshold || b->state == SEED_HALF_OPEN) {
    b->failures_in_row = 0;      /* counted afresh once it closes again */
    b->open_until_ms = now + b->cooldown_ms;
    enter(cx, b, SEED_OPEN);
  }
  seed_attr_u64(svc, "failures_in_row", (uint64_t)b->failures_in_row);
}

static int breaker(arbor_ctx_t *cx, void *arg) {
  seed_breaker_t *b = arg;
  arbor_runtime_t *rt = arbor_node_runtime(arbor_ctx_node(cx));
  arbor_node_t *svc = seed_service_of(cx);
  int rc;
  (void)arbor_node_attr_set(svc, "circuit", seed_circuit_name(b->state));
  while ((rc = arbor_sleep(cx, b->call_ms)) == 0) {
    arbor_error_t *err;
    if (b->state == SEED_OPEN) {
      if (arbor_now_ms(rt) < b->open_until_ms) {
        b->rejected++;
        seed_attr_u64(svc, "rejected", b->rejected);
        continue;
      }
      enter(cx, b, SEED_HALF_OPEN);
    }
    rc = seed_flaky_call(cx, b->upstream, &err);
    if (rc == ARBOR_ECANCELED)
      break;
    b->calls++;
    if (err != NULL)             /* shown, not kept: the breaker does not fail */
      (void)arbor_node_attr_set(svc, "last_error", arbor_error_message(err));
    arbor_error_unref(err);
    settle(cx, b, rc == 0, arbor_now_ms(rt));
  }
  return rc;
}

/* Adds "breaker" under sup. Errors: ARBOR_EINVAL (NULL b or upstream), then as
 * arbor_service_add. */
int seed_breaker_add(arbor_node_t *sup, seed_breaker_t *b, arbor_node_t **out) {
  if (b == NULL || b->upstream == NULL)
    return ARBOR_EINVAL;
  if (b->call_ms == 0)
    b->call_ms = 300;
  if (b->threshold <= 0)
    b->threshold = 3;
  if (b->cooldown_ms == 0)
    b->cooldown_ms = 2000;
  return arbor_service_add(sup, &(arbor_service_spec_t){.name = "breaker", .fiber = breaker,
                                                        .arg = b, .shutdown_timeout_ms = 1000},
                           out);
}
