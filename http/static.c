/* http/static.c - GET /: the dashboard's place. A placeholder page until the
 * dashboard issue; served from this string, never from the file system. No
 * inline script or style: the page's Content-Security-Policy (server.c) is
 * default-src 'self'.
 */
#include "http.h"

static const char index_html[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>arbor</title>\n"
    "</head>\n"
    "<body>\n"
    "<h1>arbor</h1>\n"
    "<p>arbor &mdash; the dashboard arrives with the dashboard issue.</p>\n"
    "<p>Meanwhile, the admin API:</p>\n"
    "<ul>\n"
    "<li><a href=\"/api/v1/tree\">/api/v1/tree</a> &mdash; the supervision tree</li>\n"
    "<li><a href=\"/api/v1/events\">/api/v1/events</a> &mdash; live events (Server-Sent Events)</li>\n"
    "<li><a href=\"/healthz\">/healthz</a> &mdash; liveness</li>\n"
    "<li><a href=\"/readyz\">/readyz</a> &mdash; readiness</li>\n"
    "</ul>\n"
    "</body>\n"
    "</html>\n";

enum MHD_Result http_static_index(struct http_req *r) {
  return http_text(r, 200, "text/html; charset=utf-8", index_html, sizeof index_html - 1, 1);
}
