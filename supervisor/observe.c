/* supervisor/observe.c - the observation API: lookup, children, walks, text.
 *
 * Everything here only reads. It runs on the loop thread like everything else, so
 * a walk sees one consistent point in time: no node changes while it runs. This is
 * the only door tracing/ and http/ use into the tree.
 */
#include <string.h>

#include "internal.h"

arbor_node_t *arbor_node_find(arbor_runtime_t *rt, uint64_t id) {
  if (rt == NULL || id == 0)
    return NULL;
  return arbor__idmap_get(&rt->ids, id);
}

arbor_node_t *arbor_node_first_child(const arbor_node_t *n) {
  return n != NULL ? n->first_child : NULL;
}

arbor_node_t *arbor_node_next_sibling(const arbor_node_t *n) {
  /* An evicted node has left its parent's list; its links now serve the zombie
   * list and lead nowhere useful. */
  if (n == NULL || n->parent == NULL || (n->flags & ARBOR__F_EVICTED) ||
      n->next == n->parent->first_child)
    return NULL;
  return n->next;
}

int arbor_node_children(const arbor_node_t *n, size_t offset, size_t limit, arbor_node_t **out,
                        size_t *total) {
  if (n == NULL || (out == NULL && limit > 0))
    return ARBOR_EINVAL;
  if (total != NULL)
    *total = n->nchildren;
  if (limit > INT32_MAX)
    limit = INT32_MAX;
  size_t i = 0, w = 0;
  for (arbor_node_t *c = n->first_child; c != NULL && w < limit; c = arbor_node_next_sibling(c)) {
    if (i++ >= offset)
      out[w++] = c;
  }
  return (int)w;
}

static int walk(arbor_node_t *n, int depth, int max_depth, arbor_walk_cb visit, void *arg) {
  int rc = visit(n, depth, arg);
  if (rc < 0)
    return rc;
  if (rc > 0 || (max_depth >= 0 && depth >= max_depth))
    return 0;
  for (arbor_node_t *c = n->first_child; c != NULL; c = arbor_node_next_sibling(c)) {
    rc = walk(c, depth + 1, max_depth, visit, arg);
    if (rc < 0)
      return rc;
  }
  return 0;
}

int arbor_tree_walk(arbor_node_t *n, int max_depth, arbor_walk_cb visit, void *arg) {
  if (n == NULL || visit == NULL)
    return ARBOR_EINVAL;
  return walk(n, 0, max_depth, visit, arg);
}

static int print_node(arbor_node_t *n, int depth, void *arg) {
  FILE *out = arg;
  fprintf(out, "%*s%s %s #%llu %s", depth * 2, "", arbor_kind_name((arbor_kind_t)n->kind),
          n->name, (unsigned long long)n->id, arbor_state_name((arbor_state_t)n->state));
  if (n->outcome != ARBOR_OUTCOME_NONE)
    fprintf(out, " %s", arbor_outcome_name((arbor_outcome_t)n->outcome));
  else if (n->flags & ARBOR__F_CANCEL)
    fprintf(out, " (cancelling)");
  struct arbor__child *c = arbor__child_of(n);
  if (c != NULL && c->phase != ARBOR_PHASE_RUNNING && c->phase != ARBOR_PHASE_DONE)
    fprintf(out, " [%s]", arbor_phase_name((arbor_phase_t)c->phase));
  if (c != NULL && c->restarts > 0)
    fprintf(out, " restarts=%u", c->restarts);
  if (n->flags & ARBOR__F_STUCK)
    fprintf(out, " STUCK");
  arbor_fiber_info_t fi;
  if (arbor_node_fiber_info(n, &fi) == 0 && fi.wait_what != NULL)
    fprintf(out, " in %s at %s:%d", fi.wait_what, fi.wait_file != NULL ? fi.wait_file : "?",
            fi.wait_line);
  fputc('\n', out);
  /* The whole chain where a failure started; a group's error group repeats its
   * children's chains, which are printed under the children, so it gets its first
   * line only. */
  if (n->error != NULL) {
    int len = arbor_error_format(n->error, NULL, 0);
    char *text = malloc((size_t)len + 1);
    if (text == NULL)
      return 0;
    arbor_error_format(n->error, text, (size_t)len + 1);
    int whole = arbor_error_child_count(n->error) == 0;
    for (char *line = text; *line != '\0';) {
      char *nl = strchr(line, '\n');
      int llen = nl != NULL ? (int)(nl - line) : (int)strlen(line);
      fprintf(out, "%*s! %.*s\n", depth * 2 + 2, "", llen, line);
      if (nl == NULL || !whole)
        break;
      line = nl + 1;
    }
    free(text);
  }
  return 0;
}

int arbor_tree_print(arbor_node_t *n, FILE *out) {
  if (n == NULL || out == NULL)
    return ARBOR_EINVAL;
  return arbor_tree_walk(n, -1, print_node, out);
}
