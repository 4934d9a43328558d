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
 *
 * Two passes, because the text nests depth first while the budget is spent
 * breadth first: the walk chooses the nodes (a node's children land next to
 * each other in the queue, so a node only records where they start), then
 * write() emits them as nested objects with jw (http/jw.h), straight into one
 * buffer: no cJSON DOM, which was 90 % of this request's CPU.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "jw.h"

/* A node chosen for the response, and which of its children were. */
struct pending {
  arbor_node_t *node;
  size_t first;                  /* its children's index in the queue */
  size_t n;                      /* how many of them were included */
  size_t total;                  /* its children when we looked */
  int depth;
};

struct walk {
  struct pending *q;             /* FIFO: q[head..tail), kept for write() */
  size_t head, tail, cap;
  size_t budget;                 /* nodes we may still add */
  size_t limit;
  int max_depth;
  int truncated;                 /* the budget cut something */
  arbor_node_t **page;           /* limit slots for arbor_node_children */
};

static int push(struct walk *w, arbor_node_t *node, int depth) {
  if (w->tail == w->cap) {
    /* The queue never holds more than the node budget; grow it in steps. */
    size_t cap = w->cap ? w->cap * 2 : 64;
    struct pending *q = realloc(w->q, cap * sizeof *q);
    if (q == NULL)
      return -1;
    w->q = q;
    w->cap = cap;
  }
  w->q[w->tail++] = (struct pending){.node = node, .depth = depth};
  w->budget--;
  return 0;
}

/* Chooses q[i]'s children (up to limit and the budget) and queues them. */
static int expand(struct walk *w, size_t i) {
  arbor_node_info_t in;
  arbor_node_info(w->q[i].node, &in);
  int depth = w->q[i].depth;
  size_t total = in.children, want = 0;
  if (depth < w->max_depth) {
    want = total < w->limit ? total : w->limit;
    if (want > w->budget) {
      want = w->budget;
      w->truncated = 1;
    }
  }
  int n = want > 0 ? arbor_node_children(w->q[i].node, 0, want, w->page, &total) : 0;
  size_t first = w->tail;
  for (int k = 0; k < n; k++)
    if (push(w, w->page[k], depth + 1) != 0)
      return -1;
  w->q[i].first = first;         /* after push(): it may move the queue */
  w->q[i].n = (size_t)(n > 0 ? n : 0);
  w->q[i].total = total;
  return 0;
}

/* q[i] and its chosen descendants as a tree node (depth first; the depth is at
 * most HTTP_TREE_DEPTH_MAX, so the recursion is bounded). */
static void write_node(struct jw *jw, struct walk *w, size_t i) {
  const struct pending *p = &w->q[i];
  struct http_jcx cx;
  http_jcx_init(&cx, 0, 0);      /* each node's chain gets the whole budget */
  jw_node_fields(jw, &cx, p->node);
  if (p->depth < w->max_depth) {
    jw_key(jw, "nodes");
    jw_arr_begin(jw);
    for (size_t k = 0; k < p->n && !jw->err; k++)
      write_node(jw, w, p->first + k);
    jw_arr_end(jw);
  }
  if (p->total > p->n) {
    jw_key(jw, "more");
    jw_u64(jw, p->total - p->n);
  }
  jw_obj_end(jw);
}

int http_tree_write(struct jw *jw, arbor_node_t *root, int depth, size_t limit) {
  struct walk w = {.budget = HTTP_TREE_NODES_MAX, .limit = limit, .max_depth = depth};
  w.page = malloc((limit > 0 ? limit : 1) * sizeof *w.page);
  int rc = w.page != NULL && push(&w, root, 0) == 0 ? 0 : -1;
  while (rc == 0 && w.head < w.tail)
    rc = expand(&w, w.head++);
  if (rc == 0) {
    jw_obj_begin(jw);
    jw_key(jw, "root");
    write_node(jw, &w, 0);
    jw_key(jw, "depth");
    jw_u64(jw, (uint64_t)depth);
    jw_key(jw, "limit");
    jw_u64(jw, limit);
    jw_key(jw, "count");
    jw_u64(jw, HTTP_TREE_NODES_MAX - w.budget);
    jw_key(jw, "truncated");
    jw_bool(jw, w.truncated);
    jw_obj_end(jw);
  }
  free(w.q);
  free(w.page);
  return rc == 0 && !jw->err ? 0 : -1;
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

  struct jw jw;
  jw_init(&jw, 0);               /* bounded by the node budget, not a byte cap */
  /* Room for the last answer's size up front: a 76 KB tree grew through five
   * reallocs, each copying what came before. */
  jw_presize(&jw, http_tree_size_hint(r->admin));
  size_t len;
  char *text = http_tree_write(&jw, root, (int)depth, (size_t)limit) == 0 ? jw_take(&jw, &len)
                                                                            : NULL;
  if (text == NULL) {
    jw_free(&jw);
    return http_oom(r);
  }
  http_tree_size_seen(r->admin, len);
  return http_text_take(r, 200, "application/json; charset=utf-8", text, len);
}
