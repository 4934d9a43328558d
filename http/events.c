/* http/events.c - GET /api/v1/events: the event ring as Server-Sent Events.
 *
 *   id: 42
 *   event: state
 *   data: {"seq":42,"time_ns":...,"type":"state","from":"STARTING","to":"STARTED",...}
 *
 * Each client has its own cursor into the ring (arbor_events_read); the event's
 * seq is its SSE id, so a client that reconnects with Last-Event-ID (or
 * ?after=SEQ) gets exactly the events after that one. When the ring overwrote
 * some of those before the client came back, it first gets
 *   event: gap
 *   data: {"missed":N,"next_seq":S}
 * A new client without either starts with the next event recorded (after=0
 * replays everything the ring still holds). The stream itself is the server's
 * (http_stream in server.c): it asks fill() for bytes, suspends the connection
 * while fill() has none, and wakes it when an event is recorded or the heartbeat
 * is due; an idle stream gets a ": heartbeat" comment line then.
 *
 * Memory per client is bounded: events are formatted a batch at a time into one
 * buffer (about what the server asked fill() for, at most SSE_BATCH bytes, plus
 * one event, whose size the error budget bounds), and nothing more is read from
 * the ring until the server took it all. A slow
 * client therefore holds the ring's place, not a copy of it; when it falls a
 * whole ring behind it gets a gap event, never unbounded memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jw.h"
#include "resources.h"

#define SSE_BATCH 16384          /* the most formatted at once (refill's want is less) */
#define SSE_ERRORS 16            /* one event's error chain: errors rendered */
#define SSE_MESSAGE 1024         /* and bytes per message */
#define SSE_HEARTBEAT_DEFAULT 15000

struct sse {
  arbor_runtime_t *rt;
  uint64_t cursor;               /* the next seq to read */
  char *buf;                     /* formatted, not yet handed out: buf[pos..len) */
  size_t pos, len, cap;
  struct jw json;                /* one event's data, its buffer reused */
};

/* Makes room for n more bytes. -1 when out of memory. */
static int reserve(struct sse *s, size_t n) {
  if (s->len + n <= s->cap)
    return 0;
  size_t cap = s->cap ? s->cap : 4096;
  while (cap < s->len + n)
    cap *= 2;
  char *b = realloc(s->buf, cap);
  if (b == NULL)
    return -1;
  s->buf = b;
  s->cap = cap;
  return 0;
}

static int append(struct sse *s, const char *text, size_t n) {
  if (reserve(s, n) != 0)
    return -1;
  memcpy(s->buf + s->len, text, n);
  s->len += n;
  return 0;
}

/* The event as the JSON of its data line, written into w (from empty).
 *
 * Events carry no names (the ring's records are fixed-size: DESIGN.md, "Events
 * and traces"), yet a client that sees a node for the first time in an event
 * (the dashboard's live tree) needs one. So the name is looked up now, by id:
 * a node evicted since the event was recorded has none, and "name" is null. A
 * replayed event shows the node's current name, the only one it ever had.
 *
 * jw, not a cJSON document: this runs for every event and every client, on the
 * loop thread. A cJSON event cost ~5 us (a malloc per member, and every number
 * printed with "%1.15g" and read back with sscanf), so 100 clients resumed at
 * once spent ~40 ms formatting in one iteration (docs/RELIABILITY.md, "Load").
 * jw writes the same bytes (json.c's shapes: tests/http/test_jw.c) in a
 * fraction of that, into a buffer the stream keeps. */
static void event_write(struct jw *w, arbor_runtime_t *rt, const arbor_event_t *ev) {
  struct http_jcx cx;
  http_jcx_init(&cx, SSE_ERRORS, SSE_MESSAGE);
  jw_clear(w);
  w->first[0] = 1;               /* a document of its own: no comma before it */
  w->err = 0;                    /* an event that failed before is not this one */
  jw_obj_begin(w);
  jw_key(w, "seq");
  jw_u64(w, ev->seq);
  if (ev->time_ns != 0) {        /* json.c's http_jadd_time */
    jw_key(w, "time_ns");
    jw_u64(w, ev->time_ns);
    jw_key(w, "time");
    jw_time(w, arbor__wall_ns(rt, ev->time_ns));
  }
  jw_key(w, "node_id");
  jw_u64(w, ev->node_id);
  jw_key(w, "parent_id");
  jw_u64(w, ev->parent_id);
  arbor_node_t *node = arbor_node_find(rt, ev->node_id);
  jw_key(w, "name");
  jw_str(w, node != NULL ? arbor_node_name(node) : NULL);
  jw_key(w, "type");
  jw_str(w, arbor_event_type_name(ev->type));
  jw_key(w, "kind");
  jw_str(w, arbor_kind_name(ev->kind));
  jw_key(w, "from");
  jw_str(w, arbor_state_name(ev->from));
  jw_key(w, "to");
  jw_str(w, arbor_state_name(ev->to));
  jw_key(w, "error");
  jw_error(w, &cx, ev->error);
  jw_obj_end(w);
}

/* Formats the gap notice. */
static int append_gap(struct sse *s, uint64_t missed, uint64_t next_seq) {
  char line[128];
  int n = snprintf(line, sizeof line,
                   "event: gap\ndata: {\"missed\":%" PRIu64 ",\"next_seq\":%" PRIu64 "}\n\n",
                   missed, next_seq);
  return append(s, line, (size_t)n);
}

/* One event: id, type and JSON data (one line: jw, like cJSON, escapes every
 * newline inside strings). */
static int append_event(struct sse *s, const arbor_event_t *ev) {
  event_write(&s->json, s->rt, ev);
  size_t jn;
  const char *json = jw_text(&s->json, &jn);
  if (json == NULL)
    return -1;                   /* out of memory (jw's only error without a cap) */
  const char *type = arbor_event_type_name(ev->type);
  char id[24];
  size_t idn = jw_fmt_u64(ev->seq, id), tn = strlen(type);
  if (reserve(s, 4 + idn + 8 + tn + 7 + jn + 2) != 0)
    return -1;
  append(s, "id: ", 4);
  append(s, id, idn);
  append(s, "\nevent: ", 8);
  append(s, type, tn);
  append(s, "\ndata: ", 7);
  append(s, json, jn);
  append(s, "\n\n", 2);
  return 0;
}

/* Reads and formats events until about want bytes are waiting (at least one
 * event, at most SSE_BATCH) or the ring has no more. -1 when out of memory:
 * the stream ends, the client reconnects where it was.
 *
 * want is what the server asked fill() for: formatting only that much keeps a
 * client's turn short and its work in step with what its socket takes. A
 * client that is behind is served many small turns rather than a few long
 * ones, and the server (stream.c) can spread them over loop iterations. */
static int refill(struct sse *s, size_t want) {
  s->pos = s->len = 0;
  if (want > SSE_BATCH)
    want = SSE_BATCH;
  while (s->len < want) {
    arbor_event_t ev;
    uint64_t missed = 0, before = s->cursor;
    int n = arbor_events_read(s->rt, &s->cursor, &ev, 1, &missed);
    if (n <= 0)
      break;
    if ((missed > 0 && append_gap(s, missed, ev.seq) != 0) || append_event(s, &ev) != 0) {
      s->cursor = before;        /* not sent: the client's Last-Event-ID is still right */
      return s->len > 0 ? 0 : -1;
    }
  }
  return 0;
}

static ssize_t sse_fill(void *state, char *out, size_t max, int heartbeat) {
  struct sse *s = state;
  if (s->pos == s->len && refill(s, max) != 0)
    return -1;
  if (s->pos < s->len) {
    size_t n = s->len - s->pos < max ? s->len - s->pos : max;
    memcpy(out, s->buf + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
  }
  if (heartbeat) {
    static const char beat[] = ": heartbeat\n\n";
    size_t n = sizeof beat - 1 < max ? sizeof beat - 1 : max;
    memcpy(out, beat, n);
    return (ssize_t)n;
  }
  return 0;
}

static void sse_done(void *state) {
  struct sse *s = state;
  free(s->buf);
  jw_free(&s->json);
  free(s);
}

static const struct http_stream_ops sse_ops = {sse_fill, sse_done};

enum MHD_Result http_events_get(struct http_req *r) {
  arbor_events_stats_t st;
  arbor_events_stats(r->rt, &st);
  /* Where to start: after the browser's Last-Event-ID (a reconnect), else
   * after ?after=, else with the next event recorded. */
  uint64_t after = st.recorded;
  const char *last = http_header(r, "Last-Event-ID");
  const char *q = http_query(r, "after");
  if (last != NULL) {
    if (http_parse_u64(last, 0, UINT64_MAX - 1, &after) != 0)
      return http_error(r, 400, "bad_request",
                        "header Last-Event-ID must be an event seq (a decimal integer)");
  } else if (q != NULL) {
    if (http_parse_u64(q, 0, UINT64_MAX - 1, &after) != 0)
      return http_error(r, 400, "bad_request",
                        "query parameter after must be an event seq (a decimal integer)");
  }
  /* A seq from the future (a client of an earlier daemon run, whose seqs were
   * higher) would wait for events that are not its own: start now instead. */
  if (after > st.recorded)
    after = st.recorded;

  struct sse *s = calloc(1, sizeof *s);
  if (s == NULL)
    return http_oom(r);
  s->rt = r->rt;
  s->cursor = after + 1;
  jw_init(&s->json, 0);          /* bounded by the error budget (SSE_ERRORS, SSE_MESSAGE) */
  const arbor_admin_opts_t *opts = http_admin_opts(r->admin);
  unsigned beat = opts != NULL && opts->sse_heartbeat_ms > 0 ? opts->sse_heartbeat_ms
                                                             : SSE_HEARTBEAT_DEFAULT;
  return http_stream(r, "text/event-stream", &sse_ops, s, beat);
}
