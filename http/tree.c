/* http/tree.c - GET /api/v1/tree?depth=D&root=ID&limit=L: a snapshot of the
 * tree, or of the subtree under ID, as nested nodes.
 *
 * Bounded three ways, so that serving a 100,000-node tree cannot stall the loop
 * (DESIGN.md, "Threading"): depth (default 4, at most 64), children per node
 * (limit, default 100, at most 1000) and nodes per response
 * (HTTP_TREE_NODES_MAX). The walk is breadth first, so when the node budget runs
 * out the upper levels are complete and what was cut is deep; every node whose
 * children were not all included says how many were left out ("more"), and a
 * client fetches them with /nodes/{id}/children or a /tree rooted there.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "resources.h"

/* A node whose JSON exists and whose children are still to be added. */
struct pending {
  arbor_node_t *node;
  cJSON *obj;
  int depth;
};

struct walk {
  struct http_jcx cx;
  struct pending *q;             /* FIFO: q[head..tail) */
  size_t head, tail, cap;
  size_t budget;                 /* nodes we may still add */
  size_t limit;
  int max_depth;
  int truncated;                 /* the budget cut something */
  arbor_node_t **page;           /* limit slots for arbor_node_children */
};

/* One node as a tree node; queued for its children unless at max depth. */
static cJSON *tree_node(struct walk *w, arbor_node_t *node, int depth) {
  w->cx.errors_left = HTTP_ERRORS_MAX;   /* each node's chain gets the whole budget */
  cJSON *o = http_jnode(&w->cx, node);
  if (o == NULL)
    return NULL;
  w->budget--;
  if (w->tail == w->cap) {
    /* The queue never holds more than the node budget; grow it in steps. */
    size_t cap = w->cap ? w->cap * 2 : 64;
    struct pending *q = realloc(w->q, cap * sizeof *q);
    if (q == NULL) {
      w->cx.oom = 1;
      cJSON_Delete(o);
      return NULL;
    }
    w->q = q;
    w->cap = cap;
  }
  w->q[w->tail++] = (struct pending){node, o, depth};
  return o;
}

/* Adds p's children (up to limit and the budget) as "nodes", and "more". p is
 * a copy: tree_node() may move the queue it came from. */
static void expand(struct walk *w, struct pending p) {
  arbor_node_info_t in;
  arbor_node_info(p.node, &in);
  size_t total = in.children, want = 0;
  if (p.depth < w->max_depth) {
    want = total < w->limit ? total : w->limit;
    if (want > w->budget) {
      want = w->budget;
      w->truncated = 1;
    }
  }
  size_t got = 0;
  if (p.depth < w->max_depth) {
    int n = want > 0 ? arbor_node_children(p.node, 0, want, w->page, &total) : 0;
    cJSON *arr = http_jadd(&w->cx, p.obj, "nodes", cJSON_CreateArray());
    for (int i = 0; arr != NULL && i < n; i++)
      if (http_jpush(&w->cx, arr, tree_node(w, w->page[i], p.depth + 1)) != NULL)
        got++;
  }
  if (total > got)
    http_jadd_u64(&w->cx, p.obj, "more", total - got);
}

enum MHD_Result http_tree_get(struct http_req *r) {
  enum MHD_Result ret;
  uint64_t depth, limit, root_id;
  if (http_query_u64(r, "depth", HTTP_TREE_DEPTH_DEFAULT, HTTP_TREE_DEPTH_MAX, &depth, &ret) != 0 ||
      http_query_u64(r, "limit", HTTP_PAGE_DEFAULT, HTTP_PAGE_MAX, &limit, &ret) != 0)
    return ret;
  arbor_node_t *root = arbor_root(r->rt);
  const char *root_text = http_query(r, "root");
  if (root_text != NULL) {
    if (http_parse_u64(root_text, 0, UINT64_MAX, &root_id) != 0 || root_id == 0)
      return http_error(r, 400, "bad_request",
                        "query parameter root must be a node id from 1 to %" PRIu64, UINT64_MAX);
    root = arbor_node_find(r->rt, root_id);
    if (root == NULL)
      return http_error(r, 404, "not_found", "no node %" PRIu64, root_id);
  }

  struct walk w = {.budget = HTTP_TREE_NODES_MAX, .limit = (size_t)limit, .max_depth = (int)depth};
  http_jcx_init(&w.cx, 0, 0);
  w.page = malloc((limit > 0 ? limit : 1) * sizeof *w.page);
  cJSON *doc = cJSON_CreateObject();
  if (w.page == NULL || doc == NULL) {
    free(w.page);
    cJSON_Delete(doc);
    return http_oom(r);
  }
  if (http_jadd(&w.cx, doc, "root", tree_node(&w, root, 0)) != NULL)
    while (w.head < w.tail && !w.cx.oom)
      expand(&w, w.q[w.head++]);
  http_jadd_u64(&w.cx, doc, "depth", depth);
  http_jadd_u64(&w.cx, doc, "limit", limit);
  http_jadd_u64(&w.cx, doc, "count", HTTP_TREE_NODES_MAX - w.budget);
  http_jadd_bool(&w.cx, doc, "truncated", w.truncated);
  free(w.q);
  free(w.page);
  if (w.cx.oom) {
    cJSON_Delete(doc);
    return http_oom(r);
  }
  return http_json(r, 200, doc);
}
