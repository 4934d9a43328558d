/* http/jw.c - the node and error shapes of the admin API written with the JSON
 * writer (tracing/jsonw.h): the same bytes json.c's cJSON documents print. */
#include <stdlib.h>
#include <string.h>

#include "jw.h"

/* ------------------------------------------------------ arbor values */

/* json.c's error_json, field for field: the budget is taken before the
 * fields, causes past it or past HTTP_ERROR_DEPTH_MAX end in "truncated". */
static void error_w(struct jw *w, struct http_jcx *cx, const arbor_error_t *e, int depth) {
  if (e == NULL) {
    jw_null(w);
    return;
  }
  jw_obj_begin(w);
  cx->errors_left--;
  int code = arbor_error_code(e);
  const char *file = arbor_error_file(e), *func = arbor_error_function(e);
  jw_key(w, "code");
  jw_i64(w, code);
  jw_key(w, "name");
  jw_str(w, arbor_err_name(code));
  jw_key(w, "message");
  jw_str_max(w, arbor_error_message(e), cx->message_max);
  jw_key(w, "file");
  jw_str(w, file != NULL && file[0] != '\0' ? file : NULL);
  jw_key(w, "line");
  jw_i64(w, arbor_error_line(e));
  jw_key(w, "function");
  jw_str(w, func != NULL && func[0] != '\0' ? func : NULL);
  jw_key(w, "time_ns");
  jw_u64(w, arbor_error_time_ns(e));
  jw_key(w, "node_id");
  jw_u64(w, arbor_error_node_id(e));

  const arbor_error_t *cause = arbor_error_cause(e);
  jw_key(w, "cause");
  if (cause != NULL && (cx->errors_left <= 0 || depth >= HTTP_ERROR_DEPTH_MAX)) {
    jw_null(w);
    jw_key(w, "truncated");
    jw_bool(w, 1);
  } else {
    error_w(w, cx, cause, depth + 1);
  }

  size_t n = arbor_error_child_count(e);
  if (n > 0 || code == ARBOR_EGROUP) {
    jw_key(w, "errors");
    jw_arr_begin(w);
    size_t i = 0;
    for (; i < n && cx->errors_left > 0 && depth < HTTP_ERROR_DEPTH_MAX && !w->err; i++)
      error_w(w, cx, arbor_error_child(e, i), depth + 1);
    jw_arr_end(w);
    if (i < n) {
      jw_key(w, "errors_omitted");
      jw_u64(w, n - i);
    }
  }
  jw_obj_end(w);
}

void jw_error(struct jw *w, struct http_jcx *cx, const arbor_error_t *err) {
  error_w(w, cx, err, 0);
}

/* "<name>_ns" and "<name>" for a monotonic time; nothing when 0. */
static void time_pair(struct jw *w, arbor_runtime_t *rt, const char *key_ns, const char *key,
                      uint64_t t_ns) {
  if (t_ns == 0)
    return;
  jw_key(w, key_ns);
  jw_u64(w, t_ns);
  jw_key(w, key);
  jw_time(w, arbor__wall_ns(rt, t_ns));
}

/* json.c's http_jnode, field for field, with the object left open. */
void jw_node_fields(struct jw *w, struct http_jcx *cx, arbor_node_t *node) {
  arbor_node_info_t in;
  arbor_node_info(node, &in);
  arbor_runtime_t *rt = arbor_node_runtime(node);
  jw_obj_begin(w);
  jw_key(w, "id");
  jw_u64(w, in.id);
  jw_key(w, "parent_id");
  jw_u64(w, in.parent_id);
  jw_key(w, "name");
  jw_str(w, arbor_node_name(node));
  jw_key(w, "kind");
  jw_str(w, arbor_kind_name(in.kind));
  jw_key(w, "state");
  jw_str(w, arbor_state_name(in.state));
  jw_key(w, "outcome");
  jw_str(w, arbor_outcome_name(in.outcome));
  jw_key(w, "cancel_requested");
  jw_bool(w, in.cancel_requested);
  jw_key(w, "stuck");
  jw_bool(w, in.stuck);
  jw_key(w, "created_ns");
  jw_u64(w, in.created_ns);
  jw_key(w, "created");
  jw_time(w, in.created_wall_ns);
  time_pair(w, rt, "started_ns", "started", in.started_ns);
  time_pair(w, rt, "stop_requested_ns", "stop_requested", in.stop_requested_ns);
  time_pair(w, rt, "finished_ns", "finished", in.finished_ns);
  jw_key(w, "children");
  jw_u64(w, in.children);
  jw_key(w, "live_children");
  jw_u64(w, in.live_children);
  jw_key(w, "children_total");
  jw_u64(w, in.children_total);
  jw_key(w, "restarts");
  jw_u64(w, in.restarts);
  jw_key(w, "attributes");
  jw_obj_begin(w);
  const char *k, *v;
  for (size_t i = 0; arbor_node_attr_at(node, i, &k, &v) == 0; i++) {
    jw_key(w, k);
    jw_str(w, v);
  }
  jw_obj_end(w);
  jw_key(w, "error");
  jw_error(w, cx, arbor_node_error(node));
  arbor_phase_t wphase;
  arbor_node_t *wn = http_waiting_for(node, &wphase);
  if (wn != NULL) {              /* as http_jnode: only while it waits */
    jw_key(w, "waiting_for");
    jw_obj_begin(w);
    jw_key(w, "id");
    jw_u64(w, arbor_node_id(wn));
    jw_key(w, "name");
    jw_str(w, arbor_node_name(wn));
    jw_key(w, "state");
    jw_str(w, arbor_state_name(arbor_node_state(wn)));
    jw_key(w, "phase");
    jw_str(w, arbor_phase_name(wphase));
    jw_obj_end(w);
  }
}
