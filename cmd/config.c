/* cmd/config.c - reads and checks the daemon's JSON config (docs/config.md).
 *
 * The file is checked for JSON syntax first (config_syntax.c: line, column and
 * what was expected), then parsed with cJSON and checked key by key: every key
 * must be known (a typo must not pass silently: "restrat" would otherwise leave a
 * service on its default restart type), every value of the right type and range,
 * and names unique among siblings (a node's path of names identifies it across
 * reloads). The first problem is reported with the JSON path of the value:
 *   arbor.json: tree[1].children[0].argv: expected a non-empty array of strings
 * Nothing is half-loaded: on error the caller gets nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "config.h"
#include "config_read.h"

/* --------------------------------------------------------------- enums */

static int get_restart(struct config_read *cx, const cJSON *obj, const char *path,
                       arbor_restart_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "restart");
  *out = ARBOR_PERMANENT;
  if (v == NULL)
    return 0;
  static const arbor_restart_t all[] = {ARBOR_PERMANENT, ARBOR_TRANSIENT, ARBOR_TEMPORARY};
  for (size_t i = 0; cJSON_IsString(v) && i < 3; i++)
    if (strcmp(v->valuestring, arbor_restart_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  return config_error_at(cx, path, "restart",
                         "expected \"permanent\", \"transient\" or \"temporary\"");
}

static int get_strategy(struct config_read *cx, const cJSON *obj, const char *path,
                        arbor_strategy_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "strategy");
  *out = ARBOR_ONE_FOR_ONE;
  if (v == NULL)
    return 0;
  static const arbor_strategy_t all[] = {ARBOR_ONE_FOR_ONE, ARBOR_ONE_FOR_ALL,
                                         ARBOR_REST_FOR_ONE};
  for (size_t i = 0; cJSON_IsString(v) && i < 3; i++)
    if (strcmp(v->valuestring, arbor_strategy_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  return config_error_at(cx, path, "strategy",
                         "expected \"one_for_one\", \"one_for_all\" or \"rest_for_one\"");
}

static const struct {
  const char *name;
  int num;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"ALRM", SIGALRM},
    {"ABRT", SIGABRT}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH},
};

/* "SIGTERM", "TERM" or 15. */
static int get_signal(struct config_read *cx, const cJSON *obj, const char *path, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "stop_signal");
  *out = SIGTERM;
  if (v == NULL)
    return 0;
  if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= 1 &&
      v->valuedouble <= 64) {
    *out = (int)v->valuedouble;
    return 0;
  }
  if (cJSON_IsString(v)) {
    const char *s = v->valuestring;
    if (strncmp(s, "SIG", 3) == 0)
      s += 3;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
      if (strcmp(s, signals[i].name) == 0) {
        *out = signals[i].num;
        return 0;
      }
  }
  return config_error_at(cx, path, "stop_signal",
                         "expected a signal name (\"SIGTERM\", \"SIGINT\", \"SIGQUIT\", "
                         "\"SIGHUP\", \"SIGUSR1\", ...) or a number from 1 to 64");
}

/* ------------------------------------------------------------ services */

static int get_argv(struct config_read *cx, const cJSON *obj, const char *path, char ***out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "argv");
  char p[CONFIG_PATH_MAX];
  config_path_key(p, path, "argv");
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  if (n == 0)
    return config_errorf(cx, p, "expected a non-empty array of strings%s",
                         v == NULL ? " (the program and its arguments)" : "");
  for (const cJSON *a = v->child; a != NULL; a = a->next)
    if (!cJSON_IsString(a) || (a == v->child && a->valuestring[0] == '\0'))
      return config_errorf(cx, p, "expected a non-empty array of strings%s",
                           cJSON_IsString(a) ? " (the program name is empty)" : "");
  return (*out = config_strv_dup(v)) == NULL ? config_oom(cx) : 0;
}

/* {"K": "V"} -> {"K=V", NULL}: added to (or replacing in) arbor's environment
 * when the service is built. */
static int get_env(struct config_read *cx, const cJSON *obj, const char *path, char ***out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "env");
  char p[CONFIG_PATH_MAX];
  config_path_key(p, path, "env");
  *out = NULL;
  if (v == NULL)
    return 0;
  if (!cJSON_IsObject(v))
    return config_errorf(cx, p, "expected an object of strings ({\"NAME\": \"value\"}), not %s",
                         config_type_name(v));
  int n = cJSON_GetArraySize(v);
  char **env = calloc((size_t)n + 1, sizeof *env);
  if (env == NULL)
    return config_oom(cx);
  size_t i = 0;
  for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
    char ep[CONFIG_PATH_MAX];
    config_path_key(ep, p, e->string);
    if (e->string[0] == '\0' || strchr(e->string, '=') != NULL) {
      config_strv_free(env);
      return config_errorf(cx, ep, "expected a variable name without '='");
    }
    if (!cJSON_IsString(e)) {
      config_strv_free(env);
      return config_errorf(cx, ep, "expected a string, not %s", config_type_name(e));
    }
    for (const cJSON *o = v->child; o != e; o = o->next)
      if (strcmp(o->string, e->string) == 0) {
        config_strv_free(env);
        return config_errorf(cx, p, "duplicate key \"%s\"", e->string);
      }
    if (asprintf(&env[i], "%s=%s", e->string, e->valuestring) < 0) {
      env[i] = NULL;
      config_strv_free(env);
      return config_oom(cx);
    }
  }
  *out = env;
  return 0;
}

static const char *const service_keys[] = {
    "service", "argv", "env", "cwd", "restart", "stop_signal", "shutdown_timeout_ms",
    "min_uptime_ms", "notify_fd", "log_size", "log_file", "log_file_max_bytes",
    "log_file_backups", "log_timestamps", "requires", "after", "user", "group", "groups",
    "umask", "rlimits", "env_file", "max_memory", "max_memory_for_ms", "liveness", "readiness",
    NULL};

/* The log file keys (docs/config.md). The sizes mean nothing without a file, so
 * they are refused alone rather than ignored: a typo'd or forgotten log_file
 * would otherwise pass unnoticed. */
static int parse_log_file(struct config_read *cx, const cJSON *obj, struct config_node *n) {
  const char *path = n->path;
  uint64_t u;
  if (config_get_string(cx, obj, path, "log_file", 1, &n->log_file) < 0 ||
      config_absolutize(cx, &n->log_file) < 0 ||
      config_get_uint(cx, obj, path, "log_file_max_bytes", 64, 1ull << 40, 0,
                      &n->log_file_max_bytes) < 0 ||
      config_get_uint(cx, obj, path, "log_file_backups", 0, 1000, 0, &u) < 0 ||
      config_get_bool(cx, obj, path, "log_timestamps", 0, &n->log_timestamps) < 0)
    return -1;
  n->log_file_backups = (unsigned)u;
  if (n->log_file == NULL) {
    static const char *const needs[] = {"log_file_max_bytes", "log_file_backups",
                                        "log_timestamps", NULL};
    for (size_t i = 0; needs[i] != NULL; i++) {
      if (cJSON_GetObjectItemCaseSensitive(obj, needs[i]) != NULL) {
        return config_error_at(cx, path, needs[i],
                               "needs \"log_file\" (the file to write the output to)");
      }
    }
  }
  return 0;
}

#define MAX_MEMORY_MIN (1ull << 20)   /* as arbor_service_add: less is a unit mistake */
#define MAX_MEMORY_MAX (1ull << 44)   /* 16 TiB */

/* "512M" -> 536870912: digits, then K, M, G or T (binary: what free, top and
 * PM2's max_memory_restart mean), "KiB" ... "TiB" too, or no unit (bytes). "MB"
 * is refused rather than guessed: it means 10^6 to some and 2^20 to others.
 * Returns 0, or -1 for anything else (and on overflow). */
static int parse_size(const char *s, uint64_t *out) {
  uint64_t v = 0;
  const char *p = s;
  if (*p < '0' || *p > '9')
    return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  static const char units[] = "KMGT";
  const char *u = *p != '\0' ? strchr(units, toupper((unsigned char)*p)) : NULL;
  if (u != NULL) {
    p++;
    if (strcmp(p, "iB") == 0)
      p += 2;
    for (int shift = (int)(u - units + 1) * 10; shift > 0; shift -= 10) {
      if (v > UINT64_MAX >> 10)
        return -1;
      v <<= 10;
    }
  }
  if (*p != '\0')
    return -1;
  *out = v;
  return 0;
}

/* The memory limit (docs/config.md, "Memory limit"): max_memory as a number of
 * bytes or a size string, max_memory_for_ms only with it. */
static int parse_max_memory(struct config_read *cx, const cJSON *obj, struct config_node *n) {
  const char *path = n->path;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "max_memory");
  char p[CONFIG_PATH_MAX];
  config_path_key(p, path, "max_memory");
  n->max_memory = 0;
  if (v != NULL) {
    uint64_t b = 0;
    int ok = cJSON_IsString(v) ? parse_size(v->valuestring, &b) == 0
             : cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
                   v->valuedouble == floor(v->valuedouble) && v->valuedouble < 1.8e19;
    if (ok && cJSON_IsNumber(v))
      b = (uint64_t)v->valuedouble;
    if (!ok)
      return config_errorf(cx, p, "expected a size in bytes: an integer, or a string with a binary "
                           "unit such as \"512M\", \"1G\", \"64K\" or \"256MiB\", not %s",
                           cJSON_IsString(v) ? "this string" : config_type_name(v));
    if (b < MAX_MEMORY_MIN || b > MAX_MEMORY_MAX)
      return config_errorf(cx, p, "expected from 1M (1048576 bytes) to 16T, not %llu bytes",
                           (unsigned long long)b);
    n->max_memory = b;
  }
  if (config_get_uint(cx, obj, path, "max_memory_for_ms", 0, 86400000, 0,
                      &n->max_memory_for_ms) < 0)
    return -1;
  if (v == NULL && cJSON_GetObjectItemCaseSensitive(obj, "max_memory_for_ms") != NULL) {
    return config_error_at(cx, path, "max_memory_for_ms",
                           "needs \"max_memory\" (the limit it applies to)");
  }
  return 0;
}

static int parse_service(struct config_read *cx, const cJSON *obj, struct config_node *n) {
  const char *path = n->path;
  uint64_t u;
  if (config_check_keys(cx, obj, path, service_keys) < 0 ||
      get_argv(cx, obj, path, &n->argv) < 0 || get_env(cx, obj, path, &n->env) < 0 ||
      config_get_string(cx, obj, path, "cwd", 0, &n->cwd) < 0 ||
      config_absolutize(cx, &n->cwd) < 0 || get_restart(cx, obj, path, &n->restart) < 0 ||
      get_signal(cx, obj, path, &n->stop_signal) < 0 ||
      config_get_uint(cx, obj, path, "shutdown_timeout_ms", 1, 86400000, 5000,
                      &n->shutdown_timeout_ms) < 0 ||
      config_get_uint(cx, obj, path, "min_uptime_ms", 0, 86400000, 0, &n->min_uptime_ms) < 0)
    return -1;
  if (config_get_uint(cx, obj, path, "notify_fd", 0, 1023, 0, &u) < 0)
    return -1;
  if (u == 1 || u == 2) {
    return config_error_at(cx, path, "notify_fd", "expected 0 (none) or a descriptor from 3 to "
                                                  "1023 (1 and 2 are the program's stdout and "
                                                  "stderr)");
  }
  n->notify_fd = (int)u;
  if (config_get_uint(cx, obj, path, "log_size", 1024, 256u << 20, 65536, &u) < 0)
    return -1;
  n->log_size = (size_t)u;
  if (parse_log_file(cx, obj, n) < 0)
    return -1;
  if (config_probe_parse(cx, obj, path, "liveness", &n->liveness) < 0 ||
      config_probe_parse(cx, obj, path, "readiness", &n->readiness) < 0 ||
      config_exec_parse(cx, obj, path, n) < 0)
    return -1;
  return parse_max_memory(cx, obj, n);
}

/* ---------------------------------------------------------- supervisors */

static const char *const supervisor_keys[] = {
    "supervisor", "strategy", "intensity", "period_ms", "backoff_ms", "backoff_max_ms",
    "restart",    "parallel_stop", "children", "requires", "after", NULL};

static int parse_children(struct config_read *cx, const cJSON *arr, const char *path,
                          struct config_node *parent);
static int resolve_parallel_stop(struct config_read *cx, struct config_node *n);

static int parse_supervisor(struct config_read *cx, const cJSON *obj, struct config_node *n) {
  const char *path = n->path;
  uint64_t u;
  if (config_check_keys(cx, obj, path, supervisor_keys) < 0 ||
      get_strategy(cx, obj, path, &n->strategy) < 0 ||
      config_get_uint(cx, obj, path, "intensity", 1, 100000, 3, &u) < 0)
    return -1;
  n->intensity = (int)u;
  if (config_get_uint(cx, obj, path, "period_ms", 1, 86400000, 5000, &n->period_ms) < 0 ||
      config_get_uint(cx, obj, path, "backoff_ms", 0, 86400000, 100, &n->backoff_ms) < 0 ||
      config_get_uint(cx, obj, path, "backoff_max_ms", 1, 86400000, 30000,
                      &n->backoff_max_ms) < 0 ||
      get_restart(cx, obj, path, &n->restart) < 0 ||
      config_get_bool(cx, obj, path, "parallel_stop", -1, &n->parallel_stop) < 0)
    return -1;
  if (n->backoff_ms > 0 && n->backoff_max_ms < n->backoff_ms) {
    return config_error_at(cx, path, "backoff_max_ms", "expected at least backoff_ms (%llu)",
                           (unsigned long long)n->backoff_ms);
  }
  const cJSON *kids = cJSON_GetObjectItemCaseSensitive(obj, "children");
  char p[CONFIG_PATH_MAX];
  config_path_key(p, path, "children");
  if (kids != NULL && parse_children(cx, kids, p, n) < 0)
    return -1;
  return resolve_parallel_stop(cx, n);
}

/* Letters, digits, '_', '-', '.': a name is part of a path, of URLs and of log
 * lines, so nothing that needs quoting. */
static int name_ok(const char *s) {
  size_t len = strlen(s);
  if (len == 0 || len > CONFIG_NAME_MAX)
    return 0;
  for (; *s != '\0'; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
      return 0;
  return 1;
}

/* requires / after: an array of names (NULL when absent; [] is none too). Whether
 * they name siblings is checked once every sibling is parsed (check_deps). */
static int get_names(struct config_read *cx, const cJSON *obj, const char *path, const char *key,
                     char ***out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  if (v == NULL)
    return 0;
  char p[CONFIG_PATH_MAX];
  config_path_key(p, path, key);
  if (!cJSON_IsArray(v))
    return config_errorf(cx, p, "expected an array of names (of this node's siblings), not %s",
                         config_type_name(v));
  size_t n = (size_t)cJSON_GetArraySize(v);
  if (n == 0)
    return 0;
  size_t i = 0;
  for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
    if (!cJSON_IsString(e) || !name_ok(e->valuestring)) {
      char q[CONFIG_PATH_MAX];
      config_path_index(q, p, i);
      return config_errorf(cx, q, "expected a name: 1 to %d characters from A-Z a-z 0-9 _ - .",
                           CONFIG_NAME_MAX);
    }
  }
  return (*out = config_strv_dup(v)) == NULL ? config_oom(cx) : 0;
}

static int parse_node(struct config_read *cx, const cJSON *obj, struct config_node *n) {
  if (!cJSON_IsObject(obj))
    return config_errorf(cx, n->path,
                         "expected an object with \"service\" or \"supervisor\", not %s",
                         config_type_name(obj));
  const cJSON *sup = cJSON_GetObjectItemCaseSensitive(obj, "supervisor");
  const cJSON *svc = cJSON_GetObjectItemCaseSensitive(obj, "service");
  if ((sup == NULL) == (svc == NULL))
    return config_errorf(cx, n->path,
                         sup == NULL ? "expected a \"service\" or a \"supervisor\" key "
                                       "(the node's name)"
                                     : "expected \"service\" or \"supervisor\", not both");
  const cJSON *name = sup != NULL ? sup : svc;
  const char *key = sup != NULL ? "supervisor" : "service";
  if (!cJSON_IsString(name) || !name_ok(name->valuestring)) {
    return config_error_at(cx, n->path, key,
                           "expected a name: 1 to %d characters from A-Z a-z 0-9 _ - .",
                           CONFIG_NAME_MAX);
  }
  if ((n->name = strdup(name->valuestring)) == NULL)
    return config_oom(cx);
  n->is_supervisor = sup != NULL;
  if (get_names(cx, obj, n->path, "requires", &n->requires) < 0 ||
      get_names(cx, obj, n->path, "after", &n->after) < 0)
    return -1;
  return n->is_supervisor ? parse_supervisor(cx, obj, n) : parse_service(cx, obj, n);
}

/* --------------------------------------------------------- dependencies */

/* requires and after name siblings only: the supervisor's own in-order start
 * (each child STARTED before the next) and reverse-order stop then give the
 * dependency order once the siblings are sorted, with nothing new at run time.
 * A dependency elsewhere in the tree would need a service held in a waiting
 * state across supervisors: refused with a clear error instead. */

static long sibling_index(const struct config_node *parent, const char *name) {
  for (size_t i = 0; i < parent->nchildren; i++)
    if (strcmp(parent->children[i].name, name) == 0)
      return (long)i;
  return -1;
}

static char **deps_of(const struct config_node *n, int which) {
  return which == 0 ? n->requires : n->after;
}
static const char *dep_key(int which) { return which == 0 ? "requires" : "after"; }

static int has_deps(const struct config_node *parent) {
  for (size_t i = 0; i < parent->nchildren; i++)
    if (parent->children[i].requires != NULL || parent->children[i].after != NULL)
      return 1;
  return 0;
}

/* Depth-first from i; a sibling met again while still on the stack closes a
 * cycle, reported from that sibling round to itself, at the key of its edge. */
struct dfs {
  struct config_read *cx;
  const struct config_node *parent;
  unsigned char *color;          /* 0 new, 1 on the stack, 2 done */
  size_t *stack;
  int *via;                      /* via[d]: the key (0 requires, 1 after) from stack[d] */
  size_t depth;
};

static int dfs_visit(struct dfs *d, size_t i) {
  const struct config_node *n = &d->parent->children[i];
  d->color[i] = 1;
  d->stack[d->depth++] = i;
  for (int which = 0; which < 2; which++) {
    char **names = deps_of(n, which);
    for (size_t k = 0; names != NULL && names[k] != NULL; k++) {
      size_t j = (size_t)sibling_index(d->parent, names[k]);
      d->via[d->depth - 1] = which;
      if (d->color[j] == 2)
        continue;
      if (d->color[j] == 0) {
        if (dfs_visit(d, j) < 0)
          return -1;
        continue;
      }
      size_t from = 0;
      while (d->stack[from] != j)
        from++;
      char cycle[CONFIG_ERR_MAX / 2];
      size_t used = 0;
      for (size_t s = from; s < d->depth && used < sizeof cycle; s++)
        used += (size_t)snprintf(cycle + used, sizeof cycle - used, "%s -> ",
                                 d->parent->children[d->stack[s]].name);
      if (used < sizeof cycle)
        snprintf(cycle + used, sizeof cycle - used, "%s", d->parent->children[j].name);
      return config_error_at(d->cx, d->parent->children[j].path, dep_key(d->via[from]),
                             "dependency cycle: %s", cycle);
    }
  }
  d->depth--;
  d->color[i] = 2;
  return 0;
}

/* Every name known, no cycle; then the siblings sorted so that each comes after
 * what it names, otherwise in file order (the first ready one each time). */
static int check_deps(struct config_read *cx, struct config_node *parent) {
  size_t n = parent->nchildren;
  for (size_t i = 0; i < n; i++) {
    struct config_node *c = &parent->children[i];
    c->order = i;
    for (int which = 0; which < 2; which++) {
      char **names = deps_of(c, which);
      for (size_t k = 0; names != NULL && names[k] != NULL; k++) {
        long j = sibling_index(parent, names[k]);
        const struct config_node *dep = j >= 0 ? &parent->children[j] : NULL;
        if (dep != NULL && (which == 1 || dep->restart == ARBOR_PERMANENT))
          continue;
        char p[CONFIG_PATH_MAX], q[CONFIG_PATH_MAX];
        config_path_key(p, c->path, dep_key(which));
        config_path_index(q, p, k);
        if (dep != NULL)         /* it could finish for good, leaving c without it */
          return config_errorf(cx, q, "\"%s\" is %s: what a node requires must be permanent "
                               "(\"after\" only orders)", names[k],
                               arbor_restart_name(dep->restart));
        return config_errorf(cx, q, "no sibling named \"%s\" (requires and after name nodes of "
                             "the same supervisor)", names[k]);
      }
    }
  }
  if (!has_deps(parent))
    return 0;
  struct dfs d = {.cx = cx, .parent = parent};
  struct config_node *sorted = calloc(n, sizeof *sorted);
  d.color = calloc(n, 1);
  d.stack = calloc(n, sizeof *d.stack);
  d.via = calloc(n, sizeof *d.via);
  int rc = -1;
  if (sorted == NULL || d.color == NULL || d.stack == NULL || d.via == NULL) {
    config_oom(cx);
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if (d.color[i] == 0 && dfs_visit(&d, i) < 0)
      goto out;
  unsigned char *placed = d.color;   /* reused: 2 everywhere after the search */
  memset(placed, 0, n);
  for (size_t out_i = 0; out_i < n; out_i++) {
    for (size_t i = 0; i < n; i++) {
      if (placed[i])
        continue;
      int ready = 1;
      for (int which = 0; which < 2 && ready; which++) {
        char **names = deps_of(&parent->children[i], which);
        for (size_t k = 0; names != NULL && names[k] != NULL && ready; k++)
          ready = placed[sibling_index(parent, names[k])];
      }
      if (ready) {
        placed[i] = 1;
        sorted[out_i] = parent->children[i];
        break;
      }
    }
  }
  memcpy(parent->children, sorted, n * sizeof *sorted);
  rc = 0;
out:
  free(sorted);
  free(d.color);
  free(d.stack);
  free(d.via);
  return rc;
}

/* parallel_stop stops every child at once, which would not stop a node before
 * what it depends on: off by default under dependencies, refused if asked for. */
static int resolve_parallel_stop(struct config_read *cx, struct config_node *n) {
  int deps = has_deps(n);
  if (n->parallel_stop < 0) {
    n->parallel_stop = !deps;
    return 0;
  }
  if (n->parallel_stop && deps) {
    return config_error_at(cx, n->path, "parallel_stop",
                           "true would stop every child at once, not each before what it "
                           "requires or comes after: leave it out or set it to false");
  }
  return 0;
}

static int parse_children(struct config_read *cx, const cJSON *arr, const char *path,
                          struct config_node *parent) {
  if (!cJSON_IsArray(arr))
    return config_errorf(cx, path, "expected an array of services and supervisors, not %s",
                         config_type_name(arr));
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n == 0)
    return 0;
  if ((parent->children = calloc(n, sizeof *parent->children)) == NULL)
    return config_oom(cx);
  size_t i = 0;
  for (const cJSON *e = arr->child; e != NULL; e = e->next, i++) {
    struct config_node *c = &parent->children[i];
    parent->nchildren = i + 1;   /* so config_free frees what was parsed so far */
    char p[CONFIG_PATH_MAX];
    config_path_index(p, path, i);
    if ((c->path = strdup(p)) == NULL)
      return config_oom(cx);
    if (parse_node(cx, e, c) < 0)
      return -1;
    for (size_t k = 0; k < i; k++)
      if (strcmp(parent->children[k].name, c->name) == 0)
        return config_errorf(cx, p, "duplicate name \"%s\" (also %s): names must be unique among "
                             "siblings", c->name, parent->children[k].path);
  }
  return check_deps(cx, parent);
}

/* ---------------------------------------------------------------- admin */

static const char *const admin_keys[] = {"bind", "port", "token", "token_file",
                                         "max_connections", "cors_origin", NULL};

static int parse_admin(struct config_read *cx, const cJSON *a, struct config *cfg) {
  uint64_t u;
  if (a == NULL)
    return 0;
  if (!cJSON_IsObject(a))
    return config_errorf(cx, "admin", "expected an object, not %s", config_type_name(a));
  char *bind = NULL;
  if (config_check_keys(cx, a, "admin", admin_keys) < 0 ||
      config_get_string(cx, a, "admin", "bind", 0, &bind) < 0)
    return -1;
  if (bind != NULL) {
    free(cfg->bind);
    cfg->bind = bind;
  }
  if (config_get_uint(cx, a, "admin", "port", 0, 65535, 7070, &u) < 0)
    return -1;
  cfg->port = (int)u;
  if (config_get_string(cx, a, "admin", "token", 0, &cfg->token) < 0 ||
      config_get_string(cx, a, "admin", "token_file", 0, &cfg->token_file) < 0 ||
      config_absolutize(cx, &cfg->token_file) < 0)
    return -1;
  if (cfg->token != NULL && cfg->token_file != NULL)
    return config_errorf(cx, "admin", "expected \"token\" or \"token_file\", not both");
  if (config_get_uint(cx, a, "admin", "max_connections", 1, 100000, 64, &u) < 0)
    return -1;
  cfg->max_connections = (unsigned)u;
  return config_get_string(cx, a, "admin", "cors_origin", 1, &cfg->cors_origin);
}

/* ------------------------------------------------------------------ file */

static const char *const top_keys[] = {"admin",        "shutdown_timeout_ms", "event_capacity",
                                       "service_name", "trace_out",           "trace_format",
                                       "otlp_endpoint", "tree",               NULL};

/* service_name, trace_out, trace_format, otlp_endpoint (docs/tracing.md). */
static int parse_observability(struct config_read *cx, const cJSON *root, struct config *cfg) {
  char *fmt = NULL;
  if (config_get_string(cx, root, "", "service_name", 0, &cfg->service_name) < 0 ||
      config_get_string(cx, root, "", "trace_out", 0, &cfg->trace_out) < 0 ||
      config_absolutize(cx, &cfg->trace_out) < 0 ||
      config_get_string(cx, root, "", "otlp_endpoint", 0, &cfg->otlp_endpoint) < 0 ||
      config_get_string(cx, root, "", "trace_format", 0, &fmt) < 0)
    return -1;
  if (fmt != NULL) {
    int f = arbor_trace_format_parse(fmt);
    free(fmt);
    if (f < 0)
      return config_errorf(cx, "trace_format", "expected \"chrome\" or \"otlp\"");
    cfg->trace_format = f;
  }
  if (cfg->otlp_endpoint != NULL && strncmp(cfg->otlp_endpoint, "http://", 7) != 0 &&
      strncmp(cfg->otlp_endpoint, "https://", 8) != 0)
    return config_errorf(cx, "otlp_endpoint",
                         "expected an http:// or https:// URL (an OTLP/HTTP receiver such as "
                         "http://127.0.0.1:4318), not \"%s\"",
                         cfg->otlp_endpoint);
  return 0;
}

static int parse_top(struct config_read *cx, const cJSON *root, struct config *cfg) {
  uint64_t u;
  if (!cJSON_IsObject(root))
    return config_errorf(cx, NULL, "expected an object ({\"tree\": [...]}) at the top, not %s",
                         config_type_name(root));
  if (config_check_keys(cx, root, "", top_keys) < 0 ||
      parse_admin(cx, cJSON_GetObjectItemCaseSensitive(root, "admin"), cfg) < 0 ||
      config_get_uint(cx, root, "", "shutdown_timeout_ms", 1, 86400000, 10000,
                      &cfg->shutdown_timeout_ms) < 0 ||
      config_get_uint(cx, root, "", "event_capacity", 16, 1u << 24, 16384, &u) < 0 ||
      parse_observability(cx, root, cfg) < 0)
    return -1;
  cfg->event_capacity = (size_t)u;
  const cJSON *tree = cJSON_GetObjectItemCaseSensitive(root, "tree");
  if (tree == NULL)
    return config_errorf(cx, NULL, "expected a \"tree\" key: the array of services and supervisors "
                            "to run");
  if (parse_children(cx, tree, "tree", &cfg->top) < 0)
    return -1;
  cfg->top.parallel_stop = !has_deps(&cfg->top);   /* as resolve_parallel_stop's default */
  return 0;
}

/* The whole file into a NUL-terminated buffer, at most CONFIG_FILE_MAX bytes. */
static int read_file(struct config_read *cx, char **out, size_t *len) {
  FILE *f = fopen(cx->file, "rb");
  if (f == NULL)
    return config_errorf(cx, NULL, "%s", strerror(errno));
  char *buf = malloc(CONFIG_FILE_MAX + 1);
  if (buf == NULL) {
    fclose(f);
    return config_oom(cx);
  }
  size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
  int bad = ferror(f);
  int saved = errno;
  fclose(f);
  if (bad) {
    free(buf);
    return config_errorf(cx, NULL, "%s", strerror(saved));
  }
  if (n > CONFIG_FILE_MAX) {
    free(buf);
    return config_errorf(cx, NULL, "too large: expected at most %u bytes", CONFIG_FILE_MAX);
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

static char *dir_of(const char *file) {
  const char *slash = strrchr(file, '/');
  char *d = NULL;
  if (file[0] == '/')
    return strndup(file, slash == file ? 1 : (size_t)(slash - file));
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == NULL)
    return NULL;
  if (slash == NULL)
    return strdup(cwd);
  if (asprintf(&d, "%s/%.*s", cwd, (int)(slash - file), file) < 0)
    return NULL;
  return d;
}

int config_load(const char *file, struct config *cfg, char *err, size_t errlen) {
  struct config_read cx = {.file = file, .err = err, .errlen = errlen};
  memset(cfg, 0, sizeof *cfg);
  char *text = NULL;
  size_t len = 0;
  cJSON *root = NULL;
  int rc = -1;
  cfg->port = 7070;
  cfg->max_connections = 64;
  cfg->shutdown_timeout_ms = 10000;
  cfg->event_capacity = 16384;
  /* The one supervisor above the tree's nodes (config_apply.c). */
  struct config_node *top = &cfg->top;
  top->is_supervisor = 1;
  top->strategy = ARBOR_ONE_FOR_ONE;
  top->intensity = 3;
  top->period_ms = 5000;
  top->backoff_ms = 100;
  top->backoff_max_ms = 30000;
  top->parallel_stop = 1;
  if ((cfg->file = strdup(file)) == NULL || (cfg->bind = strdup("127.0.0.1")) == NULL ||
      (top->name = strdup("config")) == NULL || (top->path = strdup("tree")) == NULL ||
      (cx.dir = dir_of(file)) == NULL) {
    config_oom(&cx);
    goto out;
  }
  if (read_file(&cx, &text, &len) < 0)
    goto out;
  int line, col;
  const char *what;
  if (config_json_syntax(text, len, &line, &col, &what) < 0) {
    snprintf(err, errlen, "%s:%d:%d: %s", file, line, col, what);
    goto out;
  }
  if ((root = cJSON_ParseWithLength(text, len)) == NULL) {
    config_oom(&cx);                    /* the syntax was checked: only memory is left */
    goto out;
  }
  rc = parse_top(&cx, root, cfg);
out:
  cJSON_Delete(root);
  free(text);
  free(cx.dir);
  if (rc < 0)
    config_free(cfg);
  return rc;
}

/* ---------------------------------------------------- one service alone */

static void node_free(struct config_node *n);

int config_service_parse(const char *text, size_t len, const char *config_file,
                         struct config_node *n, char *err, size_t errlen) {
  struct config_read cx = {.file = "body", .err = err, .errlen = errlen};
  memset(n, 0, sizeof *n);
  cJSON *root = NULL;
  int rc = -1;
  int line, col;
  const char *what;
  if (config_json_syntax(text, len, &line, &col, &what) < 0) {
    snprintf(err, errlen, "body:%d:%d: %s", line, col, what);
    return -1;
  }
  /* Relative cwd and log_file mean what they mean in the file. */
  if ((cx.dir = dir_of(config_file)) == NULL || (n->path = strdup("")) == NULL) {
    config_oom(&cx);
    goto out;
  }
  if ((root = cJSON_ParseWithLength(text, len)) == NULL) {
    config_oom(&cx);
    goto out;
  }
  if (!cJSON_IsObject(root) || cJSON_GetObjectItemCaseSensitive(root, "supervisor") != NULL ||
      cJSON_GetObjectItemCaseSensitive(root, "service") == NULL) {
    config_errorf(&cx, NULL, "expected one service object, as in the config's tree ({\"service\": "
                      "\"NAME\", \"argv\": [...]}), not %s",
                  cJSON_IsObject(root) ? "an object without \"service\"" : config_type_name(root));
    goto out;
  }
  rc = parse_node(&cx, root, n);
out:
  cJSON_Delete(root);
  free(cx.dir);
  if (rc < 0) {
    node_free(n);
    memset(n, 0, sizeof *n);
  }
  return rc;
}

/* --------------------------------------------------------------- freeing */

static void node_free(struct config_node *n) {
  for (size_t i = 0; i < n->nchildren; i++)
    node_free(&n->children[i]);
  free(n->children);
  free(n->name);
  free(n->path);
  config_strv_free(n->argv);
  config_strv_free(n->env);
  free(n->cwd);
  free(n->log_file);
  config_probe_free(n->liveness);
  config_probe_free(n->readiness);
  config_strv_free(n->requires);
  config_strv_free(n->after);
  config_exec_free(n);
}

void config_node_free(struct config_node *n) {
  if (n == NULL)
    return;
  node_free(n);
  memset(n, 0, sizeof *n);
}

void config_free(struct config *cfg) {
  if (cfg == NULL)
    return;
  node_free(&cfg->top);
  free(cfg->file);
  free(cfg->bind);
  free(cfg->token);
  free(cfg->token_file);
  free(cfg->cors_origin);
  free(cfg->service_name);
  free(cfg->trace_out);
  free(cfg->otlp_endpoint);
  memset(cfg, 0, sizeof *cfg);
}

/* ------------------------------------------------------------ comparing */

int config_service_equal(const struct config_node *a, const struct config_node *b) {
  return !a->is_supervisor && !b->is_supervisor && config_strv_eq(a->argv, b->argv) &&
         config_strv_eq(a->env, b->env) && config_str_eq(a->cwd, b->cwd) &&
         a->restart == b->restart &&
         a->stop_signal == b->stop_signal && a->shutdown_timeout_ms == b->shutdown_timeout_ms &&
         a->min_uptime_ms == b->min_uptime_ms && a->notify_fd == b->notify_fd &&
         a->log_size == b->log_size && config_str_eq(a->log_file, b->log_file) &&
         a->log_file_max_bytes == b->log_file_max_bytes &&
         a->log_file_backups == b->log_file_backups && a->log_timestamps == b->log_timestamps &&
         config_exec_equal(a, b) && a->max_memory == b->max_memory &&
         a->max_memory_for_ms == b->max_memory_for_ms &&
         config_probe_equal(a->liveness, b->liveness) &&
         config_probe_equal(a->readiness, b->readiness);
}

/* Same names, in any order (a set). */
static int names_same(char *const *a, char *const *b) {
  size_t na = 0, nb = 0;
  for (; a != NULL && a[na] != NULL; na++) {
    size_t k = 0;
    while (b != NULL && b[k] != NULL && strcmp(b[k], a[na]) != 0)
      k++;
    if (b == NULL || b[k] == NULL)
      return 0;
  }
  for (; b != NULL && b[nb] != NULL; nb++) {
    size_t k = 0;
    while (a != NULL && a[k] != NULL && strcmp(a[k], b[nb]) != 0)
      k++;
    if (a == NULL || a[k] == NULL)
      return 0;
  }
  return 1;
}

int config_deps_equal(const struct config_node *a, const struct config_node *b) {
  return names_same(a->requires, b->requires) && names_same(a->after, b->after);
}

int config_supervisor_equal(const struct config_node *a, const struct config_node *b) {
  return a->is_supervisor && b->is_supervisor && a->strategy == b->strategy &&
         a->intensity == b->intensity && a->period_ms == b->period_ms &&
         a->backoff_ms == b->backoff_ms && a->backoff_max_ms == b->backoff_max_ms &&
         a->restart == b->restart && a->parallel_stop == b->parallel_stop;
}
