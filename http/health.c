/* http/health.c - GET /healthz and GET /readyz.
 *
 * healthz: the loop answers, so the process is alive: 200 {"status":"ok"}.
 * readyz: every service and supervisor is STARTED (their readiness reported;
 * a service in its backoff stays STARTED), so 200 {"ready":true}; otherwise 503
 * {"ready":false,"not_started":[ids]}, the ids in tree order, at most
 * READY_IDS_MAX of them ("more": how many were left out). A service or
 * supervisor that FINISHED with outcome OK is done, not unready (a transient
 * service that completed); one that failed or was cancelled is unready for
 * good. A STARTED service that its readiness probe made not ready (probe.c) is
 * listed too: not_started then means "not ready". Subtrees of FINISHED nodes are
 * skipped: all of it has finished too.
 */
#include "http.h"

#define READY_IDS_MAX 100

struct ready_walk {
  cJSON *ids;
  size_t count;
  int oom;
};

/* A STARTED service whose readiness probe failed it (its phase running but not
 * ready); one in its backoff stays ready, as above. */
static int probe_unready(arbor_node_t *node) {
  arbor_service_info_t si;
  return arbor_node_kind(node) == ARBOR_KIND_SERVICE && arbor_service_info(node, &si) == 0 &&
         si.phase == ARBOR_PHASE_RUNNING && !si.ready;
}

static int visit(arbor_node_t *node, int depth, void *arg) {
  (void)depth;
  struct ready_walk *w = arg;
  arbor_kind_t kind = arbor_node_kind(node);
  arbor_state_t state = arbor_node_state(node);
  if ((kind == ARBOR_KIND_SERVICE || kind == ARBOR_KIND_SUPERVISOR) &&
      (state == ARBOR_STATE_STARTED ? probe_unready(node)
                                    : !(state == ARBOR_STATE_FINISHED &&
                                        arbor_node_outcome(node) == ARBOR_OUTCOME_OK))) {
    if (w->count < READY_IDS_MAX &&
        !cJSON_AddItemToArray(w->ids, cJSON_CreateNumber((double)arbor_node_id(node))))
      w->oom = 1;
    w->count++;
  }
  return state == ARBOR_STATE_FINISHED ? 1 : 0;
}

enum MHD_Result http_healthz(struct http_req *r) {
  static const char body[] = "{\"status\":\"ok\"}";
  return http_text(r, 200, "application/json; charset=utf-8", body, sizeof body - 1, 1);
}

enum MHD_Result http_readyz(struct http_req *r) {
  struct ready_walk w = {cJSON_CreateArray(), 0, 0};
  cJSON *body = cJSON_CreateObject();
  if (w.ids == NULL || body == NULL) {
    cJSON_Delete(w.ids);
    cJSON_Delete(body);
    return http_error(r, 500, "internal", "out of memory building the response");
  }
  arbor_tree_walk(arbor_root(r->rt), -1, visit, &w);
  int ready = w.count == 0;
  cJSON_AddBoolToObject(body, "ready", ready);
  if (ready) {
    cJSON_Delete(w.ids);
  } else {
    cJSON_AddItemToObject(body, "not_started", w.ids);
    if (w.count > READY_IDS_MAX)
      cJSON_AddNumberToObject(body, "more", (double)(w.count - READY_IDS_MAX));
  }
  if (w.oom || cJSON_GetObjectItemCaseSensitive(body, "ready") == NULL) {
    cJSON_Delete(body);
    return http_error(r, 500, "internal", "out of memory building the response");
  }
  return http_json(r, ready ? 200 : 503, body);
}
