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
 * buffer (SSE_BATCH bytes, plus one event, whose size the error budget bounds),
 * and nothing more is read from the ring until the server took it all. A slow
 * client therefore holds the ring's place, not a copy of it; when it falls a
 * whole ring behind it gets a gap event, never unbounded memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resources.h"

#define SSE_BATCH 16384          /* stop formatting once this much is waiting */
#define SSE_ERRORS 16            /* one event's error chain: errors rendered */
#define SSE_MESSAGE 1024         /* and bytes per message */
#define SSE_HEARTBEAT_DEFAULT 15000

struct sse {
  arbor_runtime_t *rt;
  uint64_t cursor;               /* the next seq to read */
  char *buf;                     /* formatted, not yet handed out: buf[pos..len) */
  size_t pos, len, cap;
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

/* The event as the JSON of its data line. NULL when out of memory.
 *
 * Events carry no names (the ring's records are fixed-size: DESIGN.md, "Events
 * and traces"), yet a client that sees a node for the first time in an event
 * (the dashboard's live tree) needs one. So the name is looked up now, by id:
 * a node evicted since the event was recorded has none, and "name" is null. A
 * replayed event shows the node's current name, the only one it ever had. */
static char *event_json(arbor_runtime_t *rt, const arbor_event_t *ev) {
  struct http_jcx cx;
  http_jcx_init(&cx, SSE_ERRORS, SSE_MESSAGE);
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  http_jadd_u64(&cx, o, "seq", ev->seq);
  http_jadd_time(&cx, o, rt, "time", ev->time_ns);
  http_jadd_u64(&cx, o, "node_id", ev->node_id);
  http_jadd_u64(&cx, o, "parent_id", ev->parent_id);
  arbor_node_t *node = arbor_node_find(rt, ev->node_id);
  http_jadd_str(&cx, o, "name", node != NULL ? arbor_node_name(node) : NULL);
  http_jadd_str(&cx, o, "type", arbor_event_type_name(ev->type));
  http_jadd_str(&cx, o, "kind", arbor_kind_name(ev->kind));
  http_jadd_str(&cx, o, "from", arbor_state_name(ev->from));
  http_jadd_str(&cx, o, "to", arbor_state_name(ev->to));
  http_jadd(&cx, o, "error", http_jerror(&cx, ev->error));
  char *text = cx.oom ? NULL : cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

/* Formats the gap notice. */
static int append_gap(struct sse *s, uint64_t missed, uint64_t next_seq) {
  char line[128];
  int n = snprintf(line, sizeof line,
                   "event: gap\ndata: {\"missed\":%" PRIu64 ",\"next_seq\":%" PRIu64 "}\n\n",
                   missed, next_seq);
  return append(s, line, (size_t)n);
}

/* One event: id, type and JSON data (one line: cJSON's unformatted output
 * escapes every newline inside strings). */
static int append_event(struct sse *s, const arbor_event_t *ev) {
  char *json = event_json(s->rt, ev);
  if (json == NULL)
    return -1;
  char head[96];
  int hn = snprintf(head, sizeof head, "id: %" PRIu64 "\nevent: %s\ndata: ", ev->seq,
                    arbor_event_type_name(ev->type));
  size_t jn = strlen(json);
  int rc = reserve(s, (size_t)hn + jn + 2);
  if (rc == 0) {
    append(s, head, (size_t)hn);
    append(s, json, jn);
    append(s, "\n\n", 2);
  }
  free(json);
  return rc;
}

/* Reads and formats events until a batch is waiting or the ring has no more.
 * -1 when out of memory: the stream ends, the client reconnects where it was. */
static int refill(struct sse *s) {
  s->pos = s->len = 0;
  while (s->len < SSE_BATCH) {
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
  if (s->pos == s->len && refill(s) != 0)
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
  const arbor_admin_opts_t *opts = http_admin_opts(r->admin);
  unsigned beat = opts != NULL && opts->sse_heartbeat_ms > 0 ? opts->sse_heartbeat_ms
                                                             : SSE_HEARTBEAT_DEFAULT;
  return http_stream(r, "text/event-stream", &sse_ops, s, beat);
}
