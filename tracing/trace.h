/* tracing/trace.h - the exporters' internal interface. Not installed.
 *
 * The exporters read the core only through its observation API (arbor.h):
 *
 *   snapshot.c  copies the tree (live and retained nodes, pre-order) and the
 *               ring's CANCEL / RESTART / DEADLINE / STUCK events into flat
 *               arrays at one point in time. A copy, because a trace of a big
 *               tree is written out over many loop iterations (GET
 *               /api/v1/trace streams it), while the tree goes on changing and
 *               evicting nodes; copying is a few stores per node, formatting
 *               the text is what costs.
 *   chrome.c    Chrome Trace Event JSON from a snapshot.
 *   otlp.c      OTLP/JSON: the request envelope and one span per node; used by
 *               the snapshot export and by the push exporter (otlp_push.c),
 *               which writes each node as it finishes.
 *   export.c    a snapshot written piece by piece in either format (struct
 *               trace_export): for arbor_trace_write and GET /api/v1/trace.
 *
 * Times: nodes carry monotonic ns (uv_hrtime); res->wall_offset_ns turns them
 * into Unix ns (OTLP) and res->mono0_ns is the zero of Chrome's microseconds.
 */
#ifndef ARBOR_TRACING_TRACE_H
#define ARBOR_TRACING_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arbor.h"
#include "jsonw.h"

/* Who produced the trace: OTLP's resource, Chrome's process. */
struct trace_resource {
  char trace_id[33];             /* 32 lowercase hex digits: one trace per runtime */
  char instance_id[37];          /* service.instance.id, a UUID (v4 text) */
  char service_name[ARBOR_ATTR_VALUE_MAX + 20];   /* service.name */
  char host_name[65];
  char executable[64];           /* process.executable.name */
  int pid;
  uint64_t mono0_ns;             /* the runtime's start: Chrome ts 0 */
  int64_t wall_offset_ns;        /* Unix ns = monotonic ns + this */
};

/* Fills res for rt (the trace id and instance id are the runtime's own, the same
 * for every call on one runtime). service_name NULL: the root node's attribute
 * "service.name", else "unknown_service:<executable>" (OpenTelemetry's default). */
void trace_resource_init(struct trace_resource *res, arbor_runtime_t *rt,
                         const char *service_name);

struct trace_attr {
  const char *key, *value;
};

/* A ring event a span or slice shows besides the state changes. */
struct trace_event {
  uint64_t time_ns;
  uint64_t node_id;
  arbor_event_type_t type;       /* CANCEL, RESTART, DEADLINE or STUCK */
  arbor_error_t *error;          /* a reference (snapshot) or borrowed; may be NULL */
};

/* One node as the exporters see it. In a snapshot every pointer is owned by the
 * snapshot; trace_node_fill() borrows them from a live node instead (valid
 * until the tree changes). */
struct trace_node {
  uint64_t id, parent_id;        /* parent_id 0: the root */
  uint64_t t[ARBOR_STATE_COUNT]; /* arbor_node_state_times */
  uint64_t stop_requested_ns;
  const char *name;
  const arbor_error_t *error;    /* the chain of a FAILED node, or NULL */
  const struct trace_attr *attrs;
  uint32_t nattrs;
  uint32_t attr_first;           /* snapshot: index of attrs in snapshot.attrs */
  uint32_t restarts;
  const struct trace_event *events;   /* its ring events, oldest first */
  uint32_t nevents;
  uint32_t parent;               /* snapshot: index of the parent; UINT32_MAX: none */
  uint32_t track;                /* chrome.c: the tid it is drawn on */
  uint64_t ts0, ts1;             /* chrome.c: the slice drawn (inside its parent's) */
  uint8_t kind, state, outcome;
  uint8_t cancelled, stuck;
};

/* A node's fields, borrowed: attrs must have room for ARBOR_ATTRS_MAX. */
void trace_node_fill(struct trace_node *tn, arbor_node_t *node, struct trace_attr *attrs);

/* chrome.c: a track (a thread in Perfetto) and who it belongs to. */
struct trace_track {
  const char *name;              /* the first node on it, or its parent's name ... */
  uint32_t owner;                /* node index: the parent whose lane it is */
  uint32_t lane;                 /* 1, 2, ...: the owner's extra lanes; 0: a root */
  uint8_t mixed;                 /* siblings of other names reused it */
};

struct trace_snapshot {
  struct trace_resource res;
  uint64_t now_ns;               /* when taken: the end of unfinished slices/spans */
  struct trace_node *nodes;      /* pre-order: a parent before its children */
  size_t nnodes;
  struct trace_attr *attrs;
  size_t nattrs;
  struct trace_event *events;    /* grouped by node, in nodes[] order */
  size_t nevents;
  struct trace_track *tracks;    /* chrome_assign_tracks; tid = index + 1 */
  size_t ntracks;
  char **blocks;                 /* the arena of names and attribute strings */
  size_t nblocks;
  size_t block_used;
};

/* Copies the subtree of root (the runtime's root: everything). Returns 0 or
 * ARBOR_ENOMEM (nothing to free then). */
int trace_snapshot_take(struct trace_snapshot *s, arbor_node_t *root, const char *service_name);
void trace_snapshot_free(struct trace_snapshot *s);

/* ------------------------------------------------------------ OTLP/JSON */

/* {"resourceSpans":[{"resource":{...},"scopeSpans":[{"scope":{...},"spans":[ */
void otlp_begin(struct jw *w, const struct trace_resource *res);
/* One span. end_ns: the end of a node not FINISHED (the snapshot's time). */
void otlp_span(struct jw *w, const struct trace_resource *res, const struct trace_node *n,
               uint64_t end_ns);
/* ]}]}]} */
void otlp_end(struct jw *w);

/* --------------------------------------------------------- Chrome JSON */

/* Assigns every node a track (tid) so that slices on one track nest and never
 * overlap: a child shares its parent's track unless it overlaps an earlier
 * sibling there, then takes the parent's extra lane that freed first if it is
 * free by its start, or a new one (O(n log n)). Returns the number of tracks,
 * or ARBOR_ENOMEM. */
int chrome_assign_tracks(struct trace_snapshot *s);
/* {"displayTimeUnit":"ms","otherData":{...},"traceEvents":[ + the process name */
void chrome_begin(struct jw *w, const struct trace_snapshot *s);
/* Track i's metadata: its thread name and sort index. */
void chrome_track(struct jw *w, const struct trace_snapshot *s, size_t i);
/* Node i's slice and its instant events. */
void chrome_node(struct jw *w, const struct trace_snapshot *s, size_t i);
/* ]} */
void chrome_end(struct jw *w);

/* ------------------------------------------------------------- export */

/* A snapshot being written out in pieces. */
struct trace_export {
  struct trace_snapshot snap;
  arbor_trace_format_t format;
  struct jw w;
  size_t next;                   /* the next track (Chrome), then node, to write */
  int phase;                     /* 0: begin, 1: nodes, 2: end, 3: done */
  size_t off;                    /* bytes of w's text already handed out */
};

/* Takes the snapshot. Errors: ARBOR_EINVAL (format), ARBOR_ENOMEM. */
int trace_export_init(struct trace_export *x, arbor_node_t *root, arbor_trace_format_t format,
                      const char *service_name);
/* Copies the next bytes of the document into buf (at most max). Returns how many
 * (0: the document is complete), or ARBOR_ENOMEM. */
ssize_t trace_export_read(struct trace_export *x, char *buf, size_t max);
void trace_export_free(struct trace_export *x);

#endif /* ARBOR_TRACING_TRACE_H */
