/* tracing/otlp.c - nodes as OTLP/JSON spans (an ExportTraceServiceRequest).
 *
 * The OTLP/JSON encoding is proto3's JSON mapping with OTLP's own exceptions
 * (opentelemetry-proto, "JSON Protobuf Encoding"): keys in lowerCamelCase, trace
 * and span ids as lowercase hex (not base64), 64-bit integers (times, intValue)
 * as decimal strings, enums as integers.
 *
 * The mapping:
 *   - one trace per runtime (res->trace_id); a node is a span whose id is its
 *     node id in hex, so an id in the admin API and a span id in Jaeger name
 *     the same thing; its parent span is its parent node's (none for the root);
 *   - start = CREATED, end = FINISHED (or the export's time for a node still
 *     running, with arbor.unfinished = true); kind INTERNAL;
 *   - status: OK -> STATUS_CODE_OK, FAILED -> STATUS_CODE_ERROR with the error's
 *     message; CANCELLED and unfinished stay UNSET (a cancellation is how
 *     structured concurrency ends work, not an error; the spec allows a
 *     description only with ERROR), arbor.outcome says which;
 *   - span events: each state entered after CREATED, the ring's cancel,
 *     restart, deadline and stuck events, and the failure as an "exception"
 *     event with the semantic-convention attributes exception.type (the code's
 *     name), exception.message, exception.stacktrace (the whole chain as text,
 *     "caused by" and all) plus arbor.error.causes, the chain one string per
 *     link, and code.* for where it was raised.
 */
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define ARBOR_VERSION_TEXT                                                             \
  STR(ARBOR_VERSION_MAJOR) "." STR(ARBOR_VERSION_MINOR) "." STR(ARBOR_VERSION_PATCH)

/* Bounds on what one failure adds to a span: a group's error can hold
 * thousands of children. */
#define CHAIN_TEXT_MAX (16 * 1024)
#define CAUSES_MAX 32

/* "123" for a monotonic time as Unix ns. */
static void unix_nano(struct jw *w, const struct trace_resource *res, uint64_t mono_ns) {
  int64_t t = (int64_t)mono_ns + res->wall_offset_ns;
  char buf[24];
  size_t n = jw_fmt_u64(t > 0 ? (uint64_t)t : 0, buf + 1);
  buf[0] = '"';
  buf[n + 1] = '"';
  jw_raw(w, buf, n + 2);
}

static void hex_id(struct jw *w, uint64_t id) {
  static const char digits[] = "0123456789abcdef";
  char buf[18];
  buf[0] = buf[17] = '"';
  for (int i = 16; i >= 1; i--, id >>= 4)
    buf[i] = digits[id & 15];
  jw_raw(w, buf, 18);
}

/* {"key":k,"value":{"stringValue":v}} and friends. */
static void attr_str(struct jw *w, const char *key, const char *value) {
  jw_obj_begin(w);
  jw_key(w, "key");
  jw_str(w, key);
  jw_key(w, "value");
  jw_obj_begin(w);
  jw_key(w, "stringValue");
  jw_str(w, value);
  jw_obj_end(w);
  jw_obj_end(w);
}

static void attr_int(struct jw *w, const char *key, int64_t value) {
  char buf[24];
  size_t n = jw_fmt_i64(value, buf + 1);
  buf[0] = '"';
  buf[n + 1] = '"';
  jw_obj_begin(w);
  jw_key(w, "key");
  jw_str(w, key);
  jw_key(w, "value");
  jw_obj_begin(w);
  jw_key(w, "intValue");
  jw_raw(w, buf, n + 2);
  jw_obj_end(w);
  jw_obj_end(w);
}

static void attr_bool(struct jw *w, const char *key, int value) {
  jw_obj_begin(w);
  jw_key(w, "key");
  jw_str(w, key);
  jw_key(w, "value");
  jw_obj_begin(w);
  jw_key(w, "boolValue");
  jw_bool(w, value);
  jw_obj_end(w);
  jw_obj_end(w);
}

void otlp_begin(struct jw *w, const struct trace_resource *res) {
  jw_obj_begin(w);
  jw_key(w, "resourceSpans");
  jw_arr_begin(w);
  jw_obj_begin(w);
  jw_key(w, "resource");
  jw_obj_begin(w);
  jw_key(w, "attributes");
  jw_arr_begin(w);
  attr_str(w, "service.name", res->service_name);
  attr_str(w, "service.instance.id", res->instance_id);
  attr_str(w, "service.version", ARBOR_VERSION_TEXT);
  attr_int(w, "process.pid", res->pid);
  attr_str(w, "process.executable.name", res->executable);
  attr_str(w, "host.name", res->host_name);
  attr_str(w, "telemetry.sdk.name", "arbor");
  attr_str(w, "telemetry.sdk.version", ARBOR_VERSION_TEXT);
  jw_arr_end(w);
  jw_obj_end(w);
  jw_key(w, "scopeSpans");
  jw_arr_begin(w);
  jw_obj_begin(w);
  jw_key(w, "scope");
  jw_obj_begin(w);
  jw_key(w, "name");
  jw_str(w, "arbor");
  jw_key(w, "version");
  jw_str(w, ARBOR_VERSION_TEXT);
  jw_obj_end(w);
  jw_key(w, "spans");
  jw_arr_begin(w);
}

void otlp_end(struct jw *w) {
  jw_arr_end(w);                 /* spans */
  jw_obj_end(w);
  jw_arr_end(w);                 /* scopeSpans */
  jw_obj_end(w);
  jw_arr_end(w);                 /* resourceSpans */
  jw_obj_end(w);
}

static void event_begin(struct jw *w, const struct trace_resource *res, uint64_t t,
                        const char *name) {
  jw_obj_begin(w);
  jw_key(w, "timeUnixNano");
  unix_nano(w, res, t);
  jw_key(w, "name");
  jw_str(w, name);
  jw_key(w, "attributes");
  jw_arr_begin(w);
}

static void event_end(struct jw *w) {
  jw_arr_end(w);
  jw_obj_end(w);
}

/* The failure: OpenTelemetry's exception event. */
static void exception_event(struct jw *w, const struct trace_resource *res,
                            const arbor_error_t *err) {
  event_begin(w, res, arbor_error_time_ns(err), "exception");
  attr_str(w, "exception.type", arbor_err_name(arbor_error_code(err)));
  attr_str(w, "exception.message", arbor_error_message(err));
  char *text = malloc(CHAIN_TEXT_MAX);
  if (text != NULL) {            /* out of memory: the span goes without the text */
    arbor_error_format(err, text, CHAIN_TEXT_MAX);
    attr_str(w, "exception.stacktrace", text);
    free(text);
  }
  attr_int(w, "arbor.error.code", arbor_error_code(err));
  if (arbor_error_file(err) != NULL && arbor_error_file(err)[0] != '\0') {
    attr_str(w, "code.filepath", arbor_error_file(err));
    attr_int(w, "code.lineno", arbor_error_line(err));
    attr_str(w, "code.function", arbor_error_function(err));
  }
  if (arbor_error_cause(err) != NULL) {
    jw_obj_begin(w);
    jw_key(w, "key");
    jw_str(w, "arbor.error.causes");
    jw_key(w, "value");
    jw_obj_begin(w);
    jw_key(w, "arrayValue");
    jw_obj_begin(w);
    jw_key(w, "values");
    jw_arr_begin(w);
    int n = 0;
    for (const arbor_error_t *c = arbor_error_cause(err); c != NULL && n < CAUSES_MAX;
         c = arbor_error_cause(c), n++) {
      char line[512];
      snprintf(line, sizeof line, "%s: %s", arbor_err_name(arbor_error_code(c)),
               arbor_error_message(c));
      jw_obj_begin(w);
      jw_key(w, "stringValue");
      jw_str(w, line);
      jw_obj_end(w);
    }
    jw_arr_end(w);
    jw_obj_end(w);
    jw_obj_end(w);
    jw_obj_end(w);
  }
  event_end(w);
}

void otlp_span(struct jw *w, const struct trace_resource *res, const struct trace_node *n,
               uint64_t end_ns) {
  int finished = n->state == ARBOR_STATE_FINISHED;
  uint64_t end = finished ? n->t[ARBOR_STATE_FINISHED] : end_ns;
  if (end < n->t[ARBOR_STATE_CREATED])
    end = n->t[ARBOR_STATE_CREATED];

  jw_obj_begin(w);
  jw_key(w, "traceId");
  jw_str(w, res->trace_id);
  jw_key(w, "spanId");
  hex_id(w, n->id);
  if (n->parent_id != 0) {
    jw_key(w, "parentSpanId");
    hex_id(w, n->parent_id);
  }
  jw_key(w, "name");
  jw_str(w, n->name);
  jw_key(w, "kind");
  jw_raw(w, "1", 1);             /* SPAN_KIND_INTERNAL */
  jw_key(w, "startTimeUnixNano");
  unix_nano(w, res, n->t[ARBOR_STATE_CREATED]);
  jw_key(w, "endTimeUnixNano");
  unix_nano(w, res, end);

  jw_key(w, "attributes");
  jw_arr_begin(w);
  attr_int(w, "arbor.node.id", (int64_t)n->id);
  attr_str(w, "arbor.node.kind", arbor_kind_name((arbor_kind_t)n->kind));
  attr_str(w, "arbor.state", arbor_state_name((arbor_state_t)n->state));
  attr_str(w, "arbor.outcome", arbor_outcome_name((arbor_outcome_t)n->outcome));
  if (n->kind == ARBOR_KIND_SERVICE || n->kind == ARBOR_KIND_SUPERVISOR)
    attr_int(w, "arbor.restarts", n->restarts);
  if (n->cancelled)
    attr_bool(w, "arbor.cancelled", 1);
  if (n->stuck)
    attr_bool(w, "arbor.stuck", 1);
  if (!finished)
    attr_bool(w, "arbor.unfinished", 1);
  for (uint32_t i = 0; i < n->nattrs; i++)
    attr_str(w, n->attrs[i].key, n->attrs[i].value);
  jw_arr_end(w);

  jw_key(w, "events");
  jw_arr_begin(w);
  for (int s = ARBOR_STATE_STARTING; s <= ARBOR_STATE_FINISHED; s++) {
    if (n->t[s] == 0)
      continue;
    event_begin(w, res, n->t[s], arbor_state_name((arbor_state_t)s));
    event_end(w);
  }
  for (uint32_t i = 0; i < n->nevents; i++) {
    const struct trace_event *e = &n->events[i];
    event_begin(w, res, e->time_ns, arbor_event_type_name(e->type));
    if (e->error != NULL) {
      attr_str(w, "arbor.error.type", arbor_err_name(arbor_error_code(e->error)));
      attr_str(w, "arbor.error.message", arbor_error_message(e->error));
    }
    event_end(w);
  }
  if (n->error != NULL)
    exception_event(w, res, n->error);
  jw_arr_end(w);

  jw_key(w, "status");
  jw_obj_begin(w);
  if (n->outcome == ARBOR_OUTCOME_OK) {
    jw_key(w, "code");
    jw_raw(w, "1", 1);           /* STATUS_CODE_OK */
  } else if (n->outcome == ARBOR_OUTCOME_FAILED) {
    jw_key(w, "message");
    jw_str(w, n->error != NULL ? arbor_error_message(n->error) : "failed");
    jw_key(w, "code");
    jw_raw(w, "2", 1);           /* STATUS_CODE_ERROR */
  }
  jw_obj_end(w);
  jw_obj_end(w);
}
