/* cmd/config_read.c - the config parser's shared reading helpers (see
 * config_read.h): errors with the JSON path, key checking, the getters.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_read.h"

/* line into err (errlen bytes, NUL-terminated, cut if longer) with every
 * control character written as \n, \t or \xHH. Messages quote the file's
 * keys and strings, in which JSON allows any control character ("\n" is two
 * bytes of text), and an error must stay the one line config.h promises: one
 * line on stderr, one journal entry. */
static void copy_one_line(char *err, size_t errlen, const char *line) {
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)line; *p != '\0'; p++) {
    char esc[8];
    int n = 1;
    if (*p >= 0x20 && *p != 0x7f)
      esc[0] = (char)*p;
    else if (*p == '\n' || *p == '\t')
      n = snprintf(esc, sizeof esc, "\\%c", *p == '\n' ? 'n' : 't');
    else
      n = snprintf(esc, sizeof esc, "\\x%02x", *p);
    if (o + (size_t)n >= errlen)
      break;
    memcpy(err + o, esc, (size_t)n);
    o += (size_t)n;
  }
  if (errlen > 0)
    err[o] = '\0';
}

static int verrorf(struct config_read *cx, const char *path, const char *fmt, va_list ap) {
  char msg[CONFIG_ERR_MAX], line[CONFIG_ERR_MAX + 64];   /* cut to errlen after */
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (path != NULL && path[0] != '\0')
    snprintf(line, sizeof line, "%s: %s: %s", cx->file, path, msg);
  else
    snprintf(line, sizeof line, "%s: %s", cx->file, msg);
  copy_one_line(cx->err, cx->errlen, line);
  return -1;
}

int config_errorf(struct config_read *cx, const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verrorf(cx, path, fmt, ap);
  va_end(ap);
  return -1;
}

int config_error_at(struct config_read *cx, const char *path, const char *key, const char *fmt,
                    ...) {
  char p[CONFIG_PATH_MAX];
  if (key != NULL && key[0] != '\0')
    config_path_key(p, path, key);
  va_list ap;
  va_start(ap, fmt);
  verrorf(cx, key != NULL && key[0] != '\0' ? p : path, fmt, ap);
  va_end(ap);
  return -1;
}

int config_oom(struct config_read *cx) { return config_errorf(cx, NULL, "out of memory"); }

void config_path_key(char *out, const char *path, const char *key) {
  if (snprintf(out, CONFIG_PATH_MAX, "%s%s%s", path, path[0] != '\0' ? "." : "", key) >=
      CONFIG_PATH_MAX)
    memcpy(out + CONFIG_PATH_MAX - 4, "...", 4);   /* 64 levels of long keys: say it is cut */
}

void config_path_index(char *out, const char *path, size_t i) {
  if (snprintf(out, CONFIG_PATH_MAX, "%s[%zu]", path, i) >= CONFIG_PATH_MAX)
    memcpy(out + CONFIG_PATH_MAX - 4, "...", 4);
}

const char *config_type_name(const cJSON *v) {
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  return "null";
}

/* A typo must not pass silently ("restrat" would leave a service on its default
 * restart type), so an unknown key is refused, naming those that are known. */
int config_check_keys(struct config_read *cx, const cJSON *obj, const char *path,
                      const char *const *allowed) {
  for (const cJSON *m = obj->child; m != NULL; m = m->next) {
    size_t i;
    for (i = 0; allowed[i] != NULL; i++)
      if (strcmp(m->string, allowed[i]) == 0)
        break;
    if (allowed[i] == NULL) {
      char list[CONFIG_ERR_MAX - 64] = "";   /* a service has 26 keys: ~300 bytes */
      size_t used = 0;
      for (size_t k = 0; allowed[k] != NULL && used < sizeof list; k++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k > 0 ? ", " : "",
                                 allowed[k]);
      return config_errorf(cx, path, "unknown key \"%s\" (expected one of: %s)", m->string,
                           list);
    }
    for (const cJSON *o = obj->child; o != m; o = o->next)
      if (strcmp(o->string, m->string) == 0)
        return config_errorf(cx, path, "duplicate key \"%s\"", m->string);
  }
  return 0;
}

int config_get_uint(struct config_read *cx, const cJSON *obj, const char *path, const char *key,
                    uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (v == NULL) {
    *out = dflt;
    return 0;
  }
  double d = v->valuedouble;
  if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d) || d < (double)min || d > (double)max) {
    return config_error_at(cx, path, key, "expected an integer from %llu to %llu, not %s",
                           (unsigned long long)min, (unsigned long long)max,
                           cJSON_IsNumber(v) ? "this number" : config_type_name(v));
  }
  *out = (uint64_t)d;
  return 0;
}

int config_get_bool(struct config_read *cx, const cJSON *obj, const char *path, const char *key,
                    int dflt, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (v == NULL) {
    *out = dflt;
    return 0;
  }
  if (!cJSON_IsBool(v)) {
    return config_error_at(cx, path, key, "expected true or false, not %s", config_type_name(v));
  }
  *out = cJSON_IsTrue(v);
  return 0;
}

int config_get_string(struct config_read *cx, const cJSON *obj, const char *path,
                      const char *key, int null_ok, char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  if (v == NULL || (null_ok && cJSON_IsNull(v)))
    return 0;
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
    return config_error_at(cx, path, key, "expected a non-empty string%s, not %s",
                           null_ok ? " or null" : "",
                           cJSON_IsString(v) ? "\"\"" : config_type_name(v));
  }
  if ((*out = strdup(v->valuestring)) == NULL)
    return config_oom(cx);
  return 0;
}

int config_absolutize(struct config_read *cx, char **p) {
  if (*p == NULL || (*p)[0] == '/')
    return 0;
  char *abs = NULL;
  if (asprintf(&abs, "%s/%s", cx->dir, *p) < 0)
    return config_oom(cx);
  free(*p);
  *p = abs;
  return 0;
}

char **config_strv_dup(const cJSON *arr) {
  char **v = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *v);
  size_t i = 0;
  for (const cJSON *e = arr->child; v != NULL && e != NULL; e = e->next, i++)
    if ((v[i] = strdup(e->valuestring)) == NULL) {
      config_strv_free(v);
      return NULL;
    }
  return v;
}

void config_strv_free(char **v) {
  if (v == NULL)
    return;
  for (char **p = v; *p != NULL; p++)
    free(*p);
  free(v);
}

int config_strv_eq(char *const *a, char *const *b) {
  if (a == NULL || b == NULL)
    return a == b;
  for (; *a != NULL && *b != NULL; a++, b++)
    if (strcmp(*a, *b) != 0)
      return 0;
  return *a == NULL && *b == NULL;
}

int config_str_eq(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}
