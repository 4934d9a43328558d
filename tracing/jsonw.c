/* tracing/jsonw.c - the JSON writer of jsonw.h. Byte-compatible with cJSON_PrintUnformatted of json.c's documents:
 * cJSON escapes '"', '\\' and bytes below 0x20 (\b \f \n \r \t short, others
 * \u00xx) and copies every other byte; numbers that are integers come out as
 * plain decimal; no spaces.
 */
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

void jw_init(struct jw *w, size_t max) {
  memset(w, 0, sizeof *w);
  w->max = max;
  w->first[0] = 1;
  w->time_sec = INT64_MIN;
}

void jw_free(struct jw *w) {
  free(w->buf);
  w->buf = NULL;
  w->len = w->cap = 0;
}

const char *jw_text(struct jw *w, size_t *len) {
  if (w->err || w->buf == NULL) {
    *len = 0;
    return NULL;
  }
  w->buf[w->len] = '\0';         /* reserve() always keeps a byte for it */
  *len = w->len;
  return w->buf;
}

/* Room for n more bytes (and the terminator), or the error flag. Doubles, so
 * a document costs O(log size) reallocations. */
static int reserve(struct jw *w, size_t n) {
  if (w->err)
    return -1;
  if (w->max > 0 && n > w->max - w->len) {
    w->err = JW_ECAP;
    return -1;
  }
  if (n + 1 <= w->cap - w->len)
    return 0;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap - w->len < n + 1) {
    if (cap > SIZE_MAX / 2) {
      w->err = JW_EOOM;
      return -1;
    }
    cap *= 2;
  }
  char *buf = realloc(w->buf, cap);
  if (buf == NULL) {
    w->err = JW_EOOM;
    return -1;
  }
  w->buf = buf;
  w->cap = cap;
  return 0;
}

char *jw_take(struct jw *w, size_t *len) {
  if (jw_text(w, len) == NULL) {
    jw_free(w);
    return NULL;
  }
  char *text = w->buf;
  w->buf = NULL;
  w->len = w->cap = 0;
  return text;
}

void jw_presize(struct jw *w, size_t n) {
  if (n < 4096)
    n = 4096;                    /* reserve()'s first size: a smaller one would double up from it */
  if (w->err || n + 1 <= w->cap)
    return;
  if (w->max > 0 && n > w->max)
    n = w->max;
  char *buf = realloc(w->buf, n + 1);
  if (buf != NULL) {
    w->buf = buf;
    w->cap = n + 1;
  }
}

static void put(struct jw *w, const char *s, size_t n) {
  if (reserve(w, n) == 0) {
    memcpy(w->buf + w->len, s, n);
    w->len += n;
  }
}

/* Before a value or a key: the comma when a sibling came before. */
static void sep(struct jw *w) {
  if (w->after_key) {
    w->after_key = 0;
    return;
  }
  if (w->first[w->depth])
    w->first[w->depth] = 0;
  else
    put(w, ",", 1);
}

static void begin(struct jw *w, char c) {
  sep(w);
  put(w, &c, 1);
  if (w->depth + 1 >= JW_DEPTH_MAX) {
    w->err = JW_ECAP;            /* deeper than any document of ours */
    return;
  }
  w->first[++w->depth] = 1;
}

static void end(struct jw *w, char c) {
  put(w, &c, 1);
  if (w->depth > 0)
    w->depth--;
}

void jw_obj_begin(struct jw *w) { begin(w, '{'); }
void jw_obj_end(struct jw *w) { end(w, '}'); }
void jw_arr_begin(struct jw *w) { begin(w, '['); }
void jw_arr_end(struct jw *w) { end(w, ']'); }

/* ------------------------------------------------------------ strings */

/* The length of the valid UTF-8 sequence at s (at most len bytes), or 0 when
 * the byte at s starts none: json.c's utf8_seq (RFC 3629), kept in step. */
static size_t utf8_seq(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if (len < n || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

/* s[0..len) as a quoted JSON string. Worst case 6 bytes per input byte
 * (\u00xx), reserved once so the loop writes without checks. */
static void put_string(struct jw *w, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (len > (SIZE_MAX - 2) / 6) {
    w->err = JW_ECAP;
    return;
  }
  if (reserve(w, len * 6 + 2) != 0)
    return;
  const unsigned char *u = (const unsigned char *)s;
  char *o = w->buf + w->len;
  *o++ = '"';
  size_t i = 0;
  while (i < len) {
    unsigned char c = u[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      *o++ = (char)c;                    /* the common case first */
      i++;
    } else if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
      i++;
    } else if (c < 0x20) {
      char e = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r'
             : c == '\t' ? 't' : 0;
      *o++ = '\\';
      if (e != 0) {
        *o++ = e;
      } else {
        memcpy(o, "u00", 3);
        o[3] = hex[c >> 4];
        o[4] = hex[c & 15];
        o += 5;
      }
      i++;
    } else {
      size_t n = utf8_seq(u + i, len - i);
      if (n == 0) {
        memcpy(o, "\xEF\xBF\xBD", 3);   /* U+FFFD, as json.c's utf8_clean */
        o += 3;
        i++;
      } else {
        memcpy(o, s + i, n);
        o += n;
        i += n;
      }
    }
  }
  *o++ = '"';
  w->len = (size_t)(o - w->buf);
}

void jw_key(struct jw *w, const char *name) {
  sep(w);
  put_string(w, name, strlen(name));
  put(w, ":", 1);
  w->after_key = 1;
}

size_t jw_utf8_complete(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  /* A sequence is at most 4 bytes: look back over the last 3 for a lead byte
   * whose sequence runs past the end. */
  for (size_t back = 1; back <= 3 && back <= len; back++) {
    unsigned char c = u[len - back];
    if ((c & 0xC0) == 0x80)
      continue;                          /* a continuation byte: look further */
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back && c >= 0xC2 && c <= 0xF4)
      return len - back;                 /* a lead whose tail has not arrived */
    break;
  }
  return len;
}

void jw_str_max(struct jw *w, const char *s, size_t max) {
  if (s == NULL) {
    jw_null(w);
    return;
  }
  size_t len = strlen(s);
  if (len > max)
    len = jw_utf8_complete(s, max);   /* never split a character */
  sep(w);
  put_string(w, s, len);
}

void jw_str(struct jw *w, const char *s) { jw_str_max(w, s, SIZE_MAX); }

/* ------------------------------------------------------------ scalars */

size_t jw_fmt_u64(uint64_t v, char *out) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

size_t jw_fmt_i64(int64_t v, char *out) {
  if (v >= 0)
    return jw_fmt_u64((uint64_t)v, out);
  out[0] = '-';
  /* -(v + 1) + 1 stays in range for INT64_MIN. */
  return 1 + jw_fmt_u64((uint64_t)(-(v + 1)) + 1, out + 1);
}

void jw_u64(struct jw *w, uint64_t v) {
  char text[24];
  sep(w);
  put(w, text, jw_fmt_u64(v, text));
}

void jw_i64(struct jw *w, int64_t v) {
  char text[24];
  sep(w);
  put(w, text, jw_fmt_i64(v, text));
}

void jw_bool(struct jw *w, int b) {
  sep(w);
  if (b)
    put(w, "true", 4);
  else
    put(w, "false", 5);
}

void jw_null(struct jw *w) {
  sep(w);
  put(w, "null", 4);
}

/* "YYYY-MM-DDTHH:MM:SS" of a second since the epoch, by hand (gmtime_r +
 * strftime were 6.6 % of a /tree): days to a civil date after Howard
 * Hinnant's civil_from_days. Years are 1677..2262 for int64 nanoseconds. */
static void civil(int64_t sec, char *out) {
  int64_t days = sec / 86400, rem = sec % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2)
    y++;
  int f[6] = {(int)y, (int)m, (int)d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60)};
  out[0] = (char)('0' + f[0] / 1000 % 10);
  out[1] = (char)('0' + f[0] / 100 % 10);
  out[2] = (char)('0' + f[0] / 10 % 10);
  out[3] = (char)('0' + f[0] % 10);
  static const char seps[] = "--T::";
  for (int i = 1; i < 6; i++) {
    out[3 * i + 1] = seps[i - 1];
    out[3 * i + 2] = (char)('0' + f[i] / 10);
    out[3 * i + 3] = (char)('0' + f[i] % 10);
  }
}

void jw_time(struct jw *w, int64_t wall_ns) {
  /* Floor division, as http_format_time. */
  int64_t sec = wall_ns / 1000000000, ns = wall_ns % 1000000000;
  if (ns < 0) {
    ns += 1000000000;
    sec--;
  }
  if (sec != w->time_sec) {      /* a tree's times share a few seconds */
    civil(sec, w->time_text);
    w->time_sec = sec;
  }
  char text[32];
  text[0] = '"';
  memcpy(text + 1, w->time_text, 19);
  text[20] = '.';
  for (int i = 29; i >= 21; i--) {
    text[i] = (char)('0' + ns % 10);
    ns /= 10;
  }
  text[30] = 'Z';
  text[31] = '"';
  sep(w);
  put(w, text, 32);
}

void jw_raw(struct jw *w, const char *text, size_t len) {
  sep(w);
  put(w, text, len);
}

void jw_clear(struct jw *w) { w->len = 0; }

void jw_newline(struct jw *w) { put(w, "\n", 1); }
