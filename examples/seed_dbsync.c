/* examples/seed_dbsync.c - the seed's db-sync service and a writer: the writer
 * queues a row every 50 ms, db-sync applies them in batches every second, and on
 * Ctrl-C (or after the seconds given) the final flush, shielded and with its own
 * deadline, applies what was still queued: the program ends by checking that
 * every row written reached the "database".
 *
 *   build/gcc-opt/examples/seed_dbsync 3
 */
#include <inttypes.h>

#include "seed/all.c"

typedef struct {
  seed_db_t *db;
  uint64_t written, sum;
} writer_t;

/* A writer: one row every 50 ms, its value the row's number. */
static int writer(arbor_ctx_t *cx, void *arg) {
  writer_t *w = arg;
  int rc;
  while ((rc = arbor_sleep(cx, 50)) == 0) {
    if ((rc = seed_db_write(cx, w->db, w->written + 1, w->written + 1)) < 0)
      break;
    w->written++;
    w->sum += w->written;
    seed_attr_u64(seed_service_of(cx), "written", w->written);
  }
  return rc;
}

int main(int argc, char **argv) {
  seed_example_t ex;
  seed_db_t db = {.flush_ms = 1000, .flush_cost_ms = 20, .flush_deadline_ms = 500};
  writer_t w = {.db = &db};
  int rc;
  if (seed_example_open(&ex, argc, argv, &(arbor_sup_opts_t){.name = "seed", .intensity = 12,
                                                             .period_ms = 10000}) < 0)
    return 2;
  /* db-sync first: stops go newest first, so the writer stops before the flush. */
  if ((rc = seed_db_open(&db, ex.rt)) < 0 || (rc = seed_db_add(ex.sup, &db, NULL)) < 0 ||
      (rc = arbor_service_add(ex.sup, &(arbor_service_spec_t){.name = "writer", .fiber = writer,
                                                              .arg = &w},
                              NULL)) < 0) {
    fprintf(stderr, "db-sync: %s\n", arbor_strerror(rc));
    arbor_node_cancel(ex.sup);
  }
  rc = seed_example_run(&ex);
  seed_db_close(&db);
  printf("written %" PRIu64 " rows (sum %" PRIu64 "); applied %" PRIu64 " (sum %" PRIu64
         ") in %" PRIu64 " flushes, %" PRIu64 " of them on shutdown: %s\n",
         w.written, w.sum, db.rows, db.sum, db.flushes, db.final_flushes,
         db.rows == w.written && db.sum == w.sum ? "nothing lost" : "ROWS LOST");
  return rc != 0 ? rc : db.rows == w.written ? 0 : 1;
}
