/* cmd/config_apply.c - builds a config's tree on a runtime, and reloads it.
 *
 * The tree's nodes go under one supervisor named "config" (one_for_one, the
 * defaults of docs/config.md): a service directly under the root would run only
 * once, and the daemon exists to keep them running.
 *
 * A reload diffs the running config against the new one by the path of names
 * (names are unique among siblings, config.c): a service whose spec changed gets
 * the new one through arbor_service_update, which keeps its id, restart count and
 * failure history (what the operator is looking at) and restarts it; a node no
 * longer named is cancelled; a new one is added after its siblings; the rest is
 * not touched at all. The core cannot change a live supervisor's options, so
 * those changes are reported and wait for a restart of arbor.
 *
 * requires and after (config.c sorted the siblings by them) are kept on each
 * node as attributes, so the tree and the dashboard say what a node waits for.
 * They do not change how a service runs, so changing them alone restarts
 * nothing. The core cannot move a running child either: a reload after which a
 * node would start before something it names (an existing node that now names a
 * new or later sibling) says so and keeps the order until arbor restarts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

extern char **environ;

/* arbor's environment with the service's variables added or replaced. The array
 * is new; its strings are borrowed from environ and n->env. NULL: no memory. */
static char **merged_env(const struct config_node *n) {
  size_t ne = 0, nx = 0;
  for (char **e = environ; e != NULL && *e != NULL; e++)
    ne++;
  for (char **x = n->env; *x != NULL; x++)
    nx++;
  char **out = calloc(ne + nx + 1, sizeof *out);
  if (out == NULL)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < ne; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t klen = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int overridden = 0;
    for (char **x = n->env; *x != NULL && !overridden; x++)
      overridden = strncmp(*x, environ[i], klen) == 0 && (*x)[klen] == '=';
    if (!overridden)
      out[k++] = environ[i];
  }
  for (char **x = n->env; *x != NULL; x++)
    out[k++] = *x;
  return out;
}

/* Fills spec from n; *env_out is the array to free after the call that copies
 * the spec (NULL when n has no env). Returns 0 or ARBOR_ENOMEM. */
static int service_spec(const struct config_node *n, arbor_service_spec_t *spec,
                        char ***env_out) {
  memset(spec, 0, sizeof *spec);
  *env_out = NULL;
  if (n->env != NULL && (*env_out = merged_env(n)) == NULL)
    return ARBOR_ENOMEM;
  spec->name = n->name;
  spec->argv = n->argv;
  spec->env = *env_out;
  spec->cwd = n->cwd;
  spec->restart = n->restart;
  spec->stop_signal = n->stop_signal;
  spec->shutdown_timeout_ms = n->shutdown_timeout_ms;
  spec->min_uptime_ms = n->min_uptime_ms;
  spec->notify_fd = n->notify_fd;
  spec->log_size = n->log_size;
  spec->log_file = n->log_file;
  spec->log_file_max_bytes = n->log_file_max_bytes;
  spec->log_file_backups = n->log_file_backups;
  spec->log_timestamps = n->log_timestamps;
  config_exec_spec(n, spec);
  spec->max_memory = n->max_memory;
  spec->max_memory_for_ms = n->max_memory_for_ms;
  spec->liveness = n->liveness;
  spec->readiness = n->readiness;
  return 0;
}

/* "db, api" under key on node, cut with "..." at the attribute limit; removed
 * (set to "") when names is NULL. Only for the operator's eyes, so a failure
 * (out of memory) is not one of the config's. */
static void deps_attr(arbor_node_t *node, const char *key, char *const *names) {
  char buf[256];
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
    int w = snprintf(buf + used, sizeof buf - used, "%s%s", i > 0 ? ", " : "", names[i]);
    if (w < 0 || (size_t)w >= sizeof buf - used) {
      memcpy(buf + sizeof buf - 4, "...", 4);
      break;
    }
    used += (size_t)w;
  }
  if (names != NULL || arbor_node_attr_get(node, key) != NULL)
    (void)arbor_node_attr_set(node, key, buf);
}

static void set_deps_attrs(arbor_node_t *node, const struct config_node *n) {
  deps_attr(node, "requires", n->requires);
  deps_attr(node, "after", n->after);
}

static int fail(char *err, size_t errlen, const struct config_node *n, const char *what, int rc) {
  snprintf(err, errlen, "%s %s (%s): %s: %s", n->is_supervisor ? "supervisor" : "service",
           n->name, n->path, what, arbor_strerror(rc));
  return rc;
}

static int build_children(struct config_node *n, arbor_node_t *parent, unsigned *count,
                          char *err, size_t errlen);

/* Creates n (and its subtree) under parent; counts the nodes made. */
static int build_node(struct config_node *n, arbor_node_t *parent, unsigned *count, char *err,
                      size_t errlen) {
  arbor_node_t *node = NULL;
  int rc;
  if (n->is_supervisor) {
    arbor_sup_opts_t o = {
        .name = n->name,
        .strategy = n->strategy,
        .intensity = n->intensity,
        .period_ms = n->period_ms,
        .backoff_ms = n->backoff_ms,
        .backoff_max_ms = n->backoff_max_ms,
        .no_backoff = n->backoff_ms == 0,
        .restart = n->restart,
        .parallel_stop = n->parallel_stop,
    };
    if ((rc = arbor_supervisor_new(parent, &o, &node)) < 0)
      return fail(err, errlen, n, "cannot create it", rc);
  } else {
    arbor_service_spec_t spec;
    char **env;
    if ((rc = service_spec(n, &spec, &env)) == 0)
      rc = arbor_service_add(parent, &spec, &node);
    free(env);
    if (rc < 0)
      return fail(err, errlen, n, "cannot create it", rc);
  }
  n->id = arbor_node_id(node);
  set_deps_attrs(node, n);
  (*count)++;
  return n->is_supervisor ? build_children(n, node, count, err, errlen) : 0;
}

static struct config_node *find_child(struct config_node *parent, const char *name);

/* Tells the core what n starts after (its requires and its after alike), so
 * that a one_for_one supervisor, which starts later children while an earlier
 * one waits out its restart delay, still holds n until they are STARTED. Only
 * siblings made before n count (the core's order; check_live_order reports the
 * others). Replaces what the node was told before. */
static int apply_deps(struct config_node *parent, struct config_node *n, arbor_node_t *node) {
  arbor_runtime_t *rt = arbor_node_runtime(node);
  int rc = arbor_service_start_after(node, NULL);
  for (int which = 0; which < 2 && rc == 0; which++) {
    char *const *names = which == 0 ? n->requires : n->after;
    for (size_t k = 0; names != NULL && names[k] != NULL && rc == 0; k++) {
      struct config_node *dep = find_child(parent, names[k]);
      arbor_node_t *d = dep != NULL && dep->id != 0 && dep->id < n->id
                            ? arbor_node_find(rt, dep->id)
                            : NULL;
      if (d != NULL && !arbor_node_is_finished(d))
        rc = arbor_service_start_after(node, d);
    }
  }
  return rc;
}

static int build_children(struct config_node *n, arbor_node_t *parent, unsigned *count,
                          char *err, size_t errlen) {
  for (size_t i = 0; i < n->nchildren; i++) {
    struct config_node *c = &n->children[i];
    int rc = build_node(c, parent, count, err, errlen);
    arbor_node_t *node = rc == 0 ? arbor_node_find(arbor_node_runtime(parent), c->id) : NULL;
    if (rc == 0 && node != NULL && (rc = apply_deps(n, c, node)) < 0)
      return fail(err, errlen, c, "cannot order it after what it names", rc);
    if (rc < 0)
      return rc;
  }
  return 0;
}

int config_build(struct config *cfg, arbor_node_t *parent, char *err, size_t errlen) {
  unsigned count = 0;
  return build_node(&cfg->top, parent, &count, err, errlen);
}


/* --------------------------------------------------------------- reload */

static struct config_node *find_child(struct config_node *parent, const char *name) {
  for (size_t i = 0; i < parent->nchildren; i++)
    if (strcmp(parent->children[i].name, name) == 0)
      return &parent->children[i];
  return NULL;
}

/* The live node a config node was built as, unless it finished (or was never
 * built). */
static arbor_node_t *live_node(arbor_runtime_t *rt, const struct config_node *n) {
  arbor_node_t *node = n->id != 0 ? arbor_node_find(rt, n->id) : NULL;
  return node != NULL && !arbor_node_is_finished(node) ? node : NULL;
}

struct reload {
  arbor_runtime_t *rt;
  struct config_diff *diff;
  char *err;
  size_t errlen;
  int rc;                        /* the first error */
};

static void reconcile(struct reload *r, struct config_node *cur, struct config_node *next,
                      arbor_node_t *parent);

/* One new child: kept as it runs, updated, or made. */
static int reconcile_one(struct reload *r, struct config_node *old, struct config_node *n,
                         arbor_node_t *parent) {
  arbor_node_t *node = old != NULL ? live_node(r->rt, old) : NULL;
  if (node == NULL) {
    unsigned made = 0;
    int rc = build_node(n, parent, &made, r->err, r->errlen);
    r->diff->added += made;
    return rc;
  }
  n->id = old->id;
  set_deps_attrs(node, n);
  if (n->is_supervisor) {
    if (!config_supervisor_equal(old, n)) {
      fprintf(stderr, "arbor: supervisor %s (%s, id %llu): restart needed for supervisor "
                      "option changes\n", n->name, n->path, (unsigned long long)n->id);
      r->diff->sup_changed++;
      /* What runs is what the config now says it runs, so the next reload
       * notices the difference again. */
      n->strategy = old->strategy;
      n->intensity = old->intensity;
      n->period_ms = old->period_ms;
      n->backoff_ms = old->backoff_ms;
      n->backoff_max_ms = old->backoff_max_ms;
      n->restart = old->restart;
      n->parallel_stop = old->parallel_stop;
    } else {
      r->diff->unchanged++;
    }
    reconcile(r, old, n, node);  /* logs and counts its own failures */
    return 0;
  }
  if (config_service_equal(old, n)) {
    r->diff->unchanged++;
    return 0;
  }
  arbor_service_spec_t spec;
  char **env;
  int rc = service_spec(n, &spec, &env);
  if (rc == 0)
    rc = arbor_service_update(node, &spec);
  free(env);
  if (rc < 0)
    return fail(r->err, r->errlen, n, "cannot update it", rc);
  r->diff->restarted++;
  return 0;
}


/* Siblings start in the order they were made (ids grow), which a reload cannot
 * change: say where that order now disagrees with requires/after. */
static void check_live_order(struct reload *r, struct config_node *next) {
  for (size_t i = 0; i < next->nchildren; i++) {
    struct config_node *n = &next->children[i];
    for (int which = 0; which < 2; which++) {
      char *const *names = which == 0 ? n->requires : n->after;
      for (size_t k = 0; names != NULL && names[k] != NULL; k++) {
        struct config_node *dep = find_child(next, names[k]);
        if (dep == NULL || n->id == 0 || dep->id == 0 || dep->id < n->id)
          continue;
        fprintf(stderr, "arbor: %s %s (%s, id %llu) started before %s, which it %s: restart "
                        "needed for the new start order\n",
                n->is_supervisor ? "supervisor" : "service", n->name, n->path,
                (unsigned long long)n->id, dep->name, which == 0 ? "requires" : "comes after");
        r->diff->sup_changed++;
      }
    }
  }
}

static void reconcile(struct reload *r, struct config_node *cur, struct config_node *next,
                      arbor_node_t *parent) {
  /* Removed first, so that a name that changed kind is free before it is added. */
  for (size_t i = 0; i < cur->nchildren; i++) {
    struct config_node *old = &cur->children[i];
    struct config_node *n = find_child(next, old->name);
    if (n != NULL && n->is_supervisor == old->is_supervisor)
      continue;
    arbor_node_t *node = live_node(r->rt, old);
    if (node != NULL && arbor_node_cancel(node) == 0)
      r->diff->removed++;
  }
  for (size_t i = 0; i < next->nchildren; i++) {
    struct config_node *n = &next->children[i];
    struct config_node *old = find_child(cur, n->name);
    if (old != NULL && old->is_supervisor != n->is_supervisor)
      old = NULL;
    /* One node that cannot be updated must not hold back the others. */
    int rc = reconcile_one(r, old, n, parent);
    if (rc < 0) {
      fprintf(stderr, "arbor: reload: %s\n", r->err);
      r->diff->failed++;
      if (r->rc == 0)
        r->rc = rc;
    }
  }
  for (size_t i = 0; i < next->nchildren; i++) {
    struct config_node *n = &next->children[i];
    arbor_node_t *node = live_node(r->rt, n);
    if (node != NULL && apply_deps(next, n, node) < 0)
      fprintf(stderr, "arbor: reload: %s %s (%s): cannot order it after what it names: out "
                      "of memory\n", n->is_supervisor ? "supervisor" : "service", n->name,
              n->path);
  }
  check_live_order(r, next);
}

static int str_same(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int admin_equal(const struct config *a, const struct config *b) {
  return strcmp(a->bind, b->bind) == 0 && a->port == b->port &&
         (a->token == NULL) == (b->token == NULL) &&
         (a->token == NULL || strcmp(a->token, b->token) == 0) &&
         (a->token_file == NULL) == (b->token_file == NULL) &&
         (a->token_file == NULL || strcmp(a->token_file, b->token_file) == 0) &&
         a->max_connections == b->max_connections &&
         (a->cors_origin == NULL) == (b->cors_origin == NULL) &&
         (a->cors_origin == NULL || strcmp(a->cors_origin, b->cors_origin) == 0) &&
         a->shutdown_timeout_ms == b->shutdown_timeout_ms &&
         a->event_capacity == b->event_capacity && str_same(a->service_name, b->service_name) &&
         str_same(a->trace_out, b->trace_out) && a->trace_format == b->trace_format &&
         str_same(a->otlp_endpoint, b->otlp_endpoint);
}

int config_reload(struct config *cur, struct config *next, arbor_runtime_t *rt,
                  struct config_diff *diff, char *err, size_t errlen) {
  memset(diff, 0, sizeof *diff);
  struct reload r = {.rt = rt, .diff = diff, .err = err, .errlen = errlen};
  diff->admin_changed = !admin_equal(cur, next);
  arbor_node_t *top = live_node(rt, &cur->top);
  if (top == NULL) {
    snprintf(err, errlen, "the config's supervisor (id %llu) has finished",
             (unsigned long long)cur->top.id);
    return ARBOR_EFINISHED;
  }
  next->top.id = cur->top.id;
  if (next->top.parallel_stop != cur->top.parallel_stop) {
    fprintf(stderr, "arbor: supervisor config (tree, id %llu): restart needed for the stop "
                    "order of requires/after (parallel_stop is now %s)\n",
            (unsigned long long)cur->top.id, cur->top.parallel_stop ? "true" : "false");
    diff->sup_changed++;
    next->top.parallel_stop = cur->top.parallel_stop;   /* what runs, as reconcile_one */
  }
  reconcile(&r, &cur->top, &next->top, top);
  return r.rc;
}

/* ------------------------------------------------------------ live update */

int config_build_one(struct config_node *top, struct config_node *n, arbor_node_t *parent,
                     char *err, size_t errlen) {
  unsigned count = 0;
  int rc = build_node(n, parent, &count, err, errlen);
  arbor_node_t *node = rc == 0 ? arbor_node_find(arbor_node_runtime(parent), n->id) : NULL;
  if (node != NULL && (rc = apply_deps(top, n, node)) < 0) {
    (void)arbor_node_cancel(node);   /* all or nothing: it never ran */
    return fail(err, errlen, n, "cannot order it after what it names", rc);
  }
  return rc;
}

int config_update_one(arbor_runtime_t *rt, struct config_node *top,
                      const struct config_node *old, struct config_node *n, char *err,
                      size_t errlen) {
  arbor_node_t *node = live_node(rt, old);
  if (node == NULL) {
    snprintf(err, errlen, "service %s (id %llu) has finished", old->name,
             (unsigned long long)old->id);
    return ARBOR_EFINISHED;
  }
  arbor_service_spec_t spec;
  char **env;
  int rc = service_spec(n, &spec, &env);
  if (rc == 0)
    rc = arbor_service_update(node, &spec);
  free(env);
  if (rc < 0)
    return fail(err, errlen, n, "cannot update it", rc);
  n->id = old->id;
  set_deps_attrs(node, n);
  if (apply_deps(top, n, node) < 0)   /* as a reload: the update itself stands */
    fprintf(stderr, "arbor: service %s: cannot order it after what it names: out of memory\n",
            n->name);
  return 0;
}

void config_set_deps(arbor_runtime_t *rt, struct config_node *top, struct config_node *n) {
  arbor_node_t *node = live_node(rt, n);
  if (node == NULL)
    return;
  set_deps_attrs(node, n);
  if (apply_deps(top, n, node) < 0)
    fprintf(stderr, "arbor: service %s: cannot order it after what it names: out of memory\n",
            n->name);
}
