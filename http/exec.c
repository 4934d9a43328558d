/* http/exec.c - service.exec in a node's detail: how a process service's
 * program is executed (user, group, groups, umask, rlimits, env_file), from
 * arbor_service_exec_info, as resolved when the service was added: the ids it
 * really runs with beside the names the config gave. Left out for services that
 * set none of it, as service.log_file is. */
#include <stdio.h>

#include "resources.h"

static void add_limit(struct http_jcx *cx, cJSON *o, const char *name, uint64_t v) {
  if (v == ARBOR_RLIMIT_INFINITY)
    http_jadd_str(cx, o, name, "unlimited");
  else
    http_jadd_u64(cx, o, name, v);
}

/* An id, or null when it is arbor's own. */
static void add_id(struct http_jcx *cx, cJSON *o, const char *name, int64_t id) {
  if (id < 0)
    http_jadd(cx, o, name, cJSON_CreateNull());
  else
    http_jadd_i64(cx, o, name, id);
}

void http_jadd_exec(struct http_jcx *cx, cJSON *s, arbor_node_t *node) {
  arbor_exec_info_t ei;
  if (arbor_service_exec_info(node, &ei) != 0 || !ei.enabled)
    return;
  cJSON *o = http_jadd(cx, s, "exec", cJSON_CreateObject());
  if (o == NULL)
    return;
  http_jadd_str(cx, o, "user", ei.user);
  http_jadd_str(cx, o, "group", ei.group);
  add_id(cx, o, "uid", ei.uid);
  add_id(cx, o, "gid", ei.gid);
  if (!ei.groups_set) {
    http_jadd(cx, o, "groups", cJSON_CreateNull());
  } else {
    cJSON *g = http_jadd(cx, o, "groups", cJSON_CreateArray());
    for (size_t i = 0; g != NULL && i < ei.ngroups; i++)
      http_jpush(cx, g, cJSON_CreateNumber((double)ei.groups[i]));
  }
  char mask[8];
  snprintf(mask, sizeof mask, "%04o", (unsigned)(ei.umask & 0777));
  http_jadd_str(cx, o, "umask", ei.umask >= 0 ? mask : NULL);
  cJSON *r = http_jadd(cx, o, "rlimits", cJSON_CreateObject());
  for (size_t i = 0; r != NULL && i < ei.nrlimits; i++) {
    cJSON *l = http_jadd(cx, r, ei.rlimits[i].name, cJSON_CreateObject());
    if (l == NULL)
      return;
    add_limit(cx, l, "soft", ei.rlimits[i].soft);
    add_limit(cx, l, "hard", ei.rlimits[i].hard);
  }
  http_jadd_str(cx, o, "env_file", ei.env_file);
}
