/* supervisor/envfile.c - a process service's environment file (the spec's
 * env_file; docs/api.md, "Run as another user, umask, rlimits, env file").
 *
 * Read at every start of a run, as systemd reads EnvironmentFile=, so that an
 * edited file applies at the next restart without touching the config. It is
 * read by arbor, with arbor's rights, before the program is spawned: a file only
 * root may read (secrets) works for a program that runs as nobody.
 *
 * It is read on the loop thread, so it is bounded (ENVFILE_MAX bytes,
 * ENVFILE_VARS variables) and opened non-blocking: a FIFO or a device named by
 * mistake is refused ("not a regular file") instead of stalling every service.
 *
 * The syntax is the subset of systemd's that shells and Docker's --env-file
 * agree on, so one file serves all three:
 *   - blank lines, and lines whose first non-blank character is '#' or ';', are
 *     skipped;
 *   - every other line is NAME=VALUE, NAME a C identifier ([A-Za-z_][A-Za-z0-9_]*),
 *     blanks around NAME and the '=' ignored; "export " in front is allowed
 *     (files written for `source`);
 *   - VALUE unquoted: as written, blanks at both ends trimmed, nothing expanded
 *     ('#' inside is part of it);
 *   - 'VALUE': everything up to the next ' as written;
 *   - "VALUE": backslash escapes \" \\ \$ \` (any other backslash is kept);
 *   - a quoted value ends on its line, and only blanks may follow it;
 *   - no ${VAR} expansion, no line continuations; a later NAME wins.
 * Anything else fails the run with the file and line named:
 *   env_file /etc/api.env line 3: expected NAME=VALUE
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define ENVFILE_MAX (64 * 1024)  /* bytes: a larger file is refused */
#define ENVFILE_VARS 1024        /* variables: more are refused (duplicates are
                                    found by a scan, so this bounds it too) */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static int is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
static int is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

/* The whole file into buf (ENVFILE_MAX + 1 bytes), NUL-terminated. */
static int read_whole(const char *path, char *buf, size_t *len, char *msg, size_t msglen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return arbor__say(msg, msglen, -errno, "env_file %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return arbor__say(msg, msglen, ARBOR_EINVAL, "env_file %s: not a regular file", path);
  }
  size_t n = 0;
  while (n <= ENVFILE_MAX) {
    ssize_t r = read(fd, buf + n, ENVFILE_MAX + 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      return arbor__say(msg, msglen, -e, "env_file %s: %s", path, strerror(e));
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (n > ENVFILE_MAX)
    return arbor__say(msg, msglen, ARBOR_EINVAL, "env_file %s: larger than %d bytes", path,
                     ENVFILE_MAX);
  if (memchr(buf, '\0', n) != NULL)
    return arbor__say(msg, msglen, ARBOR_EINVAL, "env_file %s: holds a NUL byte", path);
  buf[n] = '\0';
  *len = n;
  return 0;
}

/* One line (NUL-terminated, no newline) into "NAME=VALUE" at out. Returns the
 * bytes written (NUL included), 0 for a line with nothing to set, or -1 with
 * *why set. The output is never longer than the line plus its NUL. */
static long parse_line(char *line, char *out, const char **why) {
  char *p = line;
  while (is_blank(*p))
    p++;
  if (*p == '\0' || *p == '#' || *p == ';')
    return 0;
  if (strncmp(p, "export", 6) == 0 && is_blank(p[6])) {
    p += 7;
    while (is_blank(*p))
      p++;
  }
  char *name = p;
  if (!is_name_start(*p)) {
    *why = strchr(p, '=') == NULL ? "expected NAME=VALUE" : "the name is not a variable name "
                                                            "(letters, digits and _, not "
                                                            "starting with a digit)";
    return -1;
  }
  while (is_name_char(*p))
    p++;
  size_t namelen = (size_t)(p - name);
  while (is_blank(*p))
    p++;
  if (*p != '=') {
    *why = strchr(p, '=') == NULL ? "expected NAME=VALUE" : "the name is not a variable name "
                                                            "(letters, digits and _, not "
                                                            "starting with a digit)";
    return -1;
  }
  p++;
  while (is_blank(*p))
    p++;
  char *o = out;
  memcpy(o, name, namelen);
  o += namelen;
  *o++ = '=';
  if (*p == '\'' || *p == '"') {
    char q = *p++;
    for (;; p++) {
      if (*p == '\0') {
        *why = q == '"' ? "a \" quote is not closed on its line"
                        : "a ' quote is not closed on its line";
        return -1;
      }
      if (*p == q)
        break;
      if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
        p++;
      *o++ = *p;
    }
    p++;
    while (is_blank(*p))
      p++;
    if (*p != '\0') {
      *why = "only blanks may follow a quoted value";
      return -1;
    }
  } else {
    char *end = p + strlen(p);
    while (end > p && is_blank(end[-1]))
      end--;
    memmove(o, p, (size_t)(end - p));
    o += end - p;
  }
  *o++ = '\0';
  return (long)(o - out);
}

/* Length of a "NAME=..." string's name. */
static size_t name_len(const char *kv) {
  const char *eq = strchr(kv, '=');
  return eq != NULL ? (size_t)(eq - kv) : strlen(kv);
}

int arbor__envfile_read(const char *path, char ***out, char *msg, size_t msglen) {
  *out = NULL;
  char *text = malloc(ENVFILE_MAX + 1);
  if (text == NULL)
    return arbor__say(msg, msglen, ARBOR_ENOMEM, "env_file %s: out of memory", path);
  size_t len = 0;
  int rc = read_whole(path, text, &len, msg, msglen);
  if (rc < 0) {
    free(text);
    return rc;
  }
  /* One block: the pointers, then the strings, parsed in place from text (each
   * "NAME=VALUE" is no longer than its line, and lines are consumed in order). */
  size_t lines = 1;
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  size_t nvars = lines < ENVFILE_VARS ? lines : ENVFILE_VARS;
  char **vars = malloc((nvars + 1) * sizeof *vars + len + 1);
  if (vars == NULL) {
    free(text);
    return arbor__say(msg, msglen, ARBOR_ENOMEM, "env_file %s: out of memory", path);
  }
  char *strings = (char *)(vars + nvars + 1);
  size_t n = 0, used = 0;
  char *line = text;
  for (size_t lineno = 1; line != NULL; lineno++) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    const char *why = NULL;
    long w = parse_line(line, strings + used, &why);
    if (w < 0 || (w > 0 && n == ENVFILE_VARS)) {
      rc = arbor__say(msg, msglen, ARBOR_EINVAL, "env_file %s line %zu: %s", path, lineno,
                     w < 0 ? why : "more than 1024 variables");
      free(text);
      free(vars);
      return rc;
    }
    if (w > 0) {
      char *kv = strings + used;
      size_t k = name_len(kv);
      size_t i = 0;              /* a later NAME replaces an earlier one */
      while (i < n && !(name_len(vars[i]) == k && strncmp(vars[i], kv, k) == 0))
        i++;
      vars[i] = kv;
      n += i == n;
      used += (size_t)w;
    }
    line = nl != NULL ? nl + 1 : NULL;
  }
  vars[n] = NULL;
  free(text);
  *out = vars;
  return 0;
}

int arbor__env_merge(char *const *base, char *const *over, char ***out) {
  size_t nb = 0, no = 0;
  while (base != NULL && base[nb] != NULL)
    nb++;
  while (over[no] != NULL)
    no++;
  char **env = calloc(nb + no + 1, sizeof *env);
  if (env == NULL)
    return ARBOR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < nb; i++) {
    size_t len = name_len(base[i]);
    size_t j = 0;
    while (j < no && !(name_len(over[j]) == len && strncmp(over[j], base[i], len) == 0))
      j++;
    if (j == no)
      env[k++] = base[i];
  }
  for (size_t j = 0; j < no; j++)
    env[k++] = over[j];
  *out = env;
  return 0;
}
