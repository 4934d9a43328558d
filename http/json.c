/* http/json.c - nodes, errors and times as cJSON, in the shapes that
 * docs/openapi.yaml fixes (field names are stable: clients parse them).
 *
 * Everything reads the tree through the observation API of arbor.h only, on the
 * loop thread, so one document is one consistent point in time. Three things
 * cJSON does not do for us, done here:
 *  - 64-bit integers: cJSON's numbers are doubles, and it prints any that is
 *    not an int with "%1.15g" when that reads back within its epsilon, so
 *    9007199254740992 comes out as 9.00719925474099e+15; monotonic nanoseconds
 *    have 16 digits after 11 days of uptime. Values past INT32_MAX therefore
 *    go in as raw decimal text, exact.
 *  - UTF-8: names, messages and attributes are the embedder's bytes (a process
 *    service's error carries its stderr tail); cJSON copies them as they are,
 *    which would make the whole document invalid JSON. Invalid bytes become
 *    U+FFFD.
 *  - Bounds: an error group can hold thousands of members and a message any
 *    length, so a chain is rendered within a budget (struct http_jcx).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "resources.h"

/* cJSON prints integers up to here with "%d", exactly. */
#define JSON_EXACT_MAX 2147483647ULL

void http_jcx_init(struct http_jcx *cx, int errors_max, size_t message_max) {
  cx->oom = 0;
  cx->errors_left = errors_max > 0 ? errors_max : HTTP_ERRORS_MAX;
  cx->message_max = message_max > 0 ? message_max : HTTP_MESSAGE_MAX;
}

/* ------------------------------------------------------------------ UTF-8 */

/* The length of the valid UTF-8 sequence at s (at most len bytes), or 0 when
 * the byte at s starts none (RFC 3629: no overlongs, no surrogates, nothing
 * past U+10FFFF). A sequence cut short by len is invalid here too. */
static size_t utf8_seq(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;   /* the allowed range of the second byte */
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;                         /* overlong */
    else if (c == 0xED)
      hi = 0x9F;                         /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;                         /* past U+10FFFF */
  } else
    return 0;
  if (len < n || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

/* A copy of s with at most max bytes (cut at a character boundary) in which
 * every invalid byte is U+FFFD, or NULL when out of memory. */
static char *utf8_clean(const char *s, size_t max) {
  size_t len = strlen(s);
  if (len > max)
    len = jw_utf8_complete(s, max);    /* never split a character */
  char *out = malloc(len * 3 + 1);       /* one invalid byte -> 3 bytes of U+FFFD */
  if (out == NULL)
    return NULL;
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < len) {
    size_t n = utf8_seq(u + i, len - i);
    if (n == 0) {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    }
  }
  out[o] = '\0';
  return out;
}

size_t http_json_escape(const char *s, size_t len, char *out) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < len) {
    unsigned char c = u[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      const char *short_esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
      if (short_esc != NULL) {
        memcpy(out + o, short_esc, 2);
        o += 2;
      } else {
        memcpy(out + o, "\\u00", 4);
        out[o + 4] = hex[c >> 4];
        out[o + 5] = hex[c & 15];
        o += 6;
      }
      i++;
    } else {
      size_t n = utf8_seq(u + i, len - i);
      if (n == 0) {
        memcpy(out + o, "\\ufffd", 6);
        o += 6;
        i++;
      } else {
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
      }
    }
  }
  return o;
}

/* ------------------------------------------------------------ primitives */

cJSON *http_jadd(struct http_jcx *cx, cJSON *obj, const char *name, cJSON *item) {
  if (item == NULL || cx->oom || !cJSON_AddItemToObject(obj, name, item)) {
    cJSON_Delete(item);
    cx->oom = 1;
    return NULL;
  }
  return item;
}

cJSON *http_jpush(struct http_jcx *cx, cJSON *arr, cJSON *item) {
  if (item == NULL || cx->oom || !cJSON_AddItemToArray(arr, item)) {
    cJSON_Delete(item);
    cx->oom = 1;
    return NULL;
  }
  return item;
}

void http_jadd_u64(struct http_jcx *cx, cJSON *obj, const char *name, uint64_t v) {
  if (v <= JSON_EXACT_MAX) {
    http_jadd(cx, obj, name, cJSON_CreateNumber((double)v));
  } else {
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    http_jadd(cx, obj, name, cJSON_CreateRaw(text));
  }
}

void http_jadd_i64(struct http_jcx *cx, cJSON *obj, const char *name, int64_t v) {
  if (v >= 0)
    http_jadd_u64(cx, obj, name, (uint64_t)v);
  else if (v >= -(int64_t)JSON_EXACT_MAX)
    http_jadd(cx, obj, name, cJSON_CreateNumber((double)v));
  else {
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    http_jadd(cx, obj, name, cJSON_CreateRaw(text));
  }
}

static void jadd_str_max(struct http_jcx *cx, cJSON *obj, const char *name, const char *s,
                         size_t max) {
  if (s == NULL) {
    http_jadd(cx, obj, name, cJSON_CreateNull());
    return;
  }
  char *clean = utf8_clean(s, max);
  if (clean == NULL) {
    cx->oom = 1;
    return;
  }
  http_jadd(cx, obj, name, cJSON_CreateString(clean));
  free(clean);
}

void http_jadd_str(struct http_jcx *cx, cJSON *obj, const char *name, const char *s) {
  jadd_str_max(cx, obj, name, s, SIZE_MAX);
}

void http_jadd_bool(struct http_jcx *cx, cJSON *obj, const char *name, int b) {
  http_jadd(cx, obj, name, cJSON_CreateBool(b != 0));
}

void http_format_time(int64_t wall_ns, char *buf) {
  /* Floor division, so a time before 1970 still gets nanoseconds in 0..1e9. */
  int64_t sec = wall_ns / 1000000000, ns = wall_ns % 1000000000;
  if (ns < 0) {
    ns += 1000000000;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  size_t n = 0;
  if (gmtime_r(&t, &tm) != NULL)
    n = strftime(buf, HTTP_TIME_LEN - 12, "%Y-%m-%dT%H:%M:%S", &tm);
  if (n == 0)                    /* a year strftime cannot fit: the epoch */
    n = (size_t)snprintf(buf, HTTP_TIME_LEN - 12, "1970-01-01T00:00:00");
  snprintf(buf + n, HTTP_TIME_LEN - n, ".%09uZ", (unsigned)ns);
}

void http_jadd_time(struct http_jcx *cx, cJSON *obj, arbor_runtime_t *rt, const char *name,
                    uint64_t t_ns) {
  if (t_ns == 0)
    return;
  char key[64], text[HTTP_TIME_LEN];
  snprintf(key, sizeof key, "%s_ns", name);
  http_jadd_u64(cx, obj, key, t_ns);
  http_format_time(arbor__wall_ns(rt, t_ns), text);
  http_jadd(cx, obj, name, cJSON_CreateString(text));
}

void http_json_time(cJSON *obj, arbor_runtime_t *rt, const char *name, uint64_t t_ns) {
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  http_jadd_time(&cx, obj, rt, name, t_ns);
}

/* ----------------------------------------------------------------- errors */

/* One error and what hangs off it, within cx's budget: depth counts causes and
 * group levels. The budget is taken before the fields, so a long chain or a
 * wide group ends in "truncated" / "errors_omitted" rather than a huge body. */
static cJSON *error_json(struct http_jcx *cx, const arbor_error_t *e, int depth) {
  if (e == NULL)
    return cJSON_CreateNull();
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) {
    cx->oom = 1;
    return NULL;
  }
  cx->errors_left--;
  int code = arbor_error_code(e);
  const char *file = arbor_error_file(e), *func = arbor_error_function(e);
  http_jadd_i64(cx, o, "code", code);
  http_jadd_str(cx, o, "name", arbor_err_name(code));
  jadd_str_max(cx, o, "message", arbor_error_message(e), cx->message_max);
  http_jadd_str(cx, o, "file", file != NULL && file[0] != '\0' ? file : NULL);
  http_jadd_i64(cx, o, "line", arbor_error_line(e));
  http_jadd_str(cx, o, "function", func != NULL && func[0] != '\0' ? func : NULL);
  http_jadd_u64(cx, o, "time_ns", arbor_error_time_ns(e));
  http_jadd_u64(cx, o, "node_id", arbor_error_node_id(e));

  const arbor_error_t *cause = arbor_error_cause(e);
  if (cause != NULL && (cx->errors_left <= 0 || depth >= HTTP_ERROR_DEPTH_MAX)) {
    http_jadd(cx, o, "cause", cJSON_CreateNull());
    http_jadd_bool(cx, o, "truncated", 1);
  } else {
    http_jadd(cx, o, "cause", error_json(cx, cause, depth + 1));
  }

  size_t n = arbor_error_child_count(e);
  if (n > 0 || code == ARBOR_EGROUP) {
    cJSON *arr = http_jadd(cx, o, "errors", cJSON_CreateArray());
    size_t i = 0;
    for (; arr != NULL && i < n && cx->errors_left > 0 && depth < HTTP_ERROR_DEPTH_MAX; i++)
      http_jpush(cx, arr, error_json(cx, arbor_error_child(e, i), depth + 1));
    if (i < n)
      http_jadd_u64(cx, o, "errors_omitted", n - i);
  }
  if (cx->oom) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

cJSON *http_jerror(struct http_jcx *cx, const arbor_error_t *err) {
  return error_json(cx, err, 0);
}

cJSON *http_json_error(const arbor_error_t *err) {
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  return http_jerror(&cx, err);
}

/* ------------------------------------------------------------------ nodes */

cJSON *http_jnode(struct http_jcx *cx, arbor_node_t *node) {
  arbor_node_info_t in;
  arbor_node_info(node, &in);
  arbor_runtime_t *rt = arbor_node_runtime(node);
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) {
    cx->oom = 1;
    return NULL;
  }
  http_jadd_u64(cx, o, "id", in.id);
  http_jadd_u64(cx, o, "parent_id", in.parent_id);
  http_jadd_str(cx, o, "name", arbor_node_name(node));
  http_jadd_str(cx, o, "kind", arbor_kind_name(in.kind));
  http_jadd_str(cx, o, "state", arbor_state_name(in.state));
  http_jadd_str(cx, o, "outcome", arbor_outcome_name(in.outcome));
  http_jadd_bool(cx, o, "cancel_requested", in.cancel_requested);
  http_jadd_bool(cx, o, "stuck", in.stuck);
  /* created always; the other three only once they happened (0 = not yet). */
  http_jadd_u64(cx, o, "created_ns", in.created_ns);
  char text[HTTP_TIME_LEN];
  http_format_time(in.created_wall_ns, text);
  http_jadd(cx, o, "created", cJSON_CreateString(text));
  http_jadd_time(cx, o, rt, "started", in.started_ns);
  http_jadd_time(cx, o, rt, "stop_requested", in.stop_requested_ns);
  http_jadd_time(cx, o, rt, "finished", in.finished_ns);
  http_jadd_u64(cx, o, "children", in.children);
  http_jadd_u64(cx, o, "live_children", in.live_children);
  http_jadd_u64(cx, o, "children_total", in.children_total);
  http_jadd_u64(cx, o, "restarts", in.restarts);

  cJSON *attrs = http_jadd(cx, o, "attributes", cJSON_CreateObject());
  const char *k, *v;
  for (size_t i = 0; attrs != NULL && arbor_node_attr_at(node, i, &k, &v) == 0; i++) {
    /* A key is the embedder's bytes too, and cJSON prints keys as they are:
     * cleaned like the value (jw_key does the same). */
    char *key = utf8_clean(k, SIZE_MAX);
    if (key == NULL) {
      cx->oom = 1;
      break;
    }
    http_jadd_str(cx, attrs, key, v);
    free(key);
  }

  http_jadd(cx, o, "error", http_jerror(cx, arbor_node_error(node)));
  arbor_phase_t wphase;
  arbor_node_t *w = http_waiting_for(node, &wphase);
  cJSON *wo = w != NULL ? http_jadd(cx, o, "waiting_for", cJSON_CreateObject()) : NULL;
  if (wo != NULL) {
    http_jadd_u64(cx, wo, "id", arbor_node_id(w));
    http_jadd_str(cx, wo, "name", arbor_node_name(w));
    http_jadd_str(cx, wo, "state", arbor_state_name(arbor_node_state(w)));
    http_jadd_str(cx, wo, "phase", arbor_phase_name(wphase));
  }
  if (cx->oom) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

arbor_node_t *http_waiting_for(arbor_node_t *node, arbor_phase_t *phase) {
  arbor_service_info_t si, wi;
  arbor_kind_t kind = arbor_node_kind(node);
  if ((kind != ARBOR_KIND_SERVICE && kind != ARBOR_KIND_SUPERVISOR) ||
      arbor_service_info(node, &si) != 0 || si.waiting_for == 0)
    return NULL;
  arbor_node_t *w = arbor_node_find(arbor_node_runtime(node), si.waiting_for);
  if (w == NULL || arbor_service_info(w, &wi) != 0)
    return NULL;
  *phase = wi.phase;
  return w;
}

cJSON *http_json_node(arbor_node_t *node) {
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  return http_jnode(&cx, node);
}

/* ------------------------------------------------------- request helpers */

arbor_node_t *http_node_param(struct http_req *r, enum MHD_Result *ret) {
  uint64_t id;
  if (r->params[0] == NULL || http_parse_u64(r->params[0], 0, UINT64_MAX, &id) != 0 || id == 0) {
    *ret = http_error(r, 400, "bad_request", "node id must be a decimal integer from 1 to %" PRIu64,
                      UINT64_MAX);
    return NULL;
  }
  arbor_node_t *node = arbor_node_find(r->rt, id);
  if (node == NULL)
    *ret = http_error(r, 404, "not_found", "no node %" PRIu64, id);
  return node;
}

int http_query_u64(struct http_req *r, const char *key, uint64_t dflt, uint64_t max,
                   uint64_t *out, enum MHD_Result *ret) {
  if (http_parse_u64(http_query(r, key), dflt, max, out) == 0)
    return 0;
  *ret = http_error(r, 400, "bad_request", "query parameter %s must be an integer from 0 to %" PRIu64,
                    key, max);
  return -1;
}

enum MHD_Result http_oom(struct http_req *r) {
  return http_error(r, 500, "internal", "out of memory building the response");
}

enum MHD_Result http_jsend(struct http_req *r, const struct http_jcx *cx, unsigned status,
                           cJSON *o) {
  if (o == NULL || cx->oom) {
    cJSON_Delete(o);
    return http_oom(r);
  }
  return http_json(r, status, o);
}
