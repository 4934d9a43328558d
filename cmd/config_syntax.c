/* cmd/config_syntax.c - where a config file stops being JSON, and what was
 * expected there.
 *
 * cJSON reports only the position where it gave up, and only roughly (a missing
 * comma is reported at the next key). An operator who mistyped a config at 3 a.m.
 * deserves "5:3: expected ',' or '}' after an object member", so this small
 * recursive-descent checker walks RFC 8259's grammar once before cJSON parses the
 * text, and stops at the first byte that cannot continue a JSON document.
 */
#include <stddef.h>
#include <string.h>

#include "config.h"

#define MAX_DEPTH 64             /* a config is a few levels deep; cJSON allows 1000 */

struct scan {
  const char *s;
  size_t len, pos;
  const char *what;              /* set at the first error */
  int depth;
};

static int at_end(const struct scan *sc) { return sc->pos >= sc->len; }
static char peek(const struct scan *sc) { return at_end(sc) ? '\0' : sc->s[sc->pos]; }

/* Records the first error only: the innermost caller knows best. */
static int fail(struct scan *sc, const char *what) {
  if (sc->what == NULL)
    sc->what = what;
  return -1;
}

/* JSON's four whitespace characters. A '/' is a comment someone expected to work. */
static void skip_ws(struct scan *sc) {
  while (!at_end(sc)) {
    char c = sc->s[sc->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return;
    sc->pos++;
  }
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int hex_value(char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* At the opening quote. */
static int scan_string(struct scan *sc) {
  sc->pos++;
  for (;;) {
    if (at_end(sc))
      return fail(sc, "unterminated string: expected '\"'");
    unsigned char c = (unsigned char)sc->s[sc->pos];
    if (c == '"') {
      sc->pos++;
      return 0;
    }
    if (c < 0x20)
      return fail(sc, c == '\n' ? "unterminated string: expected '\"' before the end of the line"
                                : "control character in a string: expected it escaped (\\t, \\u0001)");
    if (c != '\\') {
      sc->pos++;
      continue;
    }
    sc->pos++;
    char e = peek(sc);
    if (e == 'u') {
      unsigned v = 0;
      for (int i = 1; i <= 4; i++) {
        if (sc->pos + (size_t)i >= sc->len || !is_hex(sc->s[sc->pos + (size_t)i])) {
          sc->pos += (size_t)i;
          return fail(sc, "bad \\u escape: expected four hex digits");
        }
        v = v * 16 + (unsigned)hex_value(sc->s[sc->pos + (size_t)i]);
      }
      /* UTF-16 surrogates come in pairs: cJSON refuses a lone one, which
       * config_load would then report as "out of memory". */
      if (v >= 0xDC00 && v <= 0xDFFF)
        return fail(sc, "bad \\u escape: a low surrogate (\\uDC00-\\uDFFF) without a high one "
                        "before it");
      sc->pos += 5;
      if (v >= 0xD800 && v <= 0xDBFF) {
        unsigned lo = 0;
        int ok = sc->pos + 6 <= sc->len && sc->s[sc->pos] == '\\' && sc->s[sc->pos + 1] == 'u';
        for (int i = 2; ok && i < 6; i++) {
          ok = is_hex(sc->s[sc->pos + (size_t)i]);
          lo = lo * 16 + (ok ? (unsigned)hex_value(sc->s[sc->pos + (size_t)i]) : 0);
        }
        if (!ok || lo < 0xDC00 || lo > 0xDFFF)
          return fail(sc, "bad \\u escape: a high surrogate (\\uD800-\\uDBFF) must be followed "
                          "by a low one (\\uDC00-\\uDFFF)");
        sc->pos += 6;
      }
    } else if (e != '\0' && strchr("\"\\/bfnrt", e) != NULL) {
      sc->pos++;
    } else {
      return fail(sc, "bad escape in a string: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
    }
  }
}

static int scan_digits(struct scan *sc) {
  size_t start = sc->pos;
  while (peek(sc) >= '0' && peek(sc) <= '9')
    sc->pos++;
  return sc->pos > start ? 0 : -1;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int scan_number(struct scan *sc) {
  if (peek(sc) == '-')
    sc->pos++;
  if (peek(sc) == '0') {
    sc->pos++;
    if (peek(sc) >= '0' && peek(sc) <= '9')
      return fail(sc, "bad number: expected no leading zero");
  } else if (scan_digits(sc) < 0) {
    return fail(sc, "bad number: expected a digit");
  }
  if (peek(sc) == '.') {
    sc->pos++;
    if (scan_digits(sc) < 0)
      return fail(sc, "bad number: expected a digit after '.'");
  }
  if (peek(sc) == 'e' || peek(sc) == 'E') {
    sc->pos++;
    if (peek(sc) == '+' || peek(sc) == '-')
      sc->pos++;
    if (scan_digits(sc) < 0)
      return fail(sc, "bad number: expected a digit in the exponent");
  }
  return 0;
}

static int scan_word(struct scan *sc, const char *word) {
  size_t n = strlen(word);
  for (size_t i = 0; i < n; i++, sc->pos++)
    if (at_end(sc) || sc->s[sc->pos] != word[i])
      return fail(sc, "expected a value (object, array, string, number, true, false or null)");
  return 0;
}

static int scan_value(struct scan *sc);

static int scan_object(struct scan *sc) {
  sc->pos++;                     /* '{' */
  skip_ws(sc);
  if (peek(sc) == '}') {
    sc->pos++;
    return 0;
  }
  for (int first = 1;; first = 0) {
    skip_ws(sc);
    if (peek(sc) != '"') {
      if (at_end(sc))
        return fail(sc, "unexpected end of file: expected a string key (an object is not closed)");
      if (!first && peek(sc) == '}')
        return fail(sc, "trailing ',' before '}': expected another member");
      if (peek(sc) == '/')
        return fail(sc, "comments are not allowed in JSON: expected a string key");
      return fail(sc, first ? "expected a string key or '}'" : "expected a string key after ','");
    }
    if (scan_string(sc) < 0)
      return -1;
    skip_ws(sc);
    if (peek(sc) != ':')
      return fail(sc, "expected ':' after the key");
    sc->pos++;
    if (scan_value(sc) < 0)
      return -1;
    skip_ws(sc);
    if (peek(sc) == '}') {
      sc->pos++;
      return 0;
    }
    if (peek(sc) != ',')
      return fail(sc, at_end(sc) ? "unexpected end of file: expected ',' or '}' (an object is not closed)"
                                 : "expected ',' or '}' after an object member");
    sc->pos++;
  }
}

static int scan_array(struct scan *sc) {
  sc->pos++;                     /* '[' */
  skip_ws(sc);
  if (peek(sc) == ']') {
    sc->pos++;
    return 0;
  }
  for (;;) {
    skip_ws(sc);
    if (peek(sc) == ']')
      return fail(sc, "trailing ',' before ']': expected another value");
    if (scan_value(sc) < 0)
      return -1;
    skip_ws(sc);
    if (peek(sc) == ']') {
      sc->pos++;
      return 0;
    }
    if (peek(sc) != ',')
      return fail(sc, at_end(sc) ? "unexpected end of file: expected ',' or ']' (an array is not closed)"
                                 : "expected ',' or ']' after an array element");
    sc->pos++;
  }
}

static int scan_value(struct scan *sc) {
  skip_ws(sc);
  if (at_end(sc))
    return fail(sc, "unexpected end of file: expected a value");
  char c = peek(sc);
  int rc;
  switch (c) {
  case '{':
  case '[':
    if (++sc->depth > MAX_DEPTH)
      return fail(sc, "nested too deep: expected at most 64 levels of objects and arrays");
    rc = c == '{' ? scan_object(sc) : scan_array(sc);
    sc->depth--;
    return rc;
  case '"': return scan_string(sc);
  case 't': return scan_word(sc, "true");
  case 'f': return scan_word(sc, "false");
  case 'n': return scan_word(sc, "null");
  case '/': return fail(sc, "comments are not allowed in JSON: expected a value");
  case '\'': return fail(sc, "single quotes: expected a string in double quotes");
  default:
    if (c == '-' || (c >= '0' && c <= '9'))
      return scan_number(sc);
    return fail(sc, "expected a value (object, array, string, number, true, false or null)");
  }
}

int config_json_syntax(const char *text, size_t len, int *line, int *col, const char **what) {
  struct scan sc = {.s = text, .len = len};
  if (scan_value(&sc) == 0) {
    skip_ws(&sc);
    if (at_end(&sc))
      return 0;
    fail(&sc, "expected the end of the file after the top-level value");
  }
  int l = 1, c = 1;
  for (size_t i = 0; i < sc.pos && i < len; i++) {
    if (text[i] == '\n') {
      l++;
      c = 1;
    } else {
      c++;
    }
  }
  *line = l;
  *col = c;
  *what = sc.what;
  return -1;
}
