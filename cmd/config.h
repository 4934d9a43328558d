/* cmd/config.h - the daemon's JSON config: parsing, building it on a runtime, and
 * reloading it (SIGHUP). docs/config.md describes the format for users.
 *
 * config.c parses and checks a file into a struct config (every key known, every
 * value in range, names unique among siblings), with config_probe.c and
 * config_exec.c for some keys and config_read.c's shared getters and error
 * format; config_syntax.c finds where a
 * file stops being JSON and says what was expected there; config_apply.c builds
 * the tree on a runtime and, on reload, diffs the old and the new config by the
 * path of names and applies the difference.
 *
 * Errors are one line of text, meant for stderr as they are:
 *   FILE:LINE:COL: expected ',' or '}' after an object member
 *   FILE: tree[1].children[0].argv: expected a non-empty array of strings
 */
#ifndef ARBOR_CMD_CONFIG_H
#define ARBOR_CMD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "arbor.h"

#define CONFIG_ERR_MAX 512       /* an error line, NUL included */
#define CONFIG_NAME_MAX 64       /* bytes of a node name */
#define CONFIG_FILE_MAX (1u << 20)   /* a config file larger than this is refused */

/* One supervisor or service of the config. The options are what the file said,
 * with defaults filled in, so that comparing two nodes compares behaviour. */
struct config_node {
  int is_supervisor;
  char *name;
  char *path;                    /* "tree[1].children[0]": for messages */

  /* supervisor */
  arbor_strategy_t strategy;
  int intensity;
  uint64_t period_ms;
  uint64_t backoff_ms;           /* 0: restart at once (no backoff) */
  uint64_t backoff_max_ms;
  int parallel_stop;             /* false when a child has requires or after */
  struct config_node *children;  /* in start order: sorted by requires/after */
  size_t nchildren;

  /* both: as a supervisor's child */
  arbor_restart_t restart;
  /* Start dependencies (docs/config.md, "Start order"): names of siblings,
   * NULL-terminated; NULL: none. config.c checks them (known, no cycle) and sorts
   * the siblings so that each comes after what it names. */
  char **requires;               /* must be STARTED first, and must keep running */
  char **after;                  /* ordering only */
  size_t order;                  /* its index in the file among its siblings */

  /* service (a program) */
  char **argv;                   /* NULL-terminated */
  char **env;                    /* "K=V" added to arbor's environment, NULL-terminated;
                                    NULL: none */
  char *cwd;                     /* absolute (made so from the config's directory); NULL */
  int stop_signal;
  uint64_t shutdown_timeout_ms;
  uint64_t min_uptime_ms;
  int notify_fd;
  size_t log_size;
  char *log_file;                /* absolute (made so from the config's directory); NULL */
  uint64_t log_file_max_bytes;
  unsigned log_file_backups;
  int log_timestamps;
  /* how it is executed (config_exec.c) */
  char *user, *group;            /* as written (a name, or a number as text); NULL */
  char **groups;                 /* NULL-terminated; NULL: none */
  int umask;                     /* -1: arbor's */
  arbor_rlimit_t *rlimits;       /* names owned */
  size_t nrlimits;
  char *env_file;                /* absolute (made so from the config's directory); NULL */
  uint64_t max_memory;           /* bytes; 0: no limit */
  uint64_t max_memory_for_ms;
  int log_file_told;             /* daemon.c: the log file error last logged; 0: none */
  arbor_health_probe_t *liveness;   /* config_probe.c: defaults filled in; NULL: none */
  arbor_health_probe_t *readiness;

  uint64_t id;                   /* config_apply: the live node's id; 0: none */
};

struct config {
  char *file;                    /* as given on the command line */
  /* admin */
  char *bind;
  int port;
  char *token;
  char *token_file;              /* absolute */
  unsigned max_connections;
  char *cors_origin;             /* NULL: no CORS */
  /* runtime */
  uint64_t shutdown_timeout_ms;
  size_t event_capacity;
  /* observability (docs/tracing.md): read at start only */
  char *service_name;            /* OTLP service.name; NULL: "arbor" */
  char *trace_out;               /* trace file written at shutdown and on SIGUSR1 (absolute) */
  int trace_format;              /* arbor_trace_format_t; 0: by trace_out's name */
  char *otlp_endpoint;           /* push spans to this collector; NULL: none */
  /* the tree: the children of one top-level supervisor (config_apply.c) */
  struct config_node top;
};

/* Reads and checks FILE. Returns 0 and fills *cfg (free it with config_free), or
 * -1 with one line in err (FILE first) and *cfg zeroed. */
int config_load(const char *file, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);

/* One service object of a tree, alone (the admin API's live changes): text is
 * its JSON, checked by the same rules as in a file, relative paths taken from
 * config_file's directory. Errors read "body: argv: expected ..." or
 * "body:1:7: ...". requires and after are read, not checked against siblings
 * (the caller knows them). Returns 0 with *n filled (free it with
 * config_node_free), or -1 with err filled and *n zeroed. */
int config_service_parse(const char *text, size_t len, const char *config_file,
                         struct config_node *n, char *err, size_t errlen);
/* Frees what n holds (its subtree too) and zeroes it. */
void config_node_free(struct config_node *n);

/* Where text (len bytes) stops being JSON: returns 0 when it is one well-formed
 * JSON value, else -1 with *line and *col (1-based; col counts bytes) and what
 * was expected there in what (a static string). */
int config_json_syntax(const char *text, size_t len, int *line, int *col, const char **what);

/* 1 when the two services would run the same way (argv, env, cwd, restart type,
 * stop signal, timeouts, notify fd, log size, log file settings, memory limit,
 * probes). */
int config_service_equal(const struct config_node *a, const struct config_node *b);
/* config_probe.c: the "liveness" or "readiness" (key) of the service object obj
 * at path, or *out NULL when absent or null. Returns 0, or -1 with cx's error
 * filled ("FILE: PATH.liveness.http.port: expected ..."). _equal: same behaviour
 * (NULL equals NULL only); _free takes NULL. */
struct cJSON;
struct config_read;
int config_probe_parse(struct config_read *cx, const struct cJSON *obj, const char *path,
                       const char *key, arbor_health_probe_t **out);
int config_probe_equal(const arbor_health_probe_t *a, const arbor_health_probe_t *b);
void config_probe_free(arbor_health_probe_t *p);

/* 1 when the two nodes name the same requires and after (in any order). */
int config_deps_equal(const struct config_node *a, const struct config_node *b);
/* 1 when two supervisors have the same options (children not compared). */
int config_supervisor_equal(const struct config_node *a, const struct config_node *b);

/* ------------------------------------------------------- config_exec.c */

struct cJSON;
/* user, group, groups, umask, rlimits, env_file of service obj at path into n
 * (whose name is set), relative env_file taken from cx's directory; then checked
 * by arbor_service_exec_check. Returns 0, or -1 with cx's error filled at the
 * key ("FILE: PATH.rlimits.nofile: expected ..."). */
int config_exec_parse(struct config_read *cx, const struct cJSON *obj, const char *path,
                      struct config_node *n);
/* Fills those fields of spec from n (borrowed). */
void config_exec_spec(const struct config_node *n, arbor_service_spec_t *spec);
void config_exec_free(struct config_node *n);
/* 1 when a and b would execute the same way. */
int config_exec_equal(const struct config_node *a, const struct config_node *b);

/* ------------------------------------------------------- config_apply.c */

/* What a reload did, for the log line. */
struct config_diff {
  unsigned restarted, added, removed, unchanged;
  unsigned failed;               /* nodes that could not be updated or added (logged) */
  unsigned sup_changed;          /* supervisors whose options need a restart of arbor */
  int admin_changed;             /* admin or runtime options (need a restart too) */
};

/* Builds cfg's tree under parent (the root): one supervisor named "config"
 * holding the tree's nodes, in order. Records each node's id in cfg. Returns 0,
 * or an ARBOR_E* code with err filled; what was built before the error stays and
 * is stopped with the runtime. */
int config_build(struct config *cfg, arbor_node_t *parent, char *err, size_t errlen);

/* Applies next over cur, which config_build (or an earlier reload) applied on rt:
 * services whose spec changed get it (arbor_service_update: same id, restarted),
 * removed nodes are cancelled, new ones added in order, the rest left alone.
 * next's ids are filled in; the caller then frees cur and keeps next. Logs one
 * line per supervisor whose options changed (they need a restart of arbor) and
 * one per node that could not be changed (the others still are). Returns 0, or
 * the first ARBOR_E* code with err filled. */
int config_reload(struct config *cur, struct config *next, arbor_runtime_t *rt,
                  struct config_diff *diff, char *err, size_t errlen);

/* A node made after the tree was built (a live add): n and its subtree under
 * parent (top's live node), its id recorded, ordered after what it names among
 * top's children. Returns 0 or an ARBOR_E* code with err filled; nothing runs
 * then. */
int config_build_one(struct config_node *top, struct config_node *n, arbor_node_t *parent,
                     char *err, size_t errlen);
/* Gives the live service old (a child of top) was built as n's spec
 * (arbor_service_update: same id, restarted), records the id in n and orders it
 * after what it names. Returns 0, or an ARBOR_E* code with err filled
 * (ARBOR_EFINISHED when the service has finished). */
int config_update_one(arbor_runtime_t *rt, struct config_node *top,
                      const struct config_node *old, struct config_node *n, char *err,
                      size_t errlen);

/* Sets the requires / after of n's live node, a child of top (attributes and start
 * order; nothing if it finished). */
void config_set_deps(arbor_runtime_t *rt, struct config_node *top, struct config_node *n);

/* ------------------------------------------------------- config_live.c */

/* The admin API's live service changes on the running config (docs/config.md,
 * "Live changes"): add, update and remove services directly under the config's
 * supervisor, cfg kept in step so that a reload diffs against what runs (the
 * file wins). cfg and rt must outlive the admin server. */
struct config_live {
  struct config *cfg;
  arbor_runtime_t *rt;
};
/* The callbacks for arbor_admin_opts_t.services; arg is a struct config_live. */
void config_live_callbacks(struct config_live *live, arbor_admin_services_t *out);

#endif /* ARBOR_CMD_CONFIG_H */
