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
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "config.h"

#define PATH_LEN 1024
#define TIME_MAX_MS 86400000u    /* a day, as arbor_service_add */
#define THRESHOLD_MAX 1000000u

struct pctx {
  const char *file;
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int perr(struct pctx *cx, const char *path,
                                                      const char *fmt, ...) {
  char msg[CONFIG_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(cx->err, cx->errlen, "%s: %s: %s", cx->file, path, msg);
  return -1;
}

static void sub(char *out, const char *path, const char *key) {
  if (snprintf(out, PATH_LEN, "%s%s%s", path, path[0] != '\0' ? "." : "", key) >= PATH_LEN)
    memcpy(out + PATH_LEN - 4, "...", 4);
}

static const char *kind_of(const cJSON *v) {
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  return "null";
}

static int keys_ok(struct pctx *cx, const cJSON *obj, const char *path,
                   const char *const *allowed, const char *list) {
  for (const cJSON *m = obj->child; m != NULL; m = m->next) {
    size_t i = 0;
    while (allowed[i] != NULL && strcmp(allowed[i], m->string) != 0)
      i++;
    if (allowed[i] == NULL)
      return perr(cx, path, "unknown key \"%s\" (expected one of: %s)", m->string, list);
    for (const cJSON *o = obj->child; o != m; o = o->next)
      if (strcmp(o->string, m->string) == 0)
        return perr(cx, path, "duplicate key \"%s\"", m->string);
  }
  return 0;
}

static int uint_at(struct pctx *cx, const cJSON *obj, const char *path, const char *key,
                   uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = dflt;
  if (v == NULL)
    return 0;
  double d = v->valuedouble;
  if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d) || d < (double)min || d > (double)max) {
    char p[PATH_LEN];
    sub(p, path, key);
    return perr(cx, p, "expected an integer from %llu to %llu, not %s", (unsigned long long)min,
                (unsigned long long)max, cJSON_IsNumber(v) ? "this number" : kind_of(v));
  }
  *out = (uint64_t)d;
  return 0;
}

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

/* {"port": N, "host": "...", "path": "/..."} of http (path allowed) or tcp. */
static int parse_target(struct pctx *cx, const cJSON *v, const char *path, int http,
                        arbor_health_probe_t *p) {
  static const char *const hkeys[] = {"port", "host", "path", NULL};
  static const char *const tkeys[] = {"port", "host", NULL};
  if (!cJSON_IsObject(v))
    return perr(cx, path, "expected an object ({\"port\": 8080%s}), not %s",
                http ? ", \"path\": \"/healthz\"" : "", kind_of(v));
  if (keys_ok(cx, v, path, http ? hkeys : tkeys, http ? "port, host, path" : "port, host") < 0)
    return -1;
  char p2[PATH_LEN];
  uint64_t port;
  if (cJSON_GetObjectItemCaseSensitive(v, "port") == NULL) {
    sub(p2, path, "port");
    return perr(cx, p2, "expected an integer from 1 to 65535 (the port to probe)");
  }
  if (uint_at(cx, v, path, "port", 1, 65535, 0, &port) < 0)
    return -1;
  p->port = (int)port;
  const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "host");
  if (h != NULL) {
    sub(p2, path, "host");
    if (!cJSON_IsString(h) || !host_ok(h->valuestring))
      return perr(cx, p2, "expected a host name or an IP address (letters, digits, '.', '-', "
                          "':'), not %s", cJSON_IsString(h) ? "this string" : kind_of(h));
    if ((p->host = strdup(h->valuestring)) == NULL)
      return perr(cx, path, "out of memory");
  }
  const cJSON *u = http ? cJSON_GetObjectItemCaseSensitive(v, "path") : NULL;
  if (u != NULL) {
    sub(p2, path, "path");
    if (!cJSON_IsString(u) || !path_ok(u->valuestring))
      return perr(cx, p2, "expected a path starting with '/', without spaces or control "
                          "characters, not %s", cJSON_IsString(u) ? "this string" : kind_of(u));
    if ((p->path = strdup(u->valuestring)) == NULL)
      return perr(cx, path, "out of memory");
  }
  return 0;
}

static int parse_exec(struct pctx *cx, const cJSON *v, const char *path,
                      arbor_health_probe_t *p) {
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  int ok = n > 0;
  for (const cJSON *a = ok ? v->child : NULL; a != NULL; a = a->next)
    ok = ok && cJSON_IsString(a) && (a != v->child || a->valuestring[0] != '\0');
  if (!ok)
    return perr(cx, path, "expected a non-empty array of strings (the command and its "
                          "arguments), not %s", cJSON_IsArray(v) ? "this array" : kind_of(v));
  char **argv = calloc((size_t)n + 1, sizeof *argv);
  p->argv = argv;
  if (argv == NULL)
    return perr(cx, path, "out of memory");
  size_t i = 0;
  for (const cJSON *a = v->child; a != NULL; a = a->next, i++)
    if ((argv[i] = strdup(a->valuestring)) == NULL)
      return perr(cx, path, "out of memory");
  return 0;
}

void config_probe_free(arbor_health_probe_t *p) {
  if (p == NULL)
    return;
  free((char *)p->host);
  free((char *)p->path);
  if (p->argv != NULL) {
    for (char *const *a = p->argv; *a != NULL; a++)
      free(*a);
    free((char **)p->argv);
  }
  free(p);
}

int config_probe_parse(const cJSON *obj, const char *path, const char *key, const char *file,
                       arbor_health_probe_t **out, char *err, size_t errlen) {
  static const char *const keys[] = {"http", "tcp", "exec", "interval_ms", "timeout_ms",
                                     "failure_threshold", "success_threshold",
                                     "initial_delay_ms", NULL};
  struct pctx cx = {file, err, errlen};
  *out = NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (v == NULL || cJSON_IsNull(v))
    return 0;
  char p[PATH_LEN], p2[PATH_LEN];
  sub(p, path, key);
  if (!cJSON_IsObject(v))
    return perr(&cx, p, "expected an object with one of \"http\", \"tcp\" or \"exec\", not %s",
                kind_of(v));
  if (keys_ok(&cx, v, p, keys, "http, tcp, exec, interval_ms, timeout_ms, failure_threshold, "
                               "success_threshold, initial_delay_ms") < 0)
    return -1;
  const cJSON *http = cJSON_GetObjectItemCaseSensitive(v, "http");
  const cJSON *tcp = cJSON_GetObjectItemCaseSensitive(v, "tcp");
  const cJSON *ex = cJSON_GetObjectItemCaseSensitive(v, "exec");
  if ((http != NULL) + (tcp != NULL) + (ex != NULL) != 1)
    return perr(&cx, p, "expected exactly one of \"http\", \"tcp\" and \"exec\" (what to "
                        "probe), not %s", http == NULL && tcp == NULL && ex == NULL ? "none"
                                                                                      : "several");
  arbor_health_probe_t *hp = calloc(1, sizeof *hp);
  if (hp == NULL)
    return perr(&cx, p, "out of memory");
  int liveness = strcmp(key, "liveness") == 0;
  uint64_t interval, timeout, fails, oks, delay;
  int rc;
  if (http != NULL) {
    hp->kind = ARBOR_PROBE_HTTP;
    sub(p2, p, "http");
    rc = parse_target(&cx, http, p2, 1, hp);
  } else if (tcp != NULL) {
    hp->kind = ARBOR_PROBE_TCP;
    sub(p2, p, "tcp");
    rc = parse_target(&cx, tcp, p2, 0, hp);
  } else {
    hp->kind = ARBOR_PROBE_EXEC;
    sub(p2, p, "exec");
    rc = parse_exec(&cx, ex, p2, hp);
  }
  if (rc < 0 || uint_at(&cx, v, p, "interval_ms", 1, TIME_MAX_MS, 10000, &interval) < 0 ||
      uint_at(&cx, v, p, "timeout_ms", 1, TIME_MAX_MS, 1000, &timeout) < 0 ||
      uint_at(&cx, v, p, "failure_threshold", 1, THRESHOLD_MAX, 3, &fails) < 0 ||
      uint_at(&cx, v, p, "success_threshold", 1, THRESHOLD_MAX, 1, &oks) < 0 ||
      uint_at(&cx, v, p, "initial_delay_ms", 0, TIME_MAX_MS, 0, &delay) < 0) {
    config_probe_free(hp);
    return -1;
  }
  if (liveness && oks != 1) {
    config_probe_free(hp);
    sub(p2, p, "success_threshold");
    return perr(&cx, p2, "must be 1 for a liveness probe (one pass shows it is alive; as in "
                         "Kubernetes)");
  }
  /* Defaults filled in and host and path resolved as the runtime would, so that
   * an explicit default compares equal to an absent key on a reload. */
  if (hp->kind != ARBOR_PROBE_EXEC && hp->host == NULL && (hp->host = strdup("127.0.0.1")) == NULL)
    rc = -1;
  if (hp->kind == ARBOR_PROBE_HTTP && hp->path == NULL && (hp->path = strdup("/")) == NULL)
    rc = -1;
  if (rc < 0) {
    config_probe_free(hp);
    return perr(&cx, p, "out of memory");
  }
  hp->interval_ms = interval;
  hp->timeout_ms = timeout;
  hp->failure_threshold = (uint32_t)fails;
  hp->success_threshold = (uint32_t)oks;
  hp->initial_delay_ms = delay;
  *out = hp;
  return 0;
}

static int str_same(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int config_probe_equal(const arbor_health_probe_t *a, const arbor_health_probe_t *b) {
  if (a == NULL || b == NULL)
    return a == b;
  if (a->kind != b->kind || a->port != b->port || !str_same(a->host, b->host) ||
      !str_same(a->path, b->path) || a->interval_ms != b->interval_ms ||
      a->timeout_ms != b->timeout_ms || a->failure_threshold != b->failure_threshold ||
      a->success_threshold != b->success_threshold || a->initial_delay_ms != b->initial_delay_ms)
    return 0;
  if ((a->argv == NULL) != (b->argv == NULL))
    return 0;
  size_t i = 0;
  for (; a->argv != NULL && a->argv[i] != NULL && b->argv[i] != NULL; i++)
    if (strcmp(a->argv[i], b->argv[i]) != 0)
      return 0;
  return a->argv == NULL || (a->argv[i] == NULL && b->argv[i] == NULL);
}
