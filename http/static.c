/* http/static.c - the dashboard: GET / is web/index.html, GET /ui/{file} is
 * web/<file>.
 *
 * Served from the table mk/embed.c generated from web/ at build time
 * (http_assets, $(BUILD)/gen/web_assets.c): nothing is read from the file
 * system at run time. A request names a file by looking its whole name up in
 * the table, never by joining it to a directory, so "..", "%2e%2e" or an
 * encoded slash cannot reach anything else: MHD decodes the path before
 * routing, a decoded '/' makes it another route (404), and any other name is
 * simply not in the table (404, JSON like the rest of the API).
 *
 * Caching: each file has a strong ETag (its hash, from the generator) and
 * Cache-Control: no-cache, so a browser keeps the files but revalidates each
 * time: a 304 without a body while the binary is the same, the new files as
 * soon as it is not. The content type and the page's CSP are server.c's
 * (http_cached), chosen by the generator from the extension.
 */
#include <string.h>

#include "http.h"

const struct http_asset *http_asset_find(const char *name) {
  for (size_t i = 0; i < http_nassets; i++)
    if (strcmp(http_assets[i].name, name) == 0)
      return &http_assets[i];
  return NULL;
}

/* Whether an If-None-Match value names etag: "*", or a comma-separated list
 * of entity tags compared weakly (RFC 9110 13.1.2: a W/ prefix is ignored). */
static int etag_matches(const char *header, const char *etag) {
  size_t elen = strlen(etag);
  const char *p = header;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (*p == '\0')
      return 0;
    if (*p == '*')
      return 1;
    if (p[0] == 'W' && p[1] == '/')
      p += 2;
    const char *end = p;
    if (*end == '"') {           /* a quoted tag: up to its closing quote */
      const char *close = strchr(end + 1, '"');
      end = close != NULL ? close + 1 : end + strlen(end);
    } else {                     /* not a tag: skip to the next comma */
      end = strchrnul(end, ',');
    }
    if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0)
      return 1;
    p = end;
  }
}

/* 200 with the file, or 304 when the client's copy is this one. */
static enum MHD_Result serve(struct http_req *r, const struct http_asset *a) {
  const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
  unsigned status = inm != NULL && etag_matches(inm, a->etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
  return http_cached(r, status, a->content_type, a->data, a->size, a->etag);
}

enum MHD_Result http_static_index(struct http_req *r) {
  const struct http_asset *a = http_asset_find("index.html");
  if (a == NULL)
    return http_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                      "this build has no dashboard (web/index.html was not embedded)");
  return serve(r, a);
}

enum MHD_Result http_static_file(struct http_req *r) {
  const struct http_asset *a = http_asset_find(r->params[0]);
  if (a == NULL)
    return http_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no dashboard file %s", r->url);
  return serve(r, a);
}
