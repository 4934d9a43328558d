/* examples/seed_heartbeat.c - the seed's heartbeat service alone: beats twice a
 * second under a supervisor until Ctrl-C (or for the seconds given), printing
 * the tree's events, then the tree and the number of beats.
 *
 *   build/gcc-opt/examples/seed_heartbeat 3
 */
#include <inttypes.h>

#include "seed/all.c"

int main(int argc, char **argv) {
  seed_example_t ex;
  seed_heartbeat_t h = {.interval_ms = 500};
  int rc;
  if (seed_example_open(&ex, argc, argv, &(arbor_sup_opts_t){.name = "seed", .intensity = 12,
                                                             .period_ms = 10000}) < 0)
    return 2;
  if ((rc = seed_heartbeat_add(ex.sup, &h, NULL)) < 0) {
    fprintf(stderr, "heartbeat: %s\n", arbor_strerror(rc));
    arbor_node_cancel(ex.sup);
  }
  rc = seed_example_run(&ex);
  printf("%" PRIu64 " beats\n", h.beats);
  return rc;
}
