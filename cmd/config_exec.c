/* cmd/config_exec.c - a service's execution keys in the config: user, group,
 * groups, umask, rlimits, env_file (docs/config.md, "Running as another user,
 * umask, rlimits, env file").
 *
 * The JSON is checked here (types, the umask's octal string, the rlimits'
 * shapes); what only the system can say (does the user exist, may arbor switch
 * to it, does the env file parse) is asked of libarbor's own check,
 * arbor_service_exec_check, so that `arbor run --check`, a load and a reload
 * refuse exactly what arbor_service_add would, with the key path named:
 *   arbor.json: tree[0].user: arbor runs as uid 1000, not root: it cannot run
 *   "api" as user "www-data"
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "config.h"
#include "config_read.h"

static int oom(struct config_read *cx, const char *path) {
  return config_errorf(cx, path, "out of memory");
}

/* A user or group as text: a non-empty string as it is, an id as a number in
 * decimal. Returns 0, 1 when v is neither, -1 when out of memory. */
static int id_text(const cJSON *v, char **out) {
  if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
      v->valuedouble < 4294967295.0 && v->valuedouble == floor(v->valuedouble)) {
    if (asprintf(out, "%.0f", v->valuedouble) < 0) {
      *out = NULL;
      return -1;
    }
    return 0;
  }
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
    return 1;
  return (*out = strdup(v->valuestring)) == NULL ? -1 : 0;
}

static int get_id(struct config_read *cx, const cJSON *obj, const char *path, const char *key,
                  char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  int rc = v != NULL ? id_text(v, out) : 0;
  if (rc > 0)
    return config_error_at(cx, path, key, "expected a %s name or a number",
                           strcmp(key, "user") == 0 ? "user" : "group");
  return rc < 0 ? oom(cx, path) : 0;
}

static int get_groups(struct config_read *cx, const cJSON *obj, const char *path,
                      char ***out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "groups");
  *out = NULL;
  if (v == NULL)
    return 0;
  if (!cJSON_IsArray(v))
    return config_error_at(cx, path, "groups", "expected an array of group names or numbers");
  size_t n = (size_t)cJSON_GetArraySize(v);
  if (n == 0)
    return 0;
  if ((*out = calloc(n + 1, sizeof **out)) == NULL)
    return oom(cx, path);
  size_t i = 0;
  for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
    int rc = id_text(e, &(*out)[i]);
    if (rc < 0)
      return oom(cx, path);
    if (rc > 0) {
      char key[32];
      snprintf(key, sizeof key, "groups[%zu]", i);
      return config_error_at(cx, path, key, "expected a group name or a number");
    }
  }
  return 0;
}

/* "0027": a string of octal digits. A JSON number is refused: JSON has no octal,
 * so 027 is not valid JSON and 27 would be read as decimal 27 (octal 033),
 * which is not what anyone who writes a umask means. */
static int get_umask(struct config_read *cx, const cJSON *obj, const char *path, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "umask");
  *out = -1;
  if (v == NULL)
    return 0;
  const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
  if (s == NULL || *s == '\0' || strlen(s) > 4 || strspn(s, "01234567") != strlen(s) ||
      strtol(s, NULL, 8) > 0777)
    return config_error_at(cx, path, "umask", "expected a string of octal digits from \"0000\" "
                                              "to \"0777\", such as \"0027\"%s",
                           cJSON_IsNumber(v) ? " (not a number: JSON numbers are decimal, so 27 "
                                               "would mean octal 033)"
                                             : "");
  *out = (int)strtol(s, NULL, 8);
  return 0;
}

/* An rlimit value: a non-negative integer or "unlimited". */
static int limit_value(const cJSON *v, uint64_t *out) {
  if (cJSON_IsString(v) && strcmp(v->valuestring, "unlimited") == 0) {
    *out = ARBOR_RLIMIT_INFINITY;
    return 0;
  }
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
      v->valuedouble >= 9007199254740992.0 || v->valuedouble != floor(v->valuedouble))
    return -1;
  *out = (uint64_t)v->valuedouble;
  return 0;
}

/* {"nofile": 65536, "core": "unlimited", "nproc": {"soft": 512, "hard": 1024}} */
static int get_rlimits(struct config_read *cx, const cJSON *obj, const char *path,
                       struct config_node *n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "rlimits");
  if (v == NULL)
    return 0;
  if (!cJSON_IsObject(v))
    return config_error_at(cx, path, "rlimits", "expected an object of limits ({\"nofile\": "
                                                "65536, \"core\": \"unlimited\"})");
  size_t count = (size_t)cJSON_GetArraySize(v);
  if (count == 0)
    return 0;
  if ((n->rlimits = calloc(count, sizeof *n->rlimits)) == NULL)
    return oom(cx, path);
  for (const cJSON *e = v->child; e != NULL; e = e->next) {
    char key[96];
    snprintf(key, sizeof key, "rlimits.%.64s", e->string);
    arbor_rlimit_t *l = &n->rlimits[n->nrlimits];
    if ((l->name = strdup(e->string)) == NULL)
      return oom(cx, path);
    n->nrlimits++;
    if (cJSON_IsObject(e)) {
      const cJSON *soft = cJSON_GetObjectItemCaseSensitive(e, "soft");
      const cJSON *hard = cJSON_GetObjectItemCaseSensitive(e, "hard");
      if (cJSON_GetArraySize(e) != 2 || soft == NULL || hard == NULL ||
          limit_value(soft, &l->soft) < 0 || limit_value(hard, &l->hard) < 0)
        return config_error_at(cx, path, key, "expected {\"soft\": N, \"hard\": N}, each an "
                                              "integer or \"unlimited\"");
    } else if (limit_value(e, &l->soft) == 0) {
      l->hard = l->soft;         /* one number: both, as systemd's LimitNOFILE=N */
    } else {
      return config_error_at(cx, path, key,
                             "expected an integer, \"unlimited\" or {\"soft\": N, \"hard\": N}");
    }
  }
  return 0;
}

int config_exec_parse(struct config_read *cx, const struct cJSON *obj, const char *path,
                      struct config_node *n) {
  if (get_id(cx, obj, path, "user", &n->user) < 0 ||
      get_id(cx, obj, path, "group", &n->group) < 0 || get_groups(cx, obj, path, &n->groups) < 0 ||
      get_umask(cx, obj, path, &n->umask) < 0 || get_rlimits(cx, obj, path, n) < 0)
    return -1;
  const cJSON *ef = cJSON_GetObjectItemCaseSensitive(obj, "env_file");
  if (ef != NULL) {
    if (!cJSON_IsString(ef) || ef->valuestring[0] == '\0')
      return config_error_at(cx, path, "env_file",
                             "expected a non-empty string (a file of NAME=VALUE lines)");
    const char *f = ef->valuestring;
    if ((f[0] == '/' ? (n->env_file = strdup(f)) == NULL
                     : asprintf(&n->env_file, "%s/%s", cx->dir, f) < 0)) {
      n->env_file = NULL;
      return oom(cx, path);
    }
  }
  /* What only the system knows, as arbor_service_add will see it. Its message
   * starts with the field: "user: no user named ...". */
  arbor_service_spec_t spec = {.name = n->name};
  config_exec_spec(n, &spec);
  char text[CONFIG_ERR_MAX];
  if (arbor_service_exec_check(&spec, text, sizeof text) < 0) {
    const char *sep = strstr(text, ": ");
    if (sep == NULL)
      return config_errorf(cx, path, "%s", text);
    char key[CONFIG_PATH_MAX];
    snprintf(key, sizeof key, "%.*s", (int)(sep - text), text);
    return config_error_at(cx, path, key, "%s", sep + 2);
  }
  return 0;
}

void config_exec_spec(const struct config_node *n, arbor_service_spec_t *spec) {
  spec->user = n->user;
  spec->group = n->group;
  spec->groups = n->groups;
  spec->umask_set = n->umask >= 0;
  spec->umask = n->umask >= 0 ? (unsigned)n->umask : 0;
  spec->rlimits = n->rlimits;
  spec->nrlimits = n->nrlimits;
  spec->env_file = n->env_file;
}

void config_exec_free(struct config_node *n) {
  free(n->user);
  free(n->group);
  config_strv_free(n->groups);
  for (size_t i = 0; i < n->nrlimits; i++)
    free((char *)n->rlimits[i].name);
  free(n->rlimits);
  free(n->env_file);
}

int config_exec_equal(const struct config_node *a, const struct config_node *b) {
  if (!config_str_eq(a->user, b->user) || !config_str_eq(a->group, b->group) ||
      a->umask != b->umask || !config_str_eq(a->env_file, b->env_file) ||
      !config_strv_eq(a->groups, b->groups) || a->nrlimits != b->nrlimits)
    return 0;
  for (size_t i = 0; i < a->nrlimits; i++)
    if (strcmp(a->rlimits[i].name, b->rlimits[i].name) != 0 ||
        a->rlimits[i].soft != b->rlimits[i].soft || a->rlimits[i].hard != b->rlimits[i].hard)
      return 0;
  return 1;
}
