/* examples/seed/common.c - small helpers every seed service uses. */
#include <inttypes.h>
#include <stdio.h>

#include "seed.h"

/* Attributes are strings; counters are shown as decimal. A full attribute table
 * (ARBOR_ENOSPC) only costs the display, so the error is dropped on purpose. */
void seed_attr_u64(arbor_node_t *node, const char *key, uint64_t value) {
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRIu64, value);
  (void)arbor_node_attr_set(node, key, buf);
}

/* A service's incarnation is a child of the service node, and the tasks it runs
 * are children of the incarnation: walk up to the first SERVICE. The root is
 * never a service, so this ends. NULL outside a service. */
arbor_node_t *seed_service_of(arbor_ctx_t *cx) {
  arbor_node_t *n = arbor_ctx_node(cx);
  while (n != NULL && arbor_node_kind(n) != ARBOR_KIND_SERVICE)
    n = arbor_node_parent(n);
  return n;
}
