/* cmd/config_live.c - live service changes through the admin API, on the running
 * config (config.h, "config_live.c"; docs/config.md, "Live changes").
 *
 * The admin server (libarbor) knows no config; it hands the request body to
 * these callbacks. A body is one service object of the config's tree, parsed by
 * config.c with the file's rules (so it is refused with the file's message), and
 * the change is made on the tree and on the daemon's struct config together:
 * the config the daemon holds always says what runs. That is what makes a
 * SIGHUP reload right afterwards: it diffs that against the file, so the file
 * wins (a service added here and not in the file is removed, one removed here
 * comes back, one updated here gets the file's spec again).
 *
 * Only the services directly under the config's supervisor change here (names
 * are unique there; deeper ones change through the file). requires and after
 * are checked as the file's are, against what already runs: a new service
 * starts after every sibling, so it may name any of them; an updated one keeps
 * its place, so it may name only siblings started before it; a service that
 * another one requires is not removed (409), nor made other than permanent.
 * Nothing changes on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* The config's supervisor, live, or NULL with msg filled. */
static arbor_node_t *top_node(struct config_live *lv, char *msg, size_t msglen) {
  arbor_node_t *top = lv->cfg->top.id != 0 ? arbor_node_find(lv->rt, lv->cfg->top.id) : NULL;
  if (top != NULL && !arbor_node_is_finished(top) &&
      arbor_node_state(top) != ARBOR_STATE_STOPPING)
    return top;
  snprintf(msg, msglen, "the config's supervisor is stopping or has finished");
  return NULL;
}

static long index_of(const struct config_node *top, const char *name) {
  for (size_t i = 0; i < top->nchildren; i++)
    if (strcmp(top->children[i].name, name) == 0)
      return (long)i;
  return -1;
}

/* requires / after of n (at index self in top, or -1 when new) against the
 * running siblings. Returns 0, or ARBOR_EINVAL with msg filled. */
static int check_deps(const struct config_node *top, const struct config_node *n, long self,
                      char *msg, size_t msglen) {
  for (int which = 0; which < 2; which++) {
    char *const *names = which == 0 ? n->requires : n->after;
    const char *key = which == 0 ? "requires" : "after";
    for (size_t k = 0; names != NULL && names[k] != NULL; k++) {
      long j = index_of(top, names[k]);
      const struct config_node *dep = j >= 0 && j != self ? &top->children[j] : NULL;
      if (dep == NULL) {
        snprintf(msg, msglen, "body: %s[%zu]: no sibling named \"%s\" (requires and after name "
                              "services of the config's top level)", key, k, names[k]);
        return ARBOR_EINVAL;
      }
      if (which == 0 && dep->restart != ARBOR_PERMANENT) {
        snprintf(msg, msglen, "body: %s[%zu]: \"%s\" is %s: what a node requires must be "
                              "permanent (\"after\" only orders)",
                 key, k, names[k], arbor_restart_name(dep->restart));
        return ARBOR_EINVAL;
      }
      if (self >= 0 && dep->id > top->children[self].id) {
        snprintf(msg, msglen, "body: %s[%zu]: \"%s\" started after %s, and a running service "
                              "cannot move: change the order in the file and restart arbor",
                 key, k, names[k], n->name);
        return ARBOR_EINVAL;
      }
    }
  }
  if ((n->requires != NULL || n->after != NULL) && top->parallel_stop) {
    snprintf(msg, msglen, "body: %s: the config's supervisor stops its children all at once "
                          "(its file has no requires or after), so it cannot keep this order: "
                          "put the service in the file instead",
             n->requires != NULL ? "requires" : "after");
    return ARBOR_EINVAL;
  }
  return 0;
}

/* The first sibling that requires (or, for a removal, names at all) top's
 * child at index i; NULL: none. */
static const struct config_node *needed_by(const struct config_node *top, size_t i,
                                           int after_too) {
  const char *name = top->children[i].name;
  for (size_t s = 0; s < top->nchildren; s++) {
    if (s == i)
      continue;
    for (int which = 0; which < (after_too ? 2 : 1); which++) {
      char *const *names = which == 0 ? top->children[s].requires : top->children[s].after;
      for (size_t k = 0; names != NULL && names[k] != NULL; k++)
        if (strcmp(names[k], name) == 0)
          return &top->children[s];
    }
  }
  return NULL;
}

/* A node of the tree under top by name: its index, or -1 with msg and *rc set. */
static long find_service(const struct config_node *top, const char *name, int *rc, char *msg,
                         size_t msglen) {
  long i = index_of(top, name);
  if (i < 0) {
    snprintf(msg, msglen, "no service named \"%s\" at the top of the config's tree", name);
    *rc = ARBOR_ENOENT;
  } else if (top->children[i].is_supervisor) {
    snprintf(msg, msglen, "\"%s\" is a supervisor: supervisors change through the config file",
             name);
    *rc = ARBOR_EKIND;
    i = -1;
  }
  return i;
}

static int live_add(void *arg, const char *spec, size_t len, uint64_t *id, char *msg,
                    size_t msglen) {
  struct config_live *lv = arg;
  struct config_node *top = &lv->cfg->top;
  struct config_node n;
  if (config_service_parse(spec, len, lv->cfg->file, &n, msg, msglen) < 0)
    return ARBOR_EINVAL;
  int rc = ARBOR_EINVAL;
  long dup = index_of(top, n.name);
  arbor_node_t *parent;
  if (dup >= 0) {
    snprintf(msg, msglen, "a %s named \"%s\" exists (id %llu): PUT /api/v1/services/%s changes "
                          "its spec", top->children[dup].is_supervisor ? "supervisor" : "service",
             n.name, (unsigned long long)top->children[dup].id, n.name);
    rc = ARBOR_EEXIST;
    goto fail;
  }
  if ((rc = check_deps(top, &n, -1, msg, msglen)) < 0)
    goto fail;
  if ((parent = top_node(lv, msg, msglen)) == NULL) {
    rc = ARBOR_ESTATE;
    goto fail;
  }
  free(n.path);                  /* for the daemon's messages: where it came from */
  if ((n.path = strdup("added through the API")) == NULL) {
    rc = ARBOR_ENOMEM;
    goto fail;
  }
  struct config_node *kids = realloc(top->children, (top->nchildren + 1) * sizeof *kids);
  if (kids == NULL) {
    rc = ARBOR_ENOMEM;
    goto fail;
  }
  top->children = kids;
  n.order = top->nchildren;
  if ((rc = config_build_one(top, &n, parent, msg, msglen)) < 0) {
    rc = rc == ARBOR_ECANCELED || rc == ARBOR_ECLOSING ? ARBOR_ESTATE : rc;
    goto fail;
  }
  kids[top->nchildren++] = n;
  *id = n.id;
  fprintf(stderr, "arbor: api: added service %s (id %llu) until the next reload\n", n.name,
          (unsigned long long)n.id);
  return 0;
fail:
  config_node_free(&n);
  return rc;
}

static int live_update(void *arg, const char *name, const char *spec, size_t len,
                       uint64_t *id, int *restarted, char *msg, size_t msglen) {
  struct config_live *lv = arg;
  struct config_node *top = &lv->cfg->top;
  int rc = 0;
  long i = find_service(top, name, &rc, msg, msglen);
  if (i < 0)
    return rc;
  struct config_node *old = &top->children[i];
  struct config_node n;
  if (config_service_parse(spec, len, lv->cfg->file, &n, msg, msglen) < 0)
    return ARBOR_EINVAL;
  const struct config_node *user = needed_by(top, (size_t)i, 0);
  rc = ARBOR_EINVAL;
  if (strcmp(n.name, name) != 0) {
    snprintf(msg, msglen, "body: service: \"%s\", but the URL names \"%s\" (a service's name "
                          "is what identifies it: remove it and add the new one)", n.name, name);
    goto fail;
  }
  if (user != NULL && n.restart != ARBOR_PERMANENT) {
    snprintf(msg, msglen, "body: restart: %s requires %s, which must stay permanent",
             user->name, name);
    goto fail;
  }
  if ((rc = check_deps(top, &n, i, msg, msglen)) < 0)
    goto fail;
  if (top_node(lv, msg, msglen) == NULL) {
    rc = ARBOR_ESTATE;
    goto fail;
  }
  *restarted = !config_service_equal(old, &n);
  if (*restarted) {
    if ((rc = config_update_one(lv->rt, top, old, &n, msg, msglen)) < 0)
      goto fail;
  } else {
    n.id = old->id;              /* the same program: nothing to restart (as a reload) */
    config_set_deps(lv->rt, top, &n);
  }
  /* n takes old's place, its path and order too (they say where it is). */
  char *path = n.path;
  n.path = old->path;
  old->path = path;
  n.order = old->order;
  n.log_file_told = old->log_file_told;
  config_node_free(old);
  *old = n;
  *id = n.id;
  fprintf(stderr, "arbor: api: service %s (id %llu) %s until the next reload\n", name,
          (unsigned long long)n.id, *restarted ? "restarting with a new spec" : "unchanged");
  return 0;
fail:
  config_node_free(&n);
  return rc;
}

static int live_remove(void *arg, const char *name, uint64_t *id, char *msg, size_t msglen) {
  struct config_live *lv = arg;
  struct config_node *top = &lv->cfg->top;
  int rc = 0;
  long i = find_service(top, name, &rc, msg, msglen);
  if (i < 0)
    return rc;
  const struct config_node *user = needed_by(top, (size_t)i, 1);
  if (user != NULL) {
    snprintf(msg, msglen, "%s names %s in its requires or after: remove or update %s first",
             user->name, name, user->name);
    return ARBOR_EBUSY;
  }
  if (top_node(lv, msg, msglen) == NULL)
    return ARBOR_ESTATE;
  struct config_node *n = &top->children[i];
  *id = n->id;
  /* Stopped for good: the supervisor stops it (its stop signal, then SIGKILL
   * after its shutdown timeout) and it finishes CANCELLED; the tree keeps the
   * finished node for a while, as any finished node. */
  arbor_node_t *node = arbor_node_find(lv->rt, n->id);
  if (node != NULL && !arbor_node_is_finished(node))
    (void)arbor_node_cancel(node);
  fprintf(stderr, "arbor: api: removed service %s (id %llu) until the next reload\n", name,
          (unsigned long long)n->id);
  config_node_free(n);
  memmove(n, n + 1, (top->nchildren - (size_t)i - 1) * sizeof *n);
  top->nchildren--;
  return 0;
}

void config_live_callbacks(struct config_live *live, arbor_admin_services_t *out) {
  memset(out, 0, sizeof *out);
  out->add = live_add;
  out->update = live_update;
  out->remove = live_remove;
  out->arg = live;
}
