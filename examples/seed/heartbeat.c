/* examples/seed/heartbeat.c - the seed's HeartbeatService: beats until cancelled.
 *
 * The shape DESIGN.md opens with: a loop around a checkpoint, no "is running"
 * flag anywhere; cancellation arrives as ARBOR_ECANCELED from arbor_sleep, and
 * returning it ends the run CANCELLED, not FAILED. */
#include "seed.h"

/* One beat: counted, shown on the service, and offered to db-sync if there is
 * one. A full db queue drops the beat's row (seed_db_try_write counts it): a
 * heartbeat must not stall because the database is slow. */
static void beat(arbor_ctx_t *cx, seed_heartbeat_t *h) {
  h->beats++;
  seed_attr_u64(seed_service_of(cx), "beats", h->beats);
  if (h->db != NULL)
    (void)seed_db_try_write(h->db, h->beats, 1);
}

static int heartbeat(arbor_ctx_t *cx, void *arg) {
  seed_heartbeat_t *h = arg;
  int rc;
  while ((rc = arbor_sleep(cx, h->interval_ms)) == 0)
    beat(cx, h);
  return rc;
}

/* Adds the heartbeat service "heartbeat" under sup. Errors: as arbor_service_add. */
int seed_heartbeat_add(arbor_node_t *sup, seed_heartbeat_t *h, arbor_node_t **out) {
  if (h == NULL)
    return ARBOR_EINVAL;
  if (h->interval_ms == 0)
    h->interval_ms = 1000;
  return arbor_service_add(sup, &(arbor_service_spec_t){.name = "heartbeat", .fiber = heartbeat,
                                                        .arg = h, .shutdown_timeout_ms = 1000},
                           out);
}
