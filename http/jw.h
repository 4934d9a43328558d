/* http/jw.h - a small JSON writer for the admin API's hot paths (GET /tree).
 *
 * cJSON builds a DOM (a malloc per item and per key) only for us to print it,
 * and cJSON 1.7.15 prints every number with "%1.15g" and reads it back with
 * sscanf: for a 202-node tree that was 90 % of the request's CPU
 * (docs/PERFORMANCE.md, "Admin API"). jw appends the text straight into one
 * growable buffer instead, producing the same bytes cJSON_PrintUnformatted
 * would for the same document (tests/http/test_jw.c compares them).
 *
 * Errors are sticky: once an allocation fails or the text would pass the byte
 * cap, `err` is set, every later call is a no-op, and the caller answers 500
 * (or 413-like) rather than send a document with fields missing. Commas are
 * handled here: a key or a value after a sibling gets one.
 */
#ifndef ARBOR_HTTP_JW_H
#define ARBOR_HTTP_JW_H

#include <stddef.h>
#include <stdint.h>

#include "resources.h"

#define JW_DEPTH_MAX 160         /* nesting levels tracked for commas */

struct jw {
  char *buf;
  size_t len, cap;
  size_t max;                    /* byte cap of the text (0: none) */
  int err;                       /* JW_EOOM or JW_ECAP, sticky */
  int depth;
  unsigned char first[JW_DEPTH_MAX];   /* no member written yet at this level */
  unsigned char after_key;       /* a key was written: the value takes no comma */
  /* RFC 3339: the date-and-time part of the last second formatted. */
  int64_t time_sec;
  char time_text[24];
};

#define JW_EOOM 1
#define JW_ECAP 2

/* max: the most bytes the text may have (0: unbounded). */
void jw_init(struct jw *w, size_t max);
void jw_free(struct jw *w);
/* The text so far, NUL-terminated (NULL after an error). */
const char *jw_text(struct jw *w, size_t *len);

void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
/* A member's name, escaped like a string. */
void jw_key(struct jw *w, const char *name);
/* A string made valid UTF-8 (each invalid byte becomes U+FFFD, as json.c's
 * utf8_clean does), escaped as cJSON escapes; NULL writes null. _max keeps at
 * most max bytes of s, cut at a character boundary. */
void jw_str(struct jw *w, const char *s);
void jw_str_max(struct jw *w, const char *s, size_t max);
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_bool(struct jw *w, int b);
void jw_null(struct jw *w);
/* A wall-clock time (Unix epoch, ns) as RFC 3339 UTC with nanoseconds, the
 * text http_format_time gives. */
void jw_time(struct jw *w, int64_t wall_ns);

/* Integer text without printf: returns the digits written to out (at least 21
 * bytes), not terminated. */
size_t jw_fmt_u64(uint64_t v, char *out);
size_t jw_fmt_i64(int64_t v, char *out);

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
