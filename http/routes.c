/* http/routes.c - the admin API's route table: its whole shape in one place.
 *
 * A "{name}" segment matches one non-empty path segment (r->params, in order).
 * GET routes answer HEAD too. A path that matches some pattern but not with this
 * method gets 405 with Allow; one that matches none, 404 (server.c). POST, PUT
 * and DELETE routes need the bearer token when the server has one.
 */
#include "http.h"

const struct http_route http_routes[] = {
    {"GET", "/", http_static_index},
    {"GET", "/ui/{file}", http_static_file},
    {"GET", "/healthz", http_healthz},
    {"GET", "/readyz", http_readyz},
    {"GET", "/api/v1/tree", http_tree_get},
    {"GET", "/api/v1/nodes/{id}", http_node_get},
    {"GET", "/api/v1/nodes/{id}/children", http_node_children},
    {"POST", "/api/v1/nodes/{id}/cancel", http_node_cancel},
    {"POST", "/api/v1/nodes/{id}/restart", http_node_restart},
    {"GET", "/api/v1/nodes/{id}/log", http_node_log},
    {"GET", "/api/v1/events", http_events_get},
    {"GET", "/api/v1/trace", http_trace_get},
    {"GET", "/metrics", http_metrics_get},
    {"POST", "/api/v1/services", http_services_add},
    {"PUT", "/api/v1/services/{name}", http_services_update},
    {"DELETE", "/api/v1/services/{name}", http_services_remove},
};

const size_t http_nroutes = sizeof http_routes / sizeof http_routes[0];
