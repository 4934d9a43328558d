/* examples/seed/peers.c - the seed's peer manager, and a client of it.
 *
 *   service peer-manager ── incarnation ─┬─ daemon "accept"     accepts, one task per peer
 *                                        ├─ daemon "discovery"  dials new peers, drops old ones
 *                                        ├─ task "peer-N"       a peer, server side
 *                                        └─ task "dial-N"       a discovered peer, client side
 *
 * The protocol is a line each way: "HELLO n" -> "WELCOME id", then "PING" ->
 * "PONG". The accept loop and discovery are daemon tasks: they are meant to live
 * as long as the service, so one that returns fails it (rule 7). A peer's task
 * failing (a bad greeting) fails the incarnation (rule 2); the supervisor then
 * restarts the manager, and under rest_for_one its client with it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "seed.h"

/* ------------------------------------------------------------ line I/O */

typedef struct {
  char buf[128];
  size_t len;
} linebuf_t;

/* Checkpoint: the next line (without its newline, cut to size-1 bytes) into
 * line. Returns 0, ARBOR_EOF at the end of the stream, -EPROTO for a line
 * longer than the buffer, or the read's error. */
static int read_line(arbor_ctx_t *cx, arbor_stream_t *s, linebuf_t *lb, char *line,
                     size_t size) {
  for (;;) {
    char *nl = memchr(lb->buf, '\n', lb->len);
    if (nl != NULL) {
      size_t n = (size_t)(nl - lb->buf), keep = n < size - 1 ? n : size - 1;
      memcpy(line, lb->buf, keep);
      line[keep] = '\0';
      lb->len -= n + 1;
      memmove(lb->buf, nl + 1, lb->len);
      return 0;
    }
    if (lb->len == sizeof lb->buf)
      return -EPROTO;
    int rc = arbor_stream_read(cx, s, lb->buf + lb->len, sizeof lb->buf - lb->len);
    if (rc <= 0)
      return rc == 0 ? ARBOR_EOF : rc;
    lb->len += (size_t)rc;
  }
}

static int write_str(arbor_ctx_t *cx, arbor_stream_t *s, const char *text) {
  return arbor_stream_write(cx, s, text, strlen(text));
}

/* -------------------------------------------------------------- the table */

static void show_table(seed_peers_t *p) {
  arbor_node_t *svc = p->svc;
  char ids[ARBOR_ATTR_VALUE_MAX + 1] = "";
  size_t len = 0;
  int i;
  for (i = 0; i < SEED_PEERS_MAX && len < sizeof ids - 24; i++)
    if (p->table[i].id != 0)
      len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%" PRIu64, len > 0 ? "," : "",
                              p->table[i].id);
  (void)arbor_node_attr_set(svc, "table", ids);
  seed_attr_u64(svc, "peers", (uint64_t)p->peers);
  seed_attr_u64(svc, "accepted", p->accepted);
  seed_attr_u64(svc, "dropped", p->dropped);
}

static seed_peer_t *slot_take(seed_peers_t *p) {
  int i;
  if (p->peers >= p->max_peers)
    return NULL;
  for (i = 0; i < SEED_PEERS_MAX; i++)
    if (p->table[i].id == 0) {
      seed_peer_t *peer = &p->table[i];
      memset(peer, 0, sizeof *peer);
      peer->id = ++p->next_id;
      peer->owner = p;
      p->peers++;
      return peer;
    }
  return NULL;
}

static void slot_free(seed_peer_t *peer) {
  peer->owner->peers--;
  peer->id = 0;
  peer->task = NULL;
  peer->stream = NULL;
}

/* The peer that has been in the table longest (lowest id), or NULL. */
static seed_peer_t *oldest(seed_peers_t *p) {
  seed_peer_t *best = NULL;
  int i;
  for (i = 0; i < SEED_PEERS_MAX; i++)
    if (p->table[i].id != 0 && p->table[i].task != NULL &&
        (best == NULL || p->table[i].id < best->id))
      best = &p->table[i];
  return best;
}

/* ------------------------------------------------ a peer, server side */

/* Greets the peer, then answers its pings until it leaves or is dropped. A
 * peer that leaves (end of stream, a reset) is no failure of the manager; one
 * that greets wrongly is: the task fails with -EPROTO. */
static int peer_task(arbor_ctx_t *cx, void *arg) {
  seed_peer_t *peer = arg;
  seed_peers_t *p = peer->owner;
  char line[64], reply[48];
  linebuf_t lb = {.len = 0};
  int rc = read_line(cx, peer->stream, &lb, line, sizeof line);
  if (rc == 0 && strncmp(line, "HELLO ", 6) != 0) {
    p->bad++;
    rc = arbor_fiber_fail(cx, -EPROTO, "peer %" PRIu64 " sent a bad greeting: \"%s\"", peer->id,
                          line);
  } else if (rc == 0) {
    snprintf(reply, sizeof reply, "WELCOME %" PRIu64 "\n", peer->id);
    rc = write_str(cx, peer->stream, reply);
    while (rc == 0 && (rc = read_line(cx, peer->stream, &lb, line, sizeof line)) == 0)
      if (strcmp(line, "PING") == 0) {
        peer->pings++;
        p->pings++;
        rc = write_str(cx, peer->stream, "PONG\n");
      }
  }
  return rc == ARBOR_ECANCELED || rc == -EPROTO ? rc : 0;
}

/* The peer task's finish callback: closes the stream and frees the slot. Here
 * rather than in the body, because a task cancelled before it first ran (its
 * incarnation stopped right after the accept) never runs its body. Finish
 * callbacks run in the order nodes finished, so this runs before the manager's
 * owner could free the table. */
static void peer_finished(arbor_node_t *node, void *arg) {
  seed_peer_t *peer = arg;
  seed_peers_t *p = peer->owner;
  (void)node;
  arbor_stream_close(peer->stream);
  slot_free(peer);
  show_table(p);
}

/* ------------------------------------------------------ the accept loop */

/* What one incarnation of the manager has: on its body's stack, which stays until
 * the accept task has finished (the body waits for it). */
typedef struct {
  seed_peers_t *p;
  arbor_listener_t *listener;
} run_t;

/* Daemon: accepts connections and gives each a peer task and a slot; a full
 * table refuses the connection (closes it). Returns only when stopped
 * (ARBOR_ECANCELED) or on an accept error (rule 7 then fails the service). */
static int accept_loop(arbor_ctx_t *cx, void *arg) {
  run_t *run = arg;
  seed_peers_t *p = run->p;
  arbor_stream_t *s;
  char name[32];
  int rc;
  while ((rc = arbor_tcp_accept(cx, run->listener, &s)) == 0) {
    seed_peer_t *peer = slot_take(p);
    if (peer == NULL) {
      p->refused++;
      arbor_stream_close(s);
      continue;
    }
    p->accepted++;
    peer->stream = s;
    snprintf(name, sizeof name, "peer-%" PRIu64, peer->id);
    rc = arbor_service_run_task(cx, &(arbor_fiber_spec_t){.name = name, .fn = peer_task,
                                                          .arg = peer, .finish = peer_finished},
                                &peer->task);
    if (rc < 0) {
      arbor_stream_close(s);
      slot_free(peer);
      break;
    }
    show_table(p);
  }
  return rc;
}

/* ------------------------------------------------ a peer, client side */

/* A discovered peer: connects, greets (badly, for a bad one), then pings every
 * ping_ms until the manager drops it. Its own end is never a failure: the
 * manager's side is what the demo watches. */
static int dial(arbor_ctx_t *cx, seed_peers_t *p, int bad) {
  arbor_stream_t *s;
  linebuf_t lb = {.len = 0};
  char line[64];
  int rc = arbor_tcp_connect(cx, "127.0.0.1", p->port, &s);
  if (rc < 0)
    return rc == ARBOR_ECANCELED ? rc : 0;
  rc = write_str(cx, s, bad ? "EHLO?\n" : "HELLO 1\n");
  if (rc == 0)
    rc = read_line(cx, s, &lb, line, sizeof line);
  while (rc == 0 && (rc = arbor_sleep(cx, p->ping_ms)) == 0 && (rc = write_str(cx, s, "PING\n")) == 0)
    rc = read_line(cx, s, &lb, line, sizeof line);
  arbor_stream_close(s);
  return rc == ARBOR_ECANCELED ? rc : 0;
}

static int dial_good(arbor_ctx_t *cx, void *arg) { return dial(cx, arg, 0); }
static int dial_bad(arbor_ctx_t *cx, void *arg) { return dial(cx, arg, 1); }

/* Daemon: every discover_ms "finds" a peer and dials it, first dropping the
 * oldest peer when the table is full. */
static int discovery(arbor_ctx_t *cx, void *arg) {
  seed_peers_t *p = arg;
  char name[32];
  int rc;
  while ((rc = arbor_sleep(cx, p->discover_ms)) == 0) {
    seed_peer_t *old;
    if (p->peers >= p->max_peers && (old = oldest(p)) != NULL) {
      p->dropped++;
      arbor_node_cancel(old->task);   /* its task closes the stream, the dialler sees EOF */
    }
    uint64_t n = ++p->discovered;
    int bad = p->bad_peer_every > 0 && n % (uint64_t)p->bad_peer_every == 0;
    snprintf(name, sizeof name, "dial-%" PRIu64, n);
    rc = arbor_service_run_task(cx, &(arbor_fiber_spec_t){.name = name,
                                                          .fn = bad ? dial_bad : dial_good,
                                                          .arg = p},
                                NULL);
    if (rc < 0)
      break;
  }
  return rc;
}

/* ------------------------------------------------------------- the body */

/* Listens, starts the two daemons, reports ready, and waits to be stopped.
 * Then it waits, shielded, for the accept task to end before closing the
 * listener: the task may still be parked in accept on it. */
static int peer_manager(arbor_ctx_t *cx, void *arg) {
  run_t run = {.p = arg, .listener = NULL};
  seed_peers_t *p = run.p;
  arbor_runtime_t *rt = arbor_node_runtime(arbor_ctx_node(cx));
  arbor_node_t *acceptor = NULL;
  arbor_scope_t shield;
  int rc;
  p->svc = seed_service_of(cx);
  if ((rc = arbor_tcp_listen(rt, "127.0.0.1", 0, 0, &run.listener)) < 0)
    return rc;
  p->port = arbor_listener_port(run.listener);
  seed_attr_u64(p->svc, "port", (uint64_t)p->port);
  rc = arbor_service_run_daemon_task(cx, &(arbor_fiber_spec_t){.name = "accept",
                                                               .fn = accept_loop, .arg = &run},
                                     &acceptor);
  if (rc == 0) {
    arbor_node_ref(acceptor);
    rc = arbor_service_run_daemon_task(cx, &(arbor_fiber_spec_t){.name = "discovery",
                                                                 .fn = discovery, .arg = p},
                                       NULL);
  }
  if (rc == 0) {
    show_table(p);
    arbor_fiber_started(cx, NULL); /* listening: the client after us may start */
    while ((rc = arbor_sleep(cx, UINT32_MAX)) == 0)
      ;
  }
  p->port = 0;
  if (acceptor != NULL) {
    arbor_node_cancel(acceptor);   /* ends it also when the body ends by itself */
    arbor_scope_enter(cx, &shield, &(arbor_scope_opts_t){.shield = 1});
    arbor_wait(cx, acceptor);
    arbor_scope_exit(cx, &shield);
    arbor_node_unref(acceptor);
  }
  arbor_listener_close(run.listener);
  return rc;
}

/* Adds "peer-manager" under sup; it is STARTED once it listens (a handshake),
 * so a sibling started after it finds the port set. Errors: ARBOR_EINVAL (NULL
 * p), then as arbor_service_add. */
int seed_peers_add(arbor_node_t *sup, seed_peers_t *p, arbor_node_t **out) {
  if (p == NULL)
    return ARBOR_EINVAL;
  if (p->discover_ms == 0)
    p->discover_ms = 1500;
  if (p->ping_ms == 0)
    p->ping_ms = 500;
  if (p->max_peers <= 0 || p->max_peers > SEED_PEERS_MAX)
    p->max_peers = 4;
  return arbor_service_add(sup, &(arbor_service_spec_t){.name = "peer-manager",
                                                        .fiber = peer_manager, .arg = p,
                                                        .handshake = 1,
                                                        .shutdown_timeout_ms = 1000},
                           out);
}

/* ------------------------------------------------------------ the client */

/* Connects to the manager, says hello and pings it until stopped. Losing the
 * manager (it was restarted, or dropped us) fails the run with -ECONNRESET so
 * the supervisor reconnects after its backoff. */
static int peer_client(arbor_ctx_t *cx, void *arg) {
  seed_peer_client_t *c = arg;
  arbor_node_t *svc = seed_service_of(cx);
  arbor_stream_t *s;
  linebuf_t lb = {.len = 0};
  char line[64];
  int rc, port = c->manager->port;
  if (port == 0)
    return arbor_fiber_fail(cx, -ECONNREFUSED, "peer manager is not listening");
  if ((rc = arbor_tcp_connect(cx, "127.0.0.1", port, &s)) < 0)
    return rc == ARBOR_ECANCELED
               ? rc
               : arbor_fiber_fail(cx, rc, "connect to peer manager on port %d: %s", port,
                                  arbor_strerror(rc));
  rc = write_str(cx, s, "HELLO client\n");
  if (rc == 0 && (rc = read_line(cx, s, &lb, line, sizeof line)) == 0)
    (void)arbor_node_attr_set(svc, "greeting", line);
  while (rc == 0 && (rc = arbor_sleep(cx, c->ping_ms)) == 0 &&
         (rc = write_str(cx, s, "PING\n")) == 0 && (rc = read_line(cx, s, &lb, line, sizeof line)) == 0)
    seed_attr_u64(svc, "pongs", ++c->pongs);
  arbor_stream_close(s);
  if (rc == ARBOR_ECANCELED)
    return rc;
  return arbor_fiber_fail(cx, -ECONNRESET, "lost the peer manager on port %d: %s", port,
                          rc == ARBOR_EOF ? "it closed the connection" : arbor_strerror(rc));
}

/* Adds "peer-client" under sup, after the manager. Errors: ARBOR_EINVAL (NULL c
 * or manager), then as arbor_service_add. */
int seed_peer_client_add(arbor_node_t *sup, seed_peer_client_t *c, arbor_node_t **out) {
  if (c == NULL || c->manager == NULL)
    return ARBOR_EINVAL;
  if (c->ping_ms == 0)
    c->ping_ms = 500;
  return arbor_service_add(sup, &(arbor_service_spec_t){.name = "peer-client",
                                                        .fiber = peer_client, .arg = c,
                                                        .shutdown_timeout_ms = 1000},
                           out);
}
