/* examples/seed/seed.h - the seed's services, written with libarbor.
 *
 * The services of the Python seed that arbor grew out of (heartbeat, peer manager,
 * database sync, a retry loop and a circuit breaker around a flaky upstream, a
 * program that crashes now and then), as fiber bodies for arbor's supervisors. Each
 * is a struct that holds its settings and what it counted, and a function that
 * adds it to a supervisor. `arbor demo` (cmd/demo.c) puts them all in one tree; the
 * programs examples/seed_<name>.c run one each; tests/demo/test_seed.c checks each.
 *
 * Ownership: the caller owns every struct here and keeps it alive (and in place)
 * until the service it was added with has FINISHED; the services keep state in it
 * across restarts. Everything runs on the loop thread.
 *
 * Settings left 0 get the defaults named beside them, so that a zeroed struct is a
 * working service: seed_*_add fills them in before adding.
 */
#ifndef ARBOR_SEED_H
#define ARBOR_SEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <arbor.h>

/* ---------------------------------------------------------------- heartbeat
 *
 * Beats every interval_ms until cancelled. Each beat counts, sets the service's
 * attribute "beats" and, when db is set, queues a row for db-sync (without
 * waiting: a full queue drops the row and counts it in db->dropped). */
struct seed_db;

typedef struct {
  uint64_t interval_ms;          /* 0: 1000 */
  struct seed_db *db;            /* optional */
  uint64_t beats;                /* beats ever, across restarts */
} seed_heartbeat_t;

int seed_heartbeat_add(arbor_node_t *sup, seed_heartbeat_t *h, arbor_node_t **out);

/* ------------------------------------------------------------------ db-sync
 *
 * Writes arrive on a channel (seed_db_write, seed_db_try_write) and are applied
 * to the "database" (a running count and sum, enough to prove nothing was lost)
 * in batches: every flush_ms, or as soon as batch_max rows wait. Applying a
 * batch takes flush_cost_ms (a simulated round trip: a checkpoint). When the
 * service is stopped, the rows still queued are flushed in a shielded cancel
 * scope with its own fail_after deadline (flush_deadline_ms; DESIGN.md's
 * db_sync), so a stop loses nothing, and a flush that hangs fails the service
 * with a timeout instead of hanging the shutdown. */
typedef struct {
  uint64_t key;
  uint64_t value;
} seed_row_t;

#define SEED_DB_BATCH_MAX 64

typedef struct seed_db {
  uint64_t flush_ms;             /* 0: 2000 */
  uint64_t flush_cost_ms;        /* 0: 5 */
  uint64_t flush_deadline_ms;    /* the final flush's deadline; 0: 1000 */
  size_t queue;                  /* channel capacity in rows; 0: 1024 */
  size_t batch_max;              /* 0 or more than SEED_DB_BATCH_MAX: SEED_DB_BATCH_MAX */
  /* the channel: seed_db_open makes it, seed_db_close closes both ends */
  arbor_channel_end_t tx, rx;
  /* the batch being built (kept here so that a restart does not lose it) */
  seed_row_t batch[SEED_DB_BATCH_MAX];
  size_t batch_len;
  /* the database */
  uint64_t rows;                 /* rows applied */
  uint64_t sum;                  /* sum of their values */
  uint64_t last_key;
  uint64_t flushes;              /* batches applied */
  uint64_t final_flushes;        /* of which on shutdown */
  uint64_t dropped;              /* seed_db_try_write found the queue full */
} seed_db_t;

/* Opens db's channel on rt (after setting db->queue). Errors: as arbor_channel_new. */
int seed_db_open(seed_db_t *db, arbor_runtime_t *rt);
/* Closes both ends (when the service has FINISHED). Rows still queued are lost. */
void seed_db_close(seed_db_t *db);
/* Checkpoint: queues a row, waiting while the queue is full. */
int seed_db_write(arbor_ctx_t *cx, seed_db_t *db, uint64_t key, uint64_t value);
/* Queues a row without waiting: 0, or ARBOR_EAGAIN (full: counted in dropped). */
int seed_db_try_write(seed_db_t *db, uint64_t key, uint64_t value);
int seed_db_add(arbor_node_t *sup, seed_db_t *db, arbor_node_t **out);

/* ------------------------------------------------------------ peer manager
 *
 * Listens on 127.0.0.1, on a free port (attribute "port"), and runs one task per
 * connected peer ("peer-N": greets it, answers its pings). The accept loop is a
 * daemon task (rule 7: should it ever return, the service fails). A discovery
 * daemon "finds" a new peer every discover_ms (a client task "dial-N" that
 * connects to the listener and pings), drops the oldest peer once the table
 * holds max_peers, and every bad_peer_every-th peer found sends a bad greeting:
 * its peer task fails with -EPROTO, and with it the incarnation (rule 2), so the
 * supervisor restarts the manager. The table is the attribute "peers" too. */
#define SEED_PEERS_MAX 32

struct seed_peers;

typedef struct {
  uint64_t id;                   /* 0: a free slot */
  arbor_node_t *task;            /* the peer's task (alive while the slot is used) */
  arbor_stream_t *stream;        /* owned by that task */
  struct seed_peers *owner;
  uint64_t pings;
} seed_peer_t;

typedef struct seed_peers {
  uint64_t discover_ms;          /* 0: 1500 */
  uint64_t ping_ms;              /* a dialled peer's ping period; 0: 500 */
  int max_peers;                 /* 0 or more than SEED_PEERS_MAX: 4 */
  int bad_peer_every;            /* 0: never */
  int port;                      /* the current incarnation's, once listening; else 0 */
  arbor_node_t *svc;             /* the service node, once it ran */
  seed_peer_t table[SEED_PEERS_MAX];
  int peers;                     /* in the table now */
  uint64_t accepted, refused, discovered, dropped, bad, pings;
  uint64_t next_id;
} seed_peers_t;

int seed_peers_add(arbor_node_t *sup, seed_peers_t *p, arbor_node_t **out);

/* The small client: connects to the manager's port, says hello and pings every
 * ping_ms; a lost connection fails it (-ECONNRESET), and so does a manager that
 * is not listening (the supervisor retries with its backoff). */
typedef struct {
  seed_peers_t *manager;
  uint64_t ping_ms;              /* 0: 500 */
  uint64_t pongs;
} seed_peer_client_t;

int seed_peer_client_add(arbor_node_t *sup, seed_peer_client_t *c, arbor_node_t **out);

/* ------------------------------------------------- the flaky upstream call
 *
 * seed_flaky_call is an operation that takes latency_ms and then fails or not:
 * by `pattern` when set ('x' fails, anything else succeeds, cycling), else at
 * random with fail_percent (a seeded xorshift: the same seed fails the same
 * calls). A failure returns its code and, in *err, an error "upstream call N
 * failed" (the caller owns it). */
typedef struct {
  uint64_t latency_ms;           /* 0: none */
  const char *pattern;           /* e.g. "..xxx": calls 3-5 of every 5 fail */
  int fail_percent;              /* without a pattern */
  uint32_t seed;                 /* 0: 1 */
  uint64_t calls, failures;
} seed_flaky_t;

int seed_flaky_call(arbor_ctx_t *cx, seed_flaky_t *f, arbor_error_t **err);

/* --------------------------------------------------------------- retry
 *
 * Calls the upstream every job_ms; a failed call is tried again after
 * backoff_ms, doubling, up to max_tries tries. When every try failed the
 * service fails with "gave up after N tries", caused by the last try's error,
 * and its supervisor restarts it. Attributes "tries", "succeeded", "gave_up". */
typedef struct {
  seed_flaky_t *upstream;
  uint64_t job_ms;               /* 0: 1000 */
  uint64_t backoff_ms;           /* 0: 100 */
  int max_tries;                 /* 0: 5 */
  uint64_t tries, succeeded, gave_up;
} seed_retry_t;

int seed_retry_add(arbor_node_t *sup, seed_retry_t *r, arbor_node_t **out);

/* ------------------------------------------------------- circuit breaker
 *
 * Calls the upstream every call_ms through a breaker: closed, it lets calls
 * through and opens after `threshold` failures in a row; open, it rejects calls
 * (without touching the upstream) for cooldown_ms; then half-open, it lets one
 * call through: a success closes it, a failure opens it again. The state is the
 * attribute "circuit" ("closed", "open", "half-open"). The breaker itself never
 * fails: that is what it is for. */
typedef enum { SEED_CLOSED, SEED_OPEN, SEED_HALF_OPEN } seed_circuit_t;

typedef struct {
  seed_flaky_t *upstream;
  uint64_t call_ms;              /* 0: 300 */
  int threshold;                 /* 0: 3 */
  uint64_t cooldown_ms;          /* 0: 2000 */
  FILE *log;                     /* optional: each change of state is printed here */
  seed_circuit_t state;
  int failures_in_row;
  uint64_t open_until_ms;        /* arbor_now_ms time */
  uint64_t calls, rejected, opened, closed, half_opened;
  /* the states it went through, oldest first, as letters ('C', 'O', 'H'),
   * the last 63 (for tests and for the curious) */
  char trail[64];
} seed_breaker_t;

int seed_breaker_add(arbor_node_t *sup, seed_breaker_t *b, arbor_node_t **out);
const char *seed_circuit_name(seed_circuit_t s);

/* ----------------------------------------------------- the crashing program
 *
 * A process service running /bin/sh: it says it is starting, reports ready on
 * fd 3 (notify_fd) after ready_ms, runs for up_ms plus 0-3 times up_ms more
 * (its pid picks), then writes "fatal: simulated crash" to stderr and exits
 * with status 3. */
typedef struct {
  uint64_t ready_ms;             /* 0: 200 */
  uint64_t up_ms;                /* 0: 1000 */
  char script[512];              /* filled in by seed_crasher_add */
  char *argv[4];
} seed_crasher_t;

int seed_crasher_add(arbor_node_t *sup, seed_crasher_t *c, arbor_node_t **out);

/* ------------------------------------------------------ example programs
 *
 * What every examples/seed_<name>.c does around its service: a runtime on the
 * default loop, a supervisor "NAME" to add the service to, the tree's events
 * printed as they happen ("  1.234s  service retry (7)  FAILED: gave up after 5
 * tries"), and, given a number of seconds as the first argument, a graceful
 * shutdown after that long (else it runs until SIGINT/SIGTERM). */
typedef struct seed_example {
  uv_loop_t *loop;
  arbor_runtime_t *rt;
  arbor_node_t *sup;             /* add the service here */
  FILE *out;
  uv_timer_t watch, stop;
  uint64_t cursor, start_ns, run_ms;
  int closed;
  /* optional: called once the supervisor FINISHED, its nodes still there */
  void (*at_end)(struct seed_example *ex);
  void *data;
} seed_example_t;

/* Errors: ARBOR_EINVAL (a bad argument: usage printed), then as
 * arbor_runtime_new / arbor_supervisor_new (nothing is left open). */
int seed_example_open(seed_example_t *ex, int argc, char **argv, const arbor_sup_opts_t *sup);
/* arbor_run, then closes what open made. Returns a process exit status. */
int seed_example_run(seed_example_t *ex);

/* Sets attribute key to a number (what every service shows its counters with). */
void seed_attr_u64(arbor_node_t *node, const char *key, uint64_t value);
/* The service node a fiber of it runs in (the incarnation's parent). */
arbor_node_t *seed_service_of(arbor_ctx_t *cx);

#endif /* ARBOR_SEED_H */
