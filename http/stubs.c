/* http/stubs.c - placeholders for the resources' handlers until they land
 * (tree.c, nodes.c, logs.c, events.c): weak, so the real ones replace them at
 * link time. Each answers 501 not_implemented. Deleted once they are all in.
 */
#include "http.h"

static enum MHD_Result not_implemented(struct http_req *r) {
  return http_error(r, 501, "not_implemented", "%s %s is not implemented yet", r->method,
                    r->url);
}

#define STUB(name)                                                                     \
  __attribute__((weak)) enum MHD_Result name(struct http_req *r) {                     \
    return not_implemented(r);                                                         \
  }

STUB(http_tree_get)
STUB(http_node_get)
STUB(http_node_children)
STUB(http_node_cancel)
STUB(http_node_restart)
STUB(http_node_log)
STUB(http_events_get)
