/* tracing/jsonw.h - a small JSON writer for the admin API's hot paths (GET /tree)
 * and the trace exporters (tracing/).
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
#ifndef ARBOR_TRACING_JSONW_H
#define ARBOR_TRACING_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "arbor.h"

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
/* The same, but the caller owns it (free()); w is left empty, as after
 * jw_free. NULL after an error (w freed). Saves a copy where the text is handed
 * on whole (an HTTP response body). */
char *jw_take(struct jw *w, size_t *len);
/* Room for n bytes up front, where the caller expects a text about that large
 * (a repeat of the last one): one allocation instead of a doubling from 4 KiB,
 * each step copying what came before. A hint: failing to get it changes
 * nothing (the writes try again). */
void jw_presize(struct jw *w, size_t n);

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

/* The length of the longest prefix of s[0..len) that does not end inside a
 * multi-byte UTF-8 sequence that could still be completed by later bytes. */
size_t jw_utf8_complete(const char *s, size_t len);

/* Integer text without printf: returns the digits written to out (at least 21
 * bytes), not terminated. */
size_t jw_fmt_u64(uint64_t v, char *out);
size_t jw_fmt_i64(int64_t v, char *out);

/* A value written as given (a number the caller formatted), after a comma when
 * one is due. */
void jw_raw(struct jw *w, const char *text, size_t len);
/* Drops the text written so far and keeps the nesting state, so that a long
 * document can be written and handed out in pieces (the byte cap then holds for
 * each piece). */
void jw_clear(struct jw *w);
/* A newline, never with a comma: ends a document (JSON Lines, a text file). */
void jw_newline(struct jw *w);

#endif /* ARBOR_TRACING_JSONW_H */
