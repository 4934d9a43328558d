/* examples/seed_breaker.c - a circuit breaker around a flaky upstream (half of
 * the calls fail): three failures in a row open it, it rejects calls for two
 * seconds, then half-opens and lets one call decide. The attribute "circuit"
 * follows it (the tree printed at the end shows it), and the trail of states
 * is printed last.
 *
 *   build/gcc-opt/examples/seed_breaker 10
 */
#include <inttypes.h>

#include "seed/all.c"

int main(int argc, char **argv) {
  seed_example_t ex;
  seed_flaky_t up = {.latency_ms = 10, .fail_percent = 50, .seed = 7};
  seed_breaker_t b = {.upstream = &up, .call_ms = 200, .threshold = 3, .cooldown_ms = 2000,
                      .log = stdout};
  int rc;
  if (seed_example_open(&ex, argc, argv, &(arbor_sup_opts_t){.name = "seed", .intensity = 12,
                                                             .period_ms = 10000}) < 0)
    return 2;
  if ((rc = seed_breaker_add(ex.sup, &b, NULL)) < 0) {
    fprintf(stderr, "breaker: %s\n", arbor_strerror(rc));
    arbor_node_cancel(ex.sup);
  }
  rc = seed_example_run(&ex);
  printf("breaker: %" PRIu64 " calls let through, %" PRIu64 " rejected; opened %" PRIu64
         " times, half-opened %" PRIu64 ", closed %" PRIu64 "; now %s\n"
         "trail (C closed, O open, H half-open): %s\n",
         b.calls, b.rejected, b.opened, b.half_opened, b.closed, seed_circuit_name(b.state),
         b.trail);
  return rc;
}
