/* http/stream.c - responses that go on: Server-Sent Events, followed logs.
 *
 * A stream is an MHD response of unknown size (chunked) whose content reader
 * asks the resource's fill() for bytes. When fill() has nothing, the connection
 * is suspended (MHD_suspend_connection, from inside the reader, the one place
 * MHD allows it) and the reader returns 0: no busy loop, and no MHD timeout
 * while suspended. It is resumed
 *   - by http_streams_wake, which only starts an idle handle (it may be called
 *     from inside arbor's event recording, or from a handler inside MHD_run);
 *     on the next loop iteration it resumes every suspended stream and runs
 *     MHD, so each fill() is asked again;
 *   - by the heartbeat: one timer, armed for the earliest due heartbeat of the
 *     suspended streams; a due stream's fill() is asked with heartbeat = 1.
 *     This is also how a client that went away while its stream was suspended
 *     is noticed (MHD does not watch suspended sockets): the write fails.
 * Suspended clients that leave. MHD does not watch a suspended socket, so a
 * client that closes an idle stream would hold its connection slot (counted
 * against max_connections) until the next heartbeat, 15 s by default: a
 * dashboard reloaded a few dozen times would lock the API out. So while any
 * stream is suspended, the beat timer also fires every STREAM_PROBE_MS and
 * peeks (recv MSG_PEEK | MSG_DONTWAIT, one byte, nothing consumed) at each
 * suspended socket: end of file or an error means the peer is gone, and the
 * stream is resumed to end (closing). One cheap syscall per suspended stream
 * per second, against a shorter heartbeat which would cost every client bytes
 * and still leave seconds; a client that only half-closes (shutdown(SHUT_WR))
 * is taken as gone, which no SSE client does.
 * New events wake the streams through the server's events subscription, armed
 * (one-shot) while a stream is open and again at each wake, before the
 * streams are resumed, so an event recorded between the two is not missed (the
 * fills that follow read it).
 *
 * Work per loop iteration is bounded twice: a slow client's socket holds
 * little (STREAM_SNDBUF), so it is not fed what it cannot take, and the streams
 * that can take more share one budget per iteration, in equal turns
 * (STREAM_ROUND_BYTES).
 *
 * Lifetime: the stream is freed by MHD's free callback of the response (when
 * the request ends, the client goes away or the server stops), which calls the
 * resource's done() exactly once. A stop resumes every suspended stream first
 * (MHD must not be stopped with suspended connections) and marks it closing, so
 * its reader ends the response without asking fill() again.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "server.h"

#define STREAM_BLOCK 4096        /* MHD's advisory buffer size for the reader */
/* Turns. The bytes the open streams together may hand MHD per loop iteration:
 * a stream's turn is its share, STREAM_ROUND_BYTES / the streams open, at least
 * STREAM_TURN_MIN, renewed when the loop time has moved (a later iteration) and
 * when the stream is resumed (by the wake or the heartbeat timer, each at most
 * once an iteration), so an iteration sees a few turns of each stream at most. Past its turn a
 * stream yields (it is suspended and the wake handle resumes it on the next
 * iteration, with a new turn), and fill() is never asked for more than what is
 * left of the turn (but at least STREAM_TURN_MIN). So neither one client's
 * backlog nor many clients at once can make an iteration long: 100 SSE clients
 * behind the ring, slow readers in step, used to need a batch each in the same
 * iteration (docs/RELIABILITY.md, "Load"); now each formats ~1 KiB of it per
 * iteration, in turn. Every yielded stream is resumed by the next wake and
 * every turn is the same size, so none waits behind another (no starvation),
 * whatever order MHD serves them in. A lone stream (a trace download) keeps the
 * whole round. */
#define STREAM_ROUND_BYTES (64 * 1024)
#define STREAM_TURN_MIN 1024     /* a few SSE events: the floor of a turn */
/* The send buffer of a stream that goes on (one with a heartbeat: SSE). Linux
 * autotunes a TCP send buffer up to tcp_wmem's maximum (4 MiB by default) as
 * long as the peer acknowledges, however slowly it reads: 100 SSE clients
 * reading a byte at a time had 208 MiB queued in the kernel (2 MiB each), every
 * byte of it formatted and copied by the loop, most of it stale long before it
 * was read. Capped (Linux doubles the value: 64 KiB), a slow client's socket
 * stays full, MHD does not ask its reader for more, and its backlog waits in
 * the event ring (bounded; a gap event when overwritten) at no cost. A download
 * (a trace: no heartbeat) keeps autotuning, for its throughput. */
#define STREAM_SNDBUF (32 * 1024)
/* How often the sockets of suspended streams are checked for a peer that went
 * away (see "Suspended clients that leave" above). */
#define STREAM_PROBE_MS 1000

struct http_stream_s {
  struct arbor_admin_s *admin;
  struct MHD_Connection *conn;
  const struct http_stream_ops *ops;
  void *state;
  uint64_t beat_ms;              /* 0: no heartbeat */
  uint64_t last_ms;              /* loop time of the last bytes or heartbeat */
  int suspended;                 /* by us, not resumed since */
  int beat_due;                  /* the next fill() is a heartbeat */
  int closing;                   /* the server stops, or the peer left: end the response */
  size_t turn_bytes;             /* handed out in this turn (see STREAM_ROUND_BYTES) */
  uint64_t turn_ms;              /* the loop time the turn began */
  struct http_stream_s *next, *prev;
};

/* Registers for the next event, while a stream is open. */
static void notify_arm(struct arbor_admin_s *admin) {
  if (admin->streams == NULL || admin->stopped)
    return;
  arbor__events_arm(admin->rt, &admin->events);
}

/* The subscription's callback (server.c subscribes it). */
void http__streams_on_event(void *arg) { http_streams_wake(arg); }

/* Arms the heartbeat timer for the earliest due heartbeat of a suspended
 * stream, or the next probe of the suspended sockets if that comes first. */
static void beat_arm(struct arbor_admin_s *admin) {
  if (admin->stopped)
    return;
  uint64_t now = uv_now(admin->loop), due = UINT64_MAX;
  for (struct http_stream_s *s = admin->streams; s != NULL; s = s->next) {
    if (!s->suspended)
      continue;
    if (now + STREAM_PROBE_MS < due)
      due = now + STREAM_PROBE_MS;
    if (s->beat_ms > 0 && s->last_ms + s->beat_ms < due)
      due = s->last_ms + s->beat_ms;
  }
  if (due == UINT64_MAX)
    uv_timer_stop(&admin->beat);
  else
    uv_timer_start(&admin->beat, http__streams_beat, due > now ? due - now : 0, 0);
}

static void resume(struct http_stream_s *s) {
  if (!s->suspended)
    return;
  s->suspended = 0;
  s->turn_bytes = 0;
  MHD_resume_connection(s->conn);
}

void http__streams_resume_all(struct arbor_admin_s *admin, int closing) {
  for (struct http_stream_s *s = admin->streams; s != NULL; s = s->next) {
    if (closing)
      s->closing = 1;
    resume(s);
  }
}

/* An idle handle, not a zero timer: libuv before 1.48 (Debian 12 has 1.44)
 * runs a zero timer started from a timer callback again in the same iteration
 * (libuv/libuv#4245), so a stream that yields from the wake would never let
 * the loop poll: a 70 MB trace went out in 3 iterations (docs/PERFORMANCE.md).
 * An idle handle started now runs in the next iteration's idle phase, and
 * while it is active the poll in between does not block. */
void http_streams_wake(struct arbor_admin_s *admin) {
  if (admin == NULL || admin->stopped)
    return;
  uv_idle_start(&admin->wake, http__streams_wake_cb);
}

void http__streams_wake_cb(uv_idle_t *h) {
  struct arbor_admin_s *admin = h->data;
  uv_idle_stop(h);               /* one run per wake; a yield starts it again */
  notify_arm(admin);             /* before the fills: see the top of the file */
  http__streams_resume_all(admin, 0);
  http__run(admin);
}

/* Whether the client of a suspended stream went away: its socket reads end of
 * file or an error (a peek: nothing is consumed). */
static int peer_gone(struct http_stream_s *s) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci == NULL)
    return 0;
  char c;
  ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void http__streams_beat(uv_timer_t *t) {
  struct arbor_admin_s *admin = t->data;
  uint64_t now = uv_now(admin->loop);
  for (struct http_stream_s *s = admin->streams; s != NULL; s = s->next) {
    if (!s->suspended)
      continue;
    if (peer_gone(s)) {
      s->closing = 1;
      resume(s);
    } else if (s->beat_ms > 0 && s->last_ms + s->beat_ms <= now) {
      s->beat_due = 1;
      resume(s);
    }
  }
  http__run(admin);
  beat_arm(admin);
}

/* MHD's content reader: the next bytes, 0 after suspending, or the end. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  struct http_stream_s *s = cls;
  struct arbor_admin_s *admin = s->admin;
  if (s->closing || admin->stopped)
    return MHD_CONTENT_READER_END_OF_STREAM;
  uint64_t now = uv_now(admin->loop);
  if (s->turn_ms != now) {       /* a later iteration: a new turn */
    s->turn_ms = now;
    s->turn_bytes = 0;
  }
  size_t turn = STREAM_ROUND_BYTES / (admin->stream_count > 0 ? admin->stream_count : 1);
  if (turn < STREAM_TURN_MIN)
    turn = STREAM_TURN_MIN;
  if (s->turn_bytes >= turn) {
    /* Its share of this iteration is spent: the rest on the next one. */
    MHD_suspend_connection(s->conn);
    s->suspended = 1;
    http_streams_wake(admin);
    return 0;
  }
  /* fill() formats about what it is asked for. At least STREAM_TURN_MIN,
   * though: a turn may run over by that much, but a fill is never asked for a
   * few bytes (one SSE event, a heartbeat line fit). */
  size_t left = turn - s->turn_bytes;
  if (left < STREAM_TURN_MIN)
    left = STREAM_TURN_MIN;
  if (max > left)
    max = left;
  int beat = s->beat_due;
  s->beat_due = 0;
  ssize_t n = s->ops->fill(s->state, buf, max, beat);
  if (n < 0)                     /* -1 the end; below, cut: the client must see it */
    return n == -1 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
  if (n > 0) {
    if ((size_t)n > max)
      return MHD_CONTENT_READER_END_WITH_ERROR;   /* a bug in fill(): never overrun */
    s->last_ms = now;
    s->turn_bytes += (size_t)n;
    return n;
  }
  if (beat)
    s->last_ms = now;            /* asked and nothing to say: next beat a period on */
  MHD_suspend_connection(s->conn);
  s->suspended = 1;
  beat_arm(admin);
  return 0;
}

/* MHD's free callback of the response: the request is over. */
static void reader_free(void *cls) {
  struct http_stream_s *s = cls;
  struct arbor_admin_s *admin = s->admin;
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    admin->streams = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  admin->stream_count--;
  s->ops->done(s->state);
  free(s);
}

enum MHD_Result http_stream(struct http_req *r, const char *content_type,
                            const struct http_stream_ops *ops, void *state,
                            unsigned heartbeat_ms) {
  struct arbor_admin_s *admin = r->admin;
  struct http_stream_s *s = calloc(1, sizeof *s);
  if (s == NULL) {
    ops->done(state);
    return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
  }
  s->admin = admin;
  s->conn = r->conn;
  s->ops = ops;
  s->state = state;
  s->beat_ms = heartbeat_ms;
  s->last_ms = uv_now(admin->loop);
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, reader, s, reader_free);
  if (resp == NULL) {
    free(s);
    ops->done(state);
    return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
  }
  /* Linked before queueing: a failed queue destroys the response, whose free
   * callback unlinks it and calls done(). */
  s->next = admin->streams;
  if (s->next != NULL)
    s->next->prev = s;
  admin->streams = s;
  admin->stream_count++;
  /* Proxies (nginx) must pass each event on at once. */
  if (MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES) {
    MHD_destroy_response(resp);
    return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
  }
  if (heartbeat_ms > 0) {        /* see STREAM_SNDBUF */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int size = STREAM_SNDBUF;
    /* A failure leaves the kernel's autotuning: slower under load, not wrong. */
    if (ci != NULL)
      (void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  notify_arm(admin);
  return http__queue(r, MHD_HTTP_OK, resp, content_type);
}
