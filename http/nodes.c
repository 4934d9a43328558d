/* http/nodes.c - one node: GET /api/v1/nodes/{id} (detail), GET .../children
 * (a page), POST .../cancel and POST .../restart.
 *
 * The detail is the node's own fields (json.c) plus what only some kinds have:
 * a fiber's wait site and stack, a service's or supervisor's phase and counters
 * (a process service's log file, resource usage and memory limit among them, a
 * service's readiness and health probes), and its failure
 * history. Mutations map arbor's codes onto HTTP statuses once, here: a finished
 * node is a 409, a node of the wrong kind a 400, an unknown id a 404, so clients
 * can tell "you asked wrongly" from "too late".
 */
#include <inttypes.h>

#include "resources.h"

/* "fiber": where a fiber task waits and how much stack it used. Nothing for a
 * node that is not a fiber (arbor_node_fiber_info says ARBOR_EKIND). */
static void add_fiber(struct http_jcx *cx, cJSON *o, arbor_node_t *node) {
  arbor_fiber_info_t fi;
  if (arbor_node_fiber_info(node, &fi) != 0)
    return;
  cJSON *f = http_jadd(cx, o, "fiber", cJSON_CreateObject());
  if (f == NULL)
    return;
  int waiting = fi.wait_what != NULL;
  http_jadd_str(cx, f, "wait", fi.wait_what);
  http_jadd_str(cx, f, "file", waiting ? fi.wait_file : NULL);
  http_jadd_i64(cx, f, "line", waiting ? fi.wait_line : 0);
  http_jadd_u64(cx, f, "since_ns", waiting ? fi.wait_since_ns : 0);
  if (waiting)
    http_jadd_time(cx, f, arbor_node_runtime(node), "since", fi.wait_since_ns);
  http_jadd_u64(cx, f, "stack_size", fi.stack_size);
  http_jadd_u64(cx, f, "stack_high_water", fi.stack_high_water);
}

/* "usage": what a process service's running program and its descendants use,
 * sampled now (arbor_service_usage reads /proc; nothing samples on a timer).
 * null for anything else, or when no program runs. */
static void add_usage(struct http_jcx *cx, cJSON *s, arbor_node_t *node) {
  arbor_process_usage_t u;
  if (arbor_service_usage(node, &u) != 0) {
    http_jadd(cx, s, "usage", cJSON_CreateNull());
    return;
  }
  cJSON *o = http_jadd(cx, s, "usage", cJSON_CreateObject());
  if (o == NULL)
    return;
  /* Whole microseconds of CPU and hundredths of a percent: /proc counts in
   * clock ticks, so more digits would be noise. */
  http_jadd(cx, o, "cpu_seconds", cJSON_CreateNumber((double)(u.cpu_ns / 1000u) / 1e6));
  http_jadd(cx, o, "cpu_percent", cJSON_CreateNumber((double)(int64_t)(u.cpu_percent * 100.0 + 0.5) / 100.0));
  http_jadd_u64(cx, o, "rss_bytes", u.rss_bytes);
  http_jadd_u64(cx, o, "open_fds", u.fds);
  http_jadd_u64(cx, o, "threads", u.threads);
  http_jadd_u64(cx, o, "processes", u.processes);
  http_jadd_bool(cx, o, "partial", u.partial);
}

/* "memory_limit": a process service's max_memory and what this run's readings
 * saw (arbor_service_memory_limit); null without a limit, and for anything
 * that is not a process service. over_ms: how long the readings have been
 * over it (0: the latest was under). */
static void add_memory_limit(struct http_jcx *cx, cJSON *s, arbor_node_t *node) {
  arbor_memory_limit_info_t m;
  if (arbor_service_memory_limit(node, &m) != 0 || m.max_memory == 0) {
    http_jadd(cx, s, "memory_limit", cJSON_CreateNull());
    return;
  }
  cJSON *o = http_jadd(cx, s, "memory_limit", cJSON_CreateObject());
  if (o == NULL)
    return;
  http_jadd_u64(cx, o, "max_memory", m.max_memory);
  http_jadd_u64(cx, o, "max_memory_for_ms", m.max_memory_for_ms);
  http_jadd_u64(cx, o, "check_ms", m.check_ms);
  http_jadd_u64(cx, o, "readings", m.readings);
  http_jadd_u64(cx, o, "rss_bytes", m.rss_bytes);
  http_jadd_u64(cx, o, "processes", m.processes);
  http_jadd_u64(cx, o, "over_ms",
                m.over_since_ns != 0 ? (m.sampled_ns - m.over_since_ns) / 1000000u : 0);
  http_jadd_u64(cx, o, "exceeded", m.exceeded);
}

/* service.waiting_for: what http_jnode puts at the top too, and null when it
 * waits for nothing, so that the service object always has the key. */
static void add_waiting_for(struct http_jcx *cx, cJSON *s, arbor_node_t *node) {
  arbor_phase_t phase;
  arbor_node_t *w = http_waiting_for(node, &phase);
  if (w == NULL) {
    http_jadd(cx, s, "waiting_for", cJSON_CreateNull());
    return;
  }
  cJSON *o = http_jadd(cx, s, "waiting_for", cJSON_CreateObject());
  if (o == NULL)
    return;
  http_jadd_u64(cx, o, "id", arbor_node_id(w));
  http_jadd_str(cx, o, "name", arbor_node_name(w));
  http_jadd_str(cx, o, "state", arbor_state_name(arbor_node_state(w)));
  http_jadd_str(cx, o, "phase", arbor_phase_name(phase));
}

/* service.probes.liveness / .readiness: a probe's settings and what it last
 * saw (arbor_service_probe_info), or null when the service has none. */
static void add_probe(struct http_jcx *cx, cJSON *ps, arbor_node_t *node,
                      arbor_probe_role_t role) {
  arbor_probe_info_t pi;
  if (arbor_service_probe_info(node, role, &pi) != 0) {
    http_jadd(cx, ps, arbor_probe_role_name(role), cJSON_CreateNull());
    return;
  }
  cJSON *p = http_jadd(cx, ps, arbor_probe_role_name(role), cJSON_CreateObject());
  if (p == NULL)
    return;
  http_jadd_str(cx, p, "kind", arbor_probe_kind_name(pi.kind));
  http_jadd_str(cx, p, "target", pi.target);
  http_jadd_bool(cx, p, "active", pi.active);
  http_jadd_bool(cx, p, "passing", pi.passing);
  http_jadd_u64(cx, p, "failures_in_row", pi.failures_in_row);
  http_jadd_u64(cx, p, "successes_in_row", pi.successes_in_row);
  http_jadd_u64(cx, p, "successes", pi.successes);
  http_jadd_u64(cx, p, "failures", pi.failures);
  http_jadd_u64(cx, p, "timeouts", pi.timeouts);
  if (pi.last_time_ns != 0) {
    http_jadd_time(cx, p, arbor_node_runtime(node), "last_time", pi.last_time_ns);
    http_jadd_bool(cx, p, "last_ok", pi.last_ok);
    /* Whole microseconds: a loopback probe takes tens of them. */
    http_jadd(cx, p, "last_duration_seconds",
              cJSON_CreateNumber((double)(pi.last_duration_ns / 1000u) / 1e6));
  } else {
    http_jadd_u64(cx, p, "last_time_ns", 0);
    http_jadd(cx, p, "last_time", cJSON_CreateNull());
    http_jadd(cx, p, "last_ok", cJSON_CreateNull());
    http_jadd(cx, p, "last_duration_seconds", cJSON_CreateNull());
  }
  http_jadd(cx, p, "last_error",
            pi.last_error != NULL ? http_jerror(cx, pi.last_error) : cJSON_CreateNull());
  http_jadd_u64(cx, p, "interval_ms", pi.spec.interval_ms);
  http_jadd_u64(cx, p, "timeout_ms", pi.spec.timeout_ms);
  http_jadd_u64(cx, p, "failure_threshold", pi.spec.failure_threshold);
  http_jadd_u64(cx, p, "success_threshold", pi.spec.success_threshold);
  http_jadd_u64(cx, p, "initial_delay_ms", pi.spec.initial_delay_ms);
}

/* "service" and "history" for services and supervisors. */
static void add_service(struct http_jcx *cx, cJSON *o, arbor_node_t *node) {
  arbor_service_info_t si;
  if (arbor_service_info(node, &si) != 0)
    return;
  cJSON *s = http_jadd(cx, o, "service", cJSON_CreateObject());
  if (s == NULL)
    return;
  http_jadd_str(cx, s, "restart", arbor_restart_name(si.restart));
  http_jadd_str(cx, s, "phase", arbor_phase_name(si.phase));
  http_jadd_bool(cx, s, "is_process", si.is_process);
  http_jadd_bool(cx, s, "daemon", si.daemon);
  http_jadd_u64(cx, s, "incarnation_id", si.incarnation_id);
  http_jadd_u64(cx, s, "next_restart_ns", si.next_restart_ns);
  http_jadd_u64(cx, s, "last_backoff_ms", si.last_backoff_ms);
  http_jadd_u64(cx, s, "tasks_total", si.tasks_total);
  http_jadd_u64(cx, s, "tasks_finished", si.tasks_finished);
  http_jadd_i64(cx, s, "pid", si.pid);
  add_waiting_for(cx, s, node);
  arbor_log_file_info_t lf;
  if (si.is_process && arbor_service_log_file_info(node, &lf) == 0 && lf.enabled) {
    cJSON *l = http_jadd(cx, s, "log_file", cJSON_CreateObject());
    if (l != NULL) {             /* "error": the failure in force, by name; null: writing */
      http_jadd_str(cx, l, "error", lf.error != 0 ? arbor_err_name(lf.error) : NULL);
      http_jadd_u64(cx, l, "bytes_written", lf.bytes_written);
      http_jadd_u64(cx, l, "bytes_dropped", lf.bytes_dropped);
      http_jadd_u64(cx, l, "rotations", lf.rotations);
    }
  }
  http_jadd_exec(cx, s, node);
  add_usage(cx, s, node);
  add_memory_limit(cx, s, node);
  if (arbor_node_kind(node) == ARBOR_KIND_SERVICE) {
    http_jadd_bool(cx, s, "ready", si.ready);
    cJSON *ps = http_jadd(cx, s, "probes", cJSON_CreateObject());
    if (ps != NULL) {
      add_probe(cx, ps, node, ARBOR_PROBE_LIVENESS);
      add_probe(cx, ps, node, ARBOR_PROBE_READINESS);
    }
  }
  if (arbor_node_kind(node) == ARBOR_KIND_SUPERVISOR) {
    http_jadd_str(cx, s, "strategy", arbor_strategy_name(si.strategy));
    http_jadd_i64(cx, s, "intensity", si.intensity);
    http_jadd_u64(cx, s, "period_ms", si.period_ms);
  }

  /* Newest first, as arbor_service_failure numbers them. At most
   * ARBOR_SERVICE_HISTORY entries, each chain within the shared budget. */
  cJSON *h = http_jadd(cx, o, "history", cJSON_CreateArray());
  arbor_service_failure_t f;
  for (size_t i = 0; h != NULL && i < si.history && arbor_service_failure(node, i, &f) == 0; i++) {
    cJSON *e = http_jpush(cx, h, cJSON_CreateObject());
    if (e == NULL)
      return;
    http_jadd_u64(cx, e, "incarnation_id", f.incarnation_id);
    http_jadd_time(cx, e, arbor_node_runtime(node), "time", f.time_ns);
    http_jadd_u64(cx, e, "backoff_ms", f.backoff_ms);
    http_jadd_bool(cx, e, "restarted", f.restarted);
    http_jadd(cx, e, "error", http_jerror(cx, f.error));
  }
}

enum MHD_Result http_node_get(struct http_req *r) {
  enum MHD_Result ret;
  arbor_node_t *node = http_node_param(r, &ret);
  if (node == NULL)
    return ret;
  struct http_jcx cx;
  /* The node's chain and up to ARBOR_SERVICE_HISTORY more share a budget. */
  http_jcx_init(&cx, HTTP_ERRORS_MAX * 2, 0);
  cJSON *o = http_jnode(&cx, node);
  if (o == NULL)
    return http_oom(r);
  add_fiber(&cx, o, node);
  add_service(&cx, o, node);
  return http_jsend(r, &cx, 200, o);
}

enum MHD_Result http_node_children(struct http_req *r) {
  enum MHD_Result ret;
  arbor_node_t *node = http_node_param(r, &ret);
  if (node == NULL)
    return ret;
  uint64_t offset, limit;
  if (http_query_u64(r, "offset", 0, UINT32_MAX, &offset, &ret) != 0 ||
      http_query_u64(r, "limit", HTTP_PAGE_DEFAULT, HTTP_PAGE_MAX, &limit, &ret) != 0)
    return ret;

  arbor_node_t *page[HTTP_PAGE_MAX];
  size_t total = 0;
  int n = arbor_node_children(node, (size_t)offset, (size_t)limit, page, &total);
  if (n < 0)
    return http_error(r, 500, "internal", "reading the children of node %" PRIu64 ": %s",
                      arbor_node_id(node), arbor_strerror(n));

  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return http_oom(r);
  http_jadd_u64(&cx, o, "total", total);
  http_jadd_u64(&cx, o, "offset", offset);
  http_jadd_u64(&cx, o, "limit", limit);
  cJSON *arr = http_jadd(&cx, o, "children", cJSON_CreateArray());
  for (int i = 0; arr != NULL && i < n; i++) {
    /* Each child's chain gets the whole budget: one failed child must not
     * starve its later siblings of their errors. */
    cx.errors_left = HTTP_ERRORS_MAX;
    http_jpush(&cx, arr, http_jnode(&cx, page[i]));
  }
  return http_jsend(r, &cx, 200, o);
}

enum MHD_Result http_node_cancel(struct http_req *r) {
  enum MHD_Result ret;
  arbor_node_t *node = http_node_param(r, &ret);
  if (node == NULL)
    return ret;
  uint64_t id = arbor_node_id(node);
  /* Cancel hooks run inside this call (arbor.h); the node itself stays valid
   * for the whole call (nodes are never freed inside an API call). */
  int rc = arbor_node_cancel(node);
  switch (rc) {
  case 0:
    break;
  case ARBOR_EFINISHED:
    return http_error(r, 409, "finished", "node %" PRIu64 " has finished", id);
  case ARBOR_EKIND:
    return http_error(r, 400, "bad_request",
                      "node %" PRIu64 " is the root: shut the runtime down instead", id);
  default:
    return http_error(r, 500, "internal", "cancelling node %" PRIu64 ": %s", id,
                      arbor_strerror(rc));
  }
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return http_oom(r);
  http_jadd_u64(&cx, o, "id", id);
  http_jadd_str(&cx, o, "state", arbor_state_name(arbor_node_state(node)));
  http_jadd_bool(&cx, o, "cancel_requested", 1);
  return http_jsend(r, &cx, 202, o);
}

enum MHD_Result http_node_restart(struct http_req *r) {
  enum MHD_Result ret;
  arbor_node_t *node = http_node_param(r, &ret);
  if (node == NULL)
    return ret;
  uint64_t id = arbor_node_id(node);
  arbor_node_info_t in;
  arbor_node_info(node, &in);
  uint32_t before = in.restarts;
  int rc = arbor_service_restart(node);
  switch (rc) {
  case 0:
    break;
  case ARBOR_EKIND:
    return http_error(r, 400, "not_a_service",
                      "node %" PRIu64 " is a %s, not a service or supervisor", id,
                      arbor_kind_name(arbor_node_kind(node)));
  case ARBOR_EFINISHED:
    return http_error(r, 409, "finished", "node %" PRIu64 " has finished", id);
  case ARBOR_ESTATE:
    /* arbor_service_restart refuses both a service that never started and one
     * stopping for good; which one it was tells the operator what to wait for. */
    if (!arbor_service_is_started(node))
      return http_error(r, 409, "not_started", "node %" PRIu64 " has not started yet", id);
    return http_error(r, 409, "stopping", "node %" PRIu64 " is stopping for good", id);
  default:
    return http_error(r, 500, "internal", "restarting node %" PRIu64 ": %s", id,
                      arbor_strerror(rc));
  }
  /* The count goes up when the new run starts: at once for a service waiting
   * for its turn, else once the current run has stopped. Answer with the count
   * this restart gives it either way. */
  arbor_node_info(node, &in);
  uint64_t restarts = in.restarts > before ? in.restarts : (uint64_t)before + 1;
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return http_oom(r);
  http_jadd_u64(&cx, o, "id", id);
  http_jadd_u64(&cx, o, "restarts", restarts);
  return http_jsend(r, &cx, 202, o);
}
