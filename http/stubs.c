/* http/stubs.c - placeholders for the resources' handlers until they land
 * (tree.c, nodes.c, logs.c, events.c). Each answers 501 not_implemented.
 *
 * Weak, so the shared library and a program that links every object get the
 * real handlers. NOT in a static link of libarbor.a (every test): routes.o
 * makes the handlers undefined, and ld then loads whichever archive member it
 * meets first that defines them; once stubs.o is loaded its weak definitions
 * count as defined and the real members are never pulled in (tried: h2's
 * test_api gets 501s). So this file must go in the same landing as the
 * resources: h2, `git rm http/stubs.c` in the commit that lands them (h1 agrees),
 * and rebuild from clean once (make does not notice a deleted source: the stale
 * stubs.o stays in libarbor.a until something else rebuilds it).
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
