/* supervisor/error.c - immutable, reference-counted errors and their text form.
 *
 * One allocation holds the struct, the message, the file and the function name, so
 * an error never points into memory its creator might free. An error is immutable
 * once shared; the one exception is arbor__error_set_node, which stamps the node id
 * on an error nobody else holds yet (refs == 1) when a task fails with it.
 */
#include <stdarg.h>
#include <string.h>

#include "internal.h"

struct arbor_error_s {
  uint32_t refs;
  int code;
  int line;
  uint64_t time_ns;
  uint64_t node_id;
  const char *file;
  const char *func;
  arbor_error_t *cause;
  arbor_error_t **children;
  size_t nchildren;
  char text[];                   /* message \0 file \0 func \0 */
};

static arbor_error_t *error_alloc(int code, arbor_error_t *cause, const char *file, int line,
                                  const char *func, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int mlen = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (mlen < 0)
    mlen = 0;
  if (file == NULL)
    file = "";
  if (func == NULL)
    func = "";
  size_t flen = strlen(file), fnlen = strlen(func);
  arbor_error_t *e = malloc(sizeof *e + (size_t)mlen + 1 + flen + 1 + fnlen + 1);
  if (e == NULL)
    return NULL;
  e->refs = 1;
  e->code = code;
  e->line = line;
  e->time_ns = uv_hrtime();
  e->node_id = 0;
  e->cause = cause;
  e->children = NULL;
  e->nchildren = 0;
  vsnprintf(e->text, (size_t)mlen + 1, fmt, ap);
  char *f = e->text + mlen + 1;
  memcpy(f, file, flen + 1);
  char *fn = f + flen + 1;
  memcpy(fn, func, fnlen + 1);
  e->file = f;
  e->func = fn;
  return e;
}

arbor_error_t *arbor_error_new_at(int code, arbor_error_t *cause, const char *file, int line,
                                  const char *func, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  arbor_error_t *e = error_alloc(code, cause, file, line, func, fmt != NULL ? fmt : "", ap);
  va_end(ap);
  if (e == NULL)
    arbor_error_unref(cause);   /* documented: the cause reference is taken either way */
  return e;
}

arbor_error_t *arbor_error_ref(arbor_error_t *err) {
  if (err != NULL)
    err->refs++;
  return err;
}

/* Iterative along the cause chain so that a very long chain cannot overflow the
 * stack; recursion only into group children, whose depth follows the tree. */
void arbor_error_unref(arbor_error_t *err) {
  while (err != NULL) {
    ARBOR_ASSERT(err->refs > 0);
    if (--err->refs > 0)
      return;
    arbor_error_t *cause = err->cause;
    for (size_t i = 0; i < err->nchildren; i++)
      arbor_error_unref(err->children[i]);
    free(err->children);
    free(err);
    err = cause;
  }
}

int arbor_error_code(const arbor_error_t *e) { return e != NULL ? e->code : 0; }
const char *arbor_error_message(const arbor_error_t *e) { return e != NULL ? e->text : ""; }
const char *arbor_error_file(const arbor_error_t *e) { return e != NULL ? e->file : ""; }
int arbor_error_line(const arbor_error_t *e) { return e != NULL ? e->line : 0; }
const char *arbor_error_function(const arbor_error_t *e) { return e != NULL ? e->func : ""; }
uint64_t arbor_error_time_ns(const arbor_error_t *e) { return e != NULL ? e->time_ns : 0; }
uint64_t arbor_error_node_id(const arbor_error_t *e) { return e != NULL ? e->node_id : 0; }
const arbor_error_t *arbor_error_cause(const arbor_error_t *e) { return e != NULL ? e->cause : NULL; }
size_t arbor_error_child_count(const arbor_error_t *e) { return e != NULL ? e->nchildren : 0; }

const arbor_error_t *arbor_error_child(const arbor_error_t *e, size_t i) {
  return e != NULL && i < e->nchildren ? e->children[i] : NULL;
}

void arbor__error_set_node(arbor_error_t *err, uint64_t node_id) {
  if (err != NULL && err->node_id == 0 && err->refs == 1)
    err->node_id = node_id;
}

/* The error of a failed group: code ARBOR_EGROUP, one child per failed child in
 * the order they failed. Takes new references to the children. NULL when out of
 * memory. */
arbor_error_t *arbor__error_group_new(arbor_node_t *group, arbor_error_t **children, size_t n) {
  /* No source location: the group is not code, and arbor's own file:line would
   * only mislead. */
  arbor_error_t *e = arbor_error_new_at(ARBOR_EGROUP, NULL, "", 0, "",
                                        "%s %s: %zu %s failed", arbor_kind_name(group->kind),
                                        group->name, n, n == 1 ? "child" : "children");
  if (e == NULL)
    return NULL;
  if (n > 0) {
    e->children = malloc(n * sizeof *e->children);
    if (e->children == NULL) {
      arbor_error_unref(e);
      return NULL;
    }
    for (size_t i = 0; i < n; i++)
      e->children[i] = arbor_error_ref(children[i]);
    e->nchildren = n;
  }
  e->node_id = group->id;
  return e;
}

/* ------------------------------------------------------------ text form */

struct strbuf {
  char *buf;
  size_t size;
  size_t len;                    /* length the whole text needs so far */
};

static void sb_printf(struct strbuf *sb, const char *fmt, ...) ARBOR_PRINTF(2, 3);
static void sb_printf(struct strbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = sb->len < sb->size ? sb->size - sb->len : 0;
  int n = vsnprintf(room > 0 ? sb->buf + sb->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    sb->len += (size_t)n;
}

/* One error on one line: "NAME: message [node N] at file:line (func)". */
static void format_one(struct strbuf *sb, const arbor_error_t *e) {
  sb_printf(sb, "%s: %s", arbor_err_name(e->code), e->text);
  if (e->node_id != 0)
    sb_printf(sb, " [node %llu]", (unsigned long long)e->node_id);
  if (e->file[0] != '\0')
    sb_printf(sb, " at %s:%d", e->file, e->line);
  if (e->func[0] != '\0')
    sb_printf(sb, " (%s)", e->func);
  sb_printf(sb, "\n");
}

static void format_chain(struct strbuf *sb, const arbor_error_t *e, int indent,
                         const char *label) {
  for (; e != NULL; e = e->cause) {
    sb_printf(sb, "%*s%s", indent, "", label);
    format_one(sb, e);
    for (size_t i = 0; i < e->nchildren; i++) {
      char child_label[64];
      snprintf(child_label, sizeof child_label, "child %zu of %zu: ", i + 1, e->nchildren);
      format_chain(sb, e->children[i], indent + 2, child_label);
    }
    indent += 2;
    label = "caused by: ";
  }
}

int arbor_error_format(const arbor_error_t *err, char *buf, size_t size) {
  if (err == NULL)
    return ARBOR_EINVAL;
  struct strbuf sb = {buf, size, 0};
  if (buf != NULL && size > 0)
    buf[0] = '\0';
  format_chain(&sb, err, 0, "");
  if (buf != NULL && size > 0 && sb.len >= size)
    buf[size - 1] = '\0';
  return sb.len > (size_t)INT32_MAX ? INT32_MAX : (int)sb.len;
}

int arbor_error_print(const arbor_error_t *err, FILE *out) {
  if (err == NULL || out == NULL)
    return ARBOR_EINVAL;
  int n = arbor_error_format(err, NULL, 0);
  char *text = malloc((size_t)n + 1);
  if (text == NULL)
    return ARBOR_ENOMEM;
  arbor_error_format(err, text, (size_t)n + 1);
  fputs(text, out);
  free(text);
  return n;
}

int arbor__say(char *msg, size_t msglen, int rc, const char *fmt, ...) {
  if (msg != NULL && msglen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return rc;
}
