/* examples/seed/dbsync.c - the seed's DatabaseSync: batched writes, flushed on
 * a period and, shielded, on shutdown.
 *
 * Rows wait in a bounded channel; the service collects them into a batch until
 * the batch is full or the flush period ends (a move-on cancel scope is the
 * timer), then applies the batch, which takes a round trip (a checkpoint). A
 * stop cancels whatever checkpoint the body is in; the rows it had not applied
 * are still in the batch or the channel, and the final flush applies them inside
 * a shielded scope (rule 6: the stop does not reach it) with a fail_after
 * deadline of its own (rule 5: a database that never answers fails the run with
 * a timeout naming this file, instead of hanging the shutdown). */
#include "seed.h"

/* Applies the batch: one round trip, then every row lands at once, so a batch
 * cut short by cancellation is applied later whole, never twice or in part. */
static int apply_batch(arbor_ctx_t *cx, seed_db_t *db) {
  int rc;
  size_t i;
  if (db->batch_len == 0)
    return 0;
  if ((rc = arbor_sleep(cx, db->flush_cost_ms)) < 0)
    return rc;
  for (i = 0; i < db->batch_len; i++) {
    db->rows++;
    db->sum += db->batch[i].value;
    db->last_key = db->batch[i].key;
  }
  db->batch_len = 0;
  db->flushes++;
  arbor_node_t *svc = seed_service_of(cx);
  seed_attr_u64(svc, "rows", db->rows);
  seed_attr_u64(svc, "flushes", db->flushes);
  return 0;
}

/* Receives rows into the batch until it is full or until `until_ms` (loop
 * time). Returns 1 when the period ended, 0 when the batch is full, else the
 * receive's error: ARBOR_ECANCELED (the service is stopping) or ARBOR_EOF
 * (every writer gone). */
static int collect(arbor_ctx_t *cx, seed_db_t *db, uint64_t until_ms) {
  arbor_scope_t window;
  seed_row_t row;
  int rc = 0;
  arbor_scope_enter(cx, &window, &(arbor_scope_opts_t){.move_on_at_ms = until_ms});
  while (db->batch_len < db->batch_max) {
    if ((rc = arbor_channel_recv(cx, &db->rx, &row)) < 0)
      break;
    db->batch[db->batch_len++] = row;
  }
  arbor_scope_exit(cx, &window);
  /* The window's own deadline is no error; a stop from outside still is, and
   * the next checkpoint would say so anyway (rule 4 is level-triggered). */
  return arbor_scope_cancelled_caught(&window) ? 1 : rc;
}

/* The final flush: whatever is batched or queued, applied shielded, within
 * flush_deadline_ms. Returns 0, or ARBOR_ETIMEDOUT when the deadline passed. */
static int final_flush(arbor_ctx_t *cx, seed_db_t *db) {
  arbor_scope_t flush;
  seed_row_t row;
  int rc = 0, exit_rc;
  arbor_scope_enter(cx, &flush,
                    &(arbor_scope_opts_t){.shield = 1, .fail_after_ms = db->flush_deadline_ms});
  while (rc == 0) {
    while (db->batch_len < db->batch_max && arbor_channel_try_recv(&db->rx, &row) == 0)
      db->batch[db->batch_len++] = row;
    if (db->batch_len == 0)
      break;
    if ((rc = apply_batch(cx, db)) == 0)
      db->final_flushes++;
  }
  exit_rc = arbor_scope_exit(cx, &flush);
  return exit_rc < 0 ? exit_rc : rc;
}

static int db_sync(arbor_ctx_t *cx, void *arg) {
  seed_db_t *db = arg;
  arbor_runtime_t *rt = arbor_node_runtime(arbor_ctx_node(cx));
  uint64_t next = arbor_now_ms(rt) + db->flush_ms;
  int rc;
  for (;;) {
    if ((rc = collect(cx, db, next)) < 0)
      break;
    if (rc == 1)                 /* the period ended: flush, start the next one */
      next = arbor_now_ms(rt) + db->flush_ms;
    if ((rc = apply_batch(cx, db)) < 0)
      break;
  }
  if (rc != ARBOR_ECANCELED && rc != ARBOR_EOF)
    return rc;
  int flush_rc = final_flush(cx, db);
  if (flush_rc < 0 || rc == ARBOR_ECANCELED)
    return flush_rc;             /* 0 after a stop: the run ends CANCELLED */
  /* Every writer is gone (EOF): nothing more will come; stay until stopped
   * rather than return and be restarted into the same EOF. */
  while ((rc = arbor_sleep(cx, UINT32_MAX)) == 0)
    ;
  return rc;
}

int seed_db_open(seed_db_t *db, arbor_runtime_t *rt) {
  if (db == NULL)
    return ARBOR_EINVAL;
  if (db->queue == 0)
    db->queue = 1024;
  return arbor_channel_new(rt, db->queue, sizeof(seed_row_t), &db->tx, &db->rx);
}

void seed_db_close(seed_db_t *db) {
  (void)arbor_channel_close(&db->tx);
  (void)arbor_channel_close(&db->rx);
}

int seed_db_write(arbor_ctx_t *cx, seed_db_t *db, uint64_t key, uint64_t value) {
  return arbor_channel_send(cx, &db->tx, &(seed_row_t){.key = key, .value = value});
}

int seed_db_try_write(seed_db_t *db, uint64_t key, uint64_t value) {
  int rc = arbor_channel_try_send(&db->tx, &(seed_row_t){.key = key, .value = value});
  if (rc == ARBOR_EAGAIN)
    db->dropped++;
  return rc;
}

/* Adds "db-sync" under sup; db must be open (seed_db_open). Its shutdown timeout
 * leaves room for the final flush's own deadline. Errors: ARBOR_EINVAL (NULL, or
 * db not open), then as arbor_service_add. */
int seed_db_add(arbor_node_t *sup, seed_db_t *db, arbor_node_t **out) {
  if (db == NULL || arbor_channel_end_is_send(&db->rx) != 0)
    return ARBOR_EINVAL;
  if (db->flush_ms == 0)
    db->flush_ms = 2000;
  if (db->flush_cost_ms == 0)
    db->flush_cost_ms = 5;
  if (db->flush_deadline_ms == 0)
    db->flush_deadline_ms = 1000;
  if (db->batch_max == 0 || db->batch_max > SEED_DB_BATCH_MAX)
    db->batch_max = SEED_DB_BATCH_MAX;
  return arbor_service_add(sup, &(arbor_service_spec_t){.name = "db-sync", .fiber = db_sync,
                                                        .arg = db,
                                                        .shutdown_timeout_ms =
                                                            db->flush_deadline_ms + 1000},
                           out);
}
