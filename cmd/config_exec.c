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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "config.h"

struct out {
  char *key;
  size_t keylen;
  char *msg;
  size_t msglen;
};

__attribute__((format(printf, 3, 4))) static int bad(struct out *o, const char *key,
                                                     const char *fmt, ...) {
  snprintf(o->key, o->keylen, "%s", key);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->msg, o->msglen, fmt, ap);
  va_end(ap);
  return -1;
}

static int oom(struct out *o) { return bad(o, "", "out of memory"); }

/* A user or group: a non-empty string, or an id as a number (kept as text). */
static int get_id(struct out *o, const cJSON *obj, const char *key, char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  if (v == NULL)
    return 0;
  if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
      v->valuedouble < 4294967295.0 && v->valuedouble == floor(v->valuedouble)) {
    if (asprintf(out, "%.0f", v->valuedouble) < 0)
      return oom(o);
    return 0;
  }
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
    return bad(o, key, "expected a %s name or a number", strcmp(key, "user") == 0 ? "user" : "group");
  return (*out = strdup(v->valuestring)) == NULL ? oom(o) : 0;
}

static int get_groups(struct out *o, const cJSON *obj, char ***out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "groups");
  *out = NULL;
  if (v == NULL)
    return 0;
  if (!cJSON_IsArray(v))
    return bad(o, "groups", "expected an array of group names or numbers");
  size_t n = (size_t)cJSON_GetArraySize(v);
  if (n == 0)
    return 0;
  if ((*out = calloc(n + 1, sizeof **out)) == NULL)
    return oom(o);
  size_t i = 0;
  for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
    char key[32];
    snprintf(key, sizeof key, "groups[%zu]", i);
    if (cJSON_IsNumber(e) && isfinite(e->valuedouble) && e->valuedouble >= 0 &&
        e->valuedouble < 4294967295.0 && e->valuedouble == floor(e->valuedouble)) {
      if (asprintf(&(*out)[i], "%.0f", e->valuedouble) < 0) {
        (*out)[i] = NULL;
        return oom(o);
      }
    } else if (cJSON_IsString(e) && e->valuestring[0] != '\0') {
      if (((*out)[i] = strdup(e->valuestring)) == NULL)
        return oom(o);
    } else {
      return bad(o, key, "expected a group name or a number");
    }
  }
  return 0;
}

/* "0027": a string of octal digits. A JSON number is refused: JSON has no octal,
 * so 027 is not valid JSON and 27 would be read as decimal 27 (octal 033),
 * which is not what anyone who writes a umask means. */
static int get_umask(struct out *o, const cJSON *obj, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "umask");
  *out = -1;
  if (v == NULL)
    return 0;
  const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
  if (s == NULL || *s == '\0' || strlen(s) > 4 || strspn(s, "01234567") != strlen(s) ||
      strtol(s, NULL, 8) > 0777)
    return bad(o, "umask", "expected a string of octal digits from \"0000\" to \"0777\", such "
                           "as \"0027\"%s",
               cJSON_IsNumber(v) ? " (not a number: JSON numbers are decimal, so 27 would "
                                   "mean octal 033)"
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
static int get_rlimits(struct out *o, const cJSON *obj, struct config_node *n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "rlimits");
  if (v == NULL)
    return 0;
  if (!cJSON_IsObject(v))
    return bad(o, "rlimits", "expected an object of limits ({\"nofile\": 65536, \"core\": "
                             "\"unlimited\"})");
  size_t count = (size_t)cJSON_GetArraySize(v);
  if (count == 0)
    return 0;
  if ((n->rlimits = calloc(count, sizeof *n->rlimits)) == NULL)
    return oom(o);
  for (const cJSON *e = v->child; e != NULL; e = e->next) {
    char key[96];
    snprintf(key, sizeof key, "rlimits.%.64s", e->string);
    arbor_rlimit_t *l = &n->rlimits[n->nrlimits];
    if ((l->name = strdup(e->string)) == NULL)
      return oom(o);
    n->nrlimits++;
    if (cJSON_IsObject(e)) {
      const cJSON *soft = cJSON_GetObjectItemCaseSensitive(e, "soft");
      const cJSON *hard = cJSON_GetObjectItemCaseSensitive(e, "hard");
      if (cJSON_GetArraySize(e) != 2 || soft == NULL || hard == NULL ||
          limit_value(soft, &l->soft) < 0 || limit_value(hard, &l->hard) < 0)
        return bad(o, key, "expected {\"soft\": N, \"hard\": N}, each an integer or "
                           "\"unlimited\"");
    } else if (limit_value(e, &l->soft) == 0) {
      l->hard = l->soft;         /* one number: both, as systemd's LimitNOFILE=N */
    } else {
      return bad(o, key, "expected an integer, \"unlimited\" or {\"soft\": N, \"hard\": N}");
    }
  }
  return 0;
}

int config_exec_parse(const struct cJSON *obj, const char *dir, struct config_node *n,
                      char *key, size_t keylen, char *msg, size_t msglen) {
  struct out o = {key, keylen, msg, msglen};
  if (get_id(&o, obj, "user", &n->user) < 0 || get_id(&o, obj, "group", &n->group) < 0 ||
      get_groups(&o, obj, &n->groups) < 0 || get_umask(&o, obj, &n->umask) < 0 ||
      get_rlimits(&o, obj, n) < 0)
    return -1;
  const cJSON *ef = cJSON_GetObjectItemCaseSensitive(obj, "env_file");
  if (ef != NULL) {
    if (!cJSON_IsString(ef) || ef->valuestring[0] == '\0')
      return bad(&o, "env_file", "expected a non-empty string (a file of NAME=VALUE lines)");
    if ((ef->valuestring[0] == '/' ? (n->env_file = strdup(ef->valuestring)) == NULL
                                   : asprintf(&n->env_file, "%s/%s", dir, ef->valuestring) < 0)) {
      n->env_file = NULL;
      return oom(&o);
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
      return bad(&o, "", "%s", text);
    snprintf(key, keylen, "%.*s", (int)(sep - text), text);
    snprintf(msg, msglen, "%s", sep + 2);
    return -1;
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
  for (size_t i = 0; n->groups != NULL && n->groups[i] != NULL; i++)
    free(n->groups[i]);
  free(n->groups);
  for (size_t i = 0; i < n->nrlimits; i++)
    free((char *)n->rlimits[i].name);
  free(n->rlimits);
  free(n->env_file);
}

static int str_eq(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int config_exec_equal(const struct config_node *a, const struct config_node *b) {
  if (!str_eq(a->user, b->user) || !str_eq(a->group, b->group) || a->umask != b->umask ||
      !str_eq(a->env_file, b->env_file) || a->nrlimits != b->nrlimits)
    return 0;
  size_t i = 0;
  for (; a->groups != NULL && b->groups != NULL && a->groups[i] != NULL && b->groups[i] != NULL;
       i++)
    if (strcmp(a->groups[i], b->groups[i]) != 0)
      return 0;
  if ((a->groups != NULL && a->groups[i] != NULL) || (b->groups != NULL && b->groups[i] != NULL))
    return 0;
  for (i = 0; i < a->nrlimits; i++)
    if (strcmp(a->rlimits[i].name, b->rlimits[i].name) != 0 ||
        a->rlimits[i].soft != b->rlimits[i].soft || a->rlimits[i].hard != b->rlimits[i].hard)
      return 0;
  return 1;
}
