/* cmd/config_probe.c - a service's "liveness" and "readiness" objects in the
 * config (docs/config.md, "Health probes"), parsed into arbor_health_probe_t
 * with every default filled in, so that comparing two of them on a reload
 * compares behaviour:
 *   {"http": {"port": 8080, "path": "/healthz", "host": "127.0.0.1"},
 *    "interval_ms": 1000, "timeout_ms": 500, "failure_threshold": 3,
 *    "success_threshold": 1, "initial_delay_ms": 0}
 *   {"tcp": {"port": 6379}}          {"exec": ["/usr/local/bin/check", "arg"]}
 * Exactly one of http, tcp and exec. Errors name the JSON path as config.c's do
 * ("arbor.json: tree[0].liveness.http.port: expected an integer from 1 to 65535"),
 * and say what is checked here that arbor_service_add would refuse, so that a
 * bad probe never gets as far as the runtime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "config.h"
#include "config_read.h"

#define TIME_MAX_MS 86400000u    /* a day, as arbor_service_add */
#define THRESHOLD_MAX 1000000u

static int host_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 253)
    return 0;
  for (; *s != '\0'; s++)
    if (!(((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') || (*s >= '0' && *s <= '9') ||
          strchr(".-_:%", *s) != NULL))
      return 0;
  return 1;
}

static int path_ok(const char *s) {
  if (s[0] != '/' || strlen(s) > 1024)
    return 0;
  for (; *s != '\0'; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
      return 0;
  return 1;
}

/* The string under key, if any, that ok() accepts, copied into *out; else the
 * error "expected WHAT, not ...". */
static int get_text(struct config_read *cx, const cJSON *obj, const char *path, const char *key,
                    int (*ok)(const char *), const char *what, char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (v == NULL)
    return 0;
  if (!cJSON_IsString(v) || !ok(v->valuestring))
    return config_error_at(cx, path, key, "expected %s, not %s", what,
                           cJSON_IsString(v) ? "this string" : config_type_name(v));
  if ((*out = strdup(v->valuestring)) == NULL)
    return config_errorf(cx, path, "out of memory");
  return 0;
}

/* {"port": N, "host": "...", "path": "/..."} of http (path allowed) or tcp. */
static int parse_target(struct config_read *cx, const cJSON *v, const char *path, int http,
                        arbor_health_probe_t *p) {
  static const char *const hkeys[] = {"port", "host", "path", NULL};
  static const char *const tkeys[] = {"port", "host", NULL};
  if (!cJSON_IsObject(v))
    return config_errorf(cx, path, "expected an object ({\"port\": 8080%s}), not %s",
                         http ? ", \"path\": \"/healthz\"" : "", config_type_name(v));
  if (config_check_keys(cx, v, path, http ? hkeys : tkeys) < 0)
    return -1;
  uint64_t port;
  if (cJSON_GetObjectItemCaseSensitive(v, "port") == NULL)
    return config_error_at(cx, path, "port",
                           "expected an integer from 1 to 65535 (the port to probe)");
  if (config_get_uint(cx, v, path, "port", 1, 65535, 0, &port) < 0)
    return -1;
  p->port = (int)port;
  char *host = NULL, *upath = NULL;
  int rc = get_text(cx, v, path, "host", host_ok,
                    "a host name or an IP address (letters, digits, '.', '-', ':')", &host);
  p->host = host;
  if (rc < 0 || !http)
    return rc;
  rc = get_text(cx, v, path, "path", path_ok,
                "a path starting with '/', without spaces or control characters", &upath);
  p->path = upath;
  return rc;
}

static int parse_exec(struct config_read *cx, const cJSON *v, const char *path,
                      arbor_health_probe_t *p) {
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  int ok = n > 0;
  for (const cJSON *a = ok ? v->child : NULL; a != NULL; a = a->next)
    ok = ok && cJSON_IsString(a) && (a != v->child || a->valuestring[0] != '\0');
  if (!ok)
    return config_errorf(cx, path, "expected a non-empty array of strings (the command and "
                                   "its arguments), not %s",
                         cJSON_IsArray(v) ? "this array" : config_type_name(v));
  if ((p->argv = config_strv_dup(v)) == NULL)
    return config_errorf(cx, path, "out of memory");
  return 0;
}

void config_probe_free(arbor_health_probe_t *p) {
  if (p == NULL)
    return;
  free((char *)p->host);
  free((char *)p->path);
  config_strv_free((char **)p->argv);
  free(p);
}

int config_probe_parse(struct config_read *cx, const cJSON *obj, const char *path,
                       const char *key, arbor_health_probe_t **out) {
  static const char *const keys[] = {"http", "tcp", "exec", "interval_ms", "timeout_ms",
                                     "failure_threshold", "success_threshold",
                                     "initial_delay_ms", NULL};
  *out = NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (v == NULL || cJSON_IsNull(v))
    return 0;
  char p[CONFIG_PATH_MAX], p2[CONFIG_PATH_MAX];
  config_path_key(p, path, key);
  if (!cJSON_IsObject(v))
    return config_errorf(cx, p, "expected an object with one of \"http\", \"tcp\" or \"exec\", "
                                "not %s", config_type_name(v));
  if (config_check_keys(cx, v, p, keys) < 0)
    return -1;
  const cJSON *http = cJSON_GetObjectItemCaseSensitive(v, "http");
  const cJSON *tcp = cJSON_GetObjectItemCaseSensitive(v, "tcp");
  const cJSON *ex = cJSON_GetObjectItemCaseSensitive(v, "exec");
  if ((http != NULL) + (tcp != NULL) + (ex != NULL) != 1)
    return config_errorf(cx, p, "expected exactly one of \"http\", \"tcp\" and \"exec\" (what "
                                "to probe), not %s",
                         http == NULL && tcp == NULL && ex == NULL ? "none" : "several");
  arbor_health_probe_t *hp = calloc(1, sizeof *hp);
  if (hp == NULL)
    return config_errorf(cx, p, "out of memory");
  int liveness = strcmp(key, "liveness") == 0;
  uint64_t interval, timeout, fails, oks, delay;
  int rc;
  if (http != NULL) {
    hp->kind = ARBOR_PROBE_HTTP;
    config_path_key(p2, p, "http");
    rc = parse_target(cx, http, p2, 1, hp);
  } else if (tcp != NULL) {
    hp->kind = ARBOR_PROBE_TCP;
    config_path_key(p2, p, "tcp");
    rc = parse_target(cx, tcp, p2, 0, hp);
  } else {
    hp->kind = ARBOR_PROBE_EXEC;
    config_path_key(p2, p, "exec");
    rc = parse_exec(cx, ex, p2, hp);
  }
  if (rc < 0 || config_get_uint(cx, v, p, "interval_ms", 1, TIME_MAX_MS, 10000, &interval) < 0 ||
      config_get_uint(cx, v, p, "timeout_ms", 1, TIME_MAX_MS, 1000, &timeout) < 0 ||
      config_get_uint(cx, v, p, "failure_threshold", 1, THRESHOLD_MAX, 3, &fails) < 0 ||
      config_get_uint(cx, v, p, "success_threshold", 1, THRESHOLD_MAX, 1, &oks) < 0 ||
      config_get_uint(cx, v, p, "initial_delay_ms", 0, TIME_MAX_MS, 0, &delay) < 0) {
    config_probe_free(hp);
    return -1;
  }
  if (liveness && oks != 1) {
    config_probe_free(hp);
    return config_error_at(cx, p, "success_threshold", "must be 1 for a liveness probe (one "
                                                       "pass shows it is alive; as in Kubernetes)");
  }
  /* Defaults filled in and host and path resolved as the runtime would, so that
   * an explicit default compares equal to an absent key on a reload. */
  if (hp->kind != ARBOR_PROBE_EXEC && hp->host == NULL && (hp->host = strdup("127.0.0.1")) == NULL)
    rc = -1;
  if (hp->kind == ARBOR_PROBE_HTTP && hp->path == NULL && (hp->path = strdup("/")) == NULL)
    rc = -1;
  if (rc < 0) {
    config_probe_free(hp);
    return config_errorf(cx, p, "out of memory");
  }
  hp->interval_ms = interval;
  hp->timeout_ms = timeout;
  hp->failure_threshold = (uint32_t)fails;
  hp->success_threshold = (uint32_t)oks;
  hp->initial_delay_ms = delay;
  *out = hp;
  return 0;
}

int config_probe_equal(const arbor_health_probe_t *a, const arbor_health_probe_t *b) {
  if (a == NULL || b == NULL)
    return a == b;
  if (a->kind != b->kind || a->port != b->port || !config_str_eq(a->host, b->host) ||
      !config_str_eq(a->path, b->path) || a->interval_ms != b->interval_ms ||
      a->timeout_ms != b->timeout_ms || a->failure_threshold != b->failure_threshold ||
      a->success_threshold != b->success_threshold || a->initial_delay_ms != b->initial_delay_ms)
    return 0;
  return config_strv_eq(a->argv, b->argv);
}
