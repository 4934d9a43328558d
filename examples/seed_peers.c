/* examples/seed_peers.c - the seed's peer manager and its client, under a
 * rest_for_one supervisor: the manager listens on a free loopback port, finds a
 * peer every second (a task per peer on each side), drops the oldest when four
 * are connected, and every 5th peer greets badly, which fails the manager; the
 * supervisor restarts it, and the client with it.
 *
 *   build/gcc-opt/examples/seed_peers 8
 */
#include <inttypes.h>

#include "seed/all.c"

int main(int argc, char **argv) {
  seed_example_t ex;
  seed_peers_t p = {.discover_ms = 1000, .ping_ms = 300, .max_peers = 4, .bad_peer_every = 5};
  seed_peer_client_t c = {.manager = &p, .ping_ms = 500};
  int rc;
  if (seed_example_open(&ex, argc, argv,
                        &(arbor_sup_opts_t){.name = "net", .strategy = ARBOR_REST_FOR_ONE,
                                            .intensity = 25, .period_ms = 10000,
                                            .backoff_max_ms = 2000}) < 0)
    return 2;
  if ((rc = seed_peers_add(ex.sup, &p, NULL)) < 0 ||
      (rc = seed_peer_client_add(ex.sup, &c, NULL)) < 0) {
    fprintf(stderr, "peers: %s\n", arbor_strerror(rc));
    arbor_node_cancel(ex.sup);
  }
  rc = seed_example_run(&ex);
  printf("peers: %" PRIu64 " discovered, %" PRIu64 " accepted, %" PRIu64 " dropped, %" PRIu64
         " bad, %" PRIu64 " pings answered; the client got %" PRIu64 " pongs\n",
         p.discovered, p.accepted, p.dropped, p.bad, p.pings, c.pongs);
  return rc;
}
