/* http/services.c - live service changes: POST /api/v1/services (add),
 * PUT /api/v1/services/{name} (a new spec: restart with it), DELETE
 * /api/v1/services/{name} (stop it for good and forget it).
 *
 * The server has no service format of its own (libarbor runs any program's
 * tree): the body goes as it came to the callbacks of arbor_admin_services_t,
 * which the arbor daemon fills with its config's parser, so a spec is checked by
 * exactly the rules of a config file and refused with the config's own message.
 * Here the codes the callbacks return become statuses, once. Without callbacks
 * (a program that links libarbor and never asked for them) every route answers
 * 501: the resource exists in the API, this server just cannot change it.
 */
#include <inttypes.h>
#include <stdio.h>

#include "resources.h"

#define MSG_MAX 512

/* The callbacks, or NULL after queueing 501 in *ret. */
static const arbor_admin_services_t *services_of(struct http_req *r, enum MHD_Result *ret) {
  const arbor_admin_services_t *s = http_admin_opts(r->admin)->services;
  if (s != NULL)
    return s;
  *ret = http_error(r, 501, "not_implemented",
                    "this server was started without live service changes (the arbor daemon "
                    "with a config has them)");
  return NULL;
}

/* A callback's failure as a status and a code word. */
static enum MHD_Result refused(struct http_req *r, int rc, const char *what, const char *msg) {
  if (msg[0] == '\0')
    msg = arbor_strerror(rc);
  switch (rc) {
  case ARBOR_EINVAL:
    return http_error(r, 400, "bad_spec", "%s", msg);
  case ARBOR_EKIND:
    return http_error(r, 400, "not_a_service", "%s", msg);
  case ARBOR_ENOENT:
    return http_error(r, 404, "not_found", "%s", msg);
  case ARBOR_EEXIST:
    return http_error(r, 409, "exists", "%s", msg);
  case ARBOR_EBUSY:
    return http_error(r, 409, "in_use", "%s", msg);
  case ARBOR_ESTATE:
    return http_error(r, 409, "stopping", "%s", msg);
  case ARBOR_EFINISHED:
    return http_error(r, 409, "finished", "%s", msg);
  default:
    return http_error(r, 500, "internal", "%s: %s", what, msg);
  }
}

/* {"id": ID, "name": NAME, <flag>: 1} with status (and a Location for 201). */
static enum MHD_Result answer(struct http_req *r, unsigned status, uint64_t id,
                              const char *name, const char *flag, int value) {
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return http_oom(r);
  http_jadd_u64(&cx, o, "id", id);
  http_jadd_str(&cx, o, "name", name);
  if (flag != NULL)
    http_jadd_bool(&cx, o, flag, value);
  if (cx.oom) {
    cJSON_Delete(o);
    return http_oom(r);
  }
  char location[64];
  snprintf(location, sizeof location, "/api/v1/nodes/%" PRIu64, id);
  return http_json_at(r, status, o, status == 201 ? location : NULL);
}

/* The name of the node id now (the body named it; the tree says it best). */
static const char *node_name(struct http_req *r, uint64_t id) {
  arbor_node_t *n = arbor_node_find(r->rt, id);
  return n != NULL ? arbor_node_name(n) : NULL;
}

enum MHD_Result http_services_add(struct http_req *r) {
  enum MHD_Result ret;
  const arbor_admin_services_t *s = services_of(r, &ret);
  if (s == NULL)
    return ret;
  char msg[MSG_MAX] = "";
  uint64_t id = 0;
  int rc = s->add(s->arg, r->body, r->body_len, &id, msg, sizeof msg);
  if (rc < 0)
    return refused(r, rc, "adding the service", msg);
  return answer(r, 201, id, node_name(r, id), NULL, 0);
}

enum MHD_Result http_services_update(struct http_req *r) {
  enum MHD_Result ret;
  const arbor_admin_services_t *s = services_of(r, &ret);
  if (s == NULL)
    return ret;
  char msg[MSG_MAX] = "";
  uint64_t id = 0;
  int restarted = 1;
  int rc = s->update(s->arg, r->params[0], r->body, r->body_len, &id, &restarted, msg,
                     sizeof msg);
  if (rc < 0)
    return refused(r, rc, "updating the service", msg);
  /* 202: the restart happens from the loop; 200 when nothing had to change. */
  return answer(r, restarted ? 202 : 200, id, r->params[0], "restarted", restarted);
}

enum MHD_Result http_services_remove(struct http_req *r) {
  enum MHD_Result ret;
  const arbor_admin_services_t *s = services_of(r, &ret);
  if (s == NULL)
    return ret;
  char msg[MSG_MAX] = "";
  uint64_t id = 0;
  int rc = s->remove(s->arg, r->params[0], &id, msg, sizeof msg);
  if (rc < 0)
    return refused(r, rc, "removing the service", msg);
  return answer(r, 202, id, r->params[0], "cancel_requested", 1);
}
