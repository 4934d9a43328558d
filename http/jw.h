/* http/jw.h - the admin API's node and error shapes written with the JSON writer
 * of tracing/jsonw.h (struct jw: see there why it exists). */
#ifndef ARBOR_HTTP_JW_H
#define ARBOR_HTTP_JW_H

#include "jsonw.h"
#include "resources.h"

/* ------------------------------------------------------ arbor values (jw.c)
 * The node and error shapes of json.c, written with jw: the same fields, order
 * and budgets (struct http_jcx) as http_jnode and http_jerror. jw_node_fields
 * leaves the object open, so a caller (tree.c) can add members. */
void jw_error(struct jw *w, struct http_jcx *cx, const arbor_error_t *err);
void jw_node_fields(struct jw *w, struct http_jcx *cx, arbor_node_t *node);

/* tree.c: the body of GET /api/v1/tree for root (depth, limit as the query
 * gave them) into w. Returns 0, or -1 when w failed. */
int http_tree_write(struct jw *w, arbor_node_t *root, int depth, size_t limit);

#endif /* ARBOR_HTTP_JW_H */
