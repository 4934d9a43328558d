/* cmd/config_read.h - what every part of the config parser reads values with
 * (config.c, config_probe.c, config_exec.c): one reading context, errors that
 * name the JSON path of the value, key checking, and the common getters.
 *
 * One set, so that every key of the file is refused in the same words:
 *   arbor.json: tree[0].liveness.http.port: expected an integer from 1 to 65535, not ...
 */
#ifndef ARBOR_CMD_CONFIG_READ_H
#define ARBOR_CMD_CONFIG_READ_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#define CONFIG_PATH_MAX 1024     /* a JSON path in a message, NUL included */

/* One file (or request body) being read. */
struct config_read {
  const char *file;              /* what messages start with: "arbor.json", "body" */
  char *dir;                     /* the config's directory, absolute: relative paths */
  char *err;                     /* the first error, one line */
  size_t errlen;
};

/* Fills the error "FILE: PATH: message" ("FILE: message" when path is NULL or
 * empty). Returns -1 so callers can `return config_errorf(...)`. */
__attribute__((format(printf, 3, 4))) int config_errorf(struct config_read *cx, const char *path,
                                                        const char *fmt, ...);
/* The same at path.key (at path when key is NULL or empty). */
__attribute__((format(printf, 4, 5))) int config_error_at(struct config_read *cx,
                                                          const char *path, const char *key,
                                                          const char *fmt, ...);
/* "FILE: out of memory". Returns -1. */
int config_oom(struct config_read *cx);

/* out (CONFIG_PATH_MAX bytes) = path + "." + key (key alone when path is
 * empty), or path + "[i]"; a path too long to fit ends in "...". */
void config_path_key(char *out, const char *path, const char *key);
void config_path_index(char *out, const char *path, size_t i);

/* "an object", "an array", "a string", "a number", "a boolean", "null". */
const char *config_type_name(const cJSON *v);

/* Every member's key of obj is in allowed (NULL-terminated) and appears once;
 * else -1 with "unknown key" (listing the allowed ones) or "duplicate key" at
 * path. */
int config_check_keys(struct config_read *cx, const cJSON *obj, const char *path,
                      const char *const *allowed);

/* The value under key of obj, at path, or the default when the key is absent.
 * Each returns 0, or -1 with the error at path.key:
 *   _uint: an integer in [min, max];
 *   _bool: true or false (dflt may be anything, e.g. -1 for "not said");
 *   _string: a non-empty string, copied (NULL when absent, or null if null_ok). */
int config_get_uint(struct config_read *cx, const cJSON *obj, const char *path, const char *key,
                    uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out);
int config_get_bool(struct config_read *cx, const cJSON *obj, const char *path, const char *key,
                    int dflt, int *out);
int config_get_string(struct config_read *cx, const cJSON *obj, const char *path,
                      const char *key, int null_ok, char **out);

/* *p, when relative, made absolute from the config's directory (takes *p). */
int config_absolutize(struct config_read *cx, char **p);

/* NULL-terminated string arrays and strings as the config holds them: _dup
 * copies a JSON array of strings (checked by the caller; NULL when out of
 * memory); _free takes NULL; _eq: NULL equals only NULL. */
char **config_strv_dup(const cJSON *arr);
void config_strv_free(char **v);
int config_strv_eq(char *const *a, char *const *b);
int config_str_eq(const char *a, const char *b);

#endif /* ARBOR_CMD_CONFIG_READ_H */
