/* exec/arbor_exec.c - arbor-exec: sets resource limits, a umask, groups, a gid
 * and a uid, then executes a program in its own place (same pid).
 *
 *   arbor-exec [--rlimit NAME=SOFT:HARD]... [--umask OCTAL] [--groups GID,GID,...]
 *              [--gid GID] [--uid UID] -- PROGRAM [ARG]...
 *
 * libarbor spawns it in front of a process service's program when the spec sets
 * user, group, groups, umask or rlimits (supervisor/runas.c says why a helper
 * program: uv_spawn has no hook between fork and exec). It is the chainloading
 * of daemontools' setuidgid and s6's s6-softlimit and s6-setuidgid, in one
 * step. Ids are numbers (arbor resolved the names when the service was added),
 * so it needs no user database; SOFT and HARD are numbers or "unlimited";
 * --groups "" clears the supplementary groups. It links nothing but libc.
 *
 * Order: rlimits and umask first (while still privileged, a hard limit may be
 * raised), then setgroups, setgid, setuid (groups while it may still set them,
 * the uid last), then a check that a dropped root cannot be regained, then
 * execvp: PROGRAM without a '/' is searched in the environment's PATH.
 *
 * Failures, one line on stderr naming what failed (arbor shows a run's last
 * stderr lines in its error chain):
 *   arbor-exec: setuid 1000: Operation not permitted
 * and the exit status of env(1), nice(1) and timeout(1): 125 for its own
 * trouble (bad arguments, a setting refused), 126 when PROGRAM cannot be
 * executed, 127 when it is not found.
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "rlimit_names.h"

#define EXIT_SETUP 125
#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127
#define MAX_GROUPS 65536
#define MAX_RLIMITS 32

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  fputs("arbor-exec: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(EXIT_SETUP);
}

/* A decimal number up to max into *out: 0, or -1. */
static int number(const char *s, unsigned long long max, unsigned long long *out) {
  if (*s == '\0' || strlen(s) > 20)
    return -1;
  unsigned long long v = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9' || v > (max - (unsigned)(*s - '0')) / 10)
      return -1;
    v = v * 10 + (unsigned)(*s - '0');
  }
  *out = v;
  return 0;
}

/* An id: 0 .. 2^32 - 2 ((uid_t)-1 means "unchanged" to the kernel). */
static unsigned id_arg(const char *opt, const char *s) {
  unsigned long long v;
  if (number(s, UINT32_MAX - 1ull, &v) < 0)
    die("%s \"%s\": expected a number from 0 to %u", opt, s, UINT32_MAX - 1);
  return (unsigned)v;
}

static int limit_value(const char *s, size_t len, rlim_t *out) {
  char buf[24];
  if (len == 0 || len >= sizeof buf)
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  if (strcmp(buf, "unlimited") == 0) {
    *out = RLIM_INFINITY;
    return 0;
  }
  unsigned long long v;
  if (number(buf, (unsigned long long)RLIM_INFINITY - 1, &v) < 0)
    return -1;
  *out = (rlim_t)v;
  return 0;
}

struct limit {
  const char *text;              /* as given, for messages */
  int index;                     /* into arbor__rlimit_names */
  struct rlimit rl;
};

/* "nofile=1024:4096" */
static void parse_rlimit(const char *s, struct limit *l) {
  const char *eq = strchr(s, '='), *colon = eq != NULL ? strchr(eq, ':') : NULL;
  char name[16];
  if (eq == NULL || colon == NULL || (size_t)(eq - s) >= sizeof name)
    die("--rlimit \"%s\": expected NAME=SOFT:HARD", s);
  memcpy(name, s, (size_t)(eq - s));
  name[eq - s] = '\0';
  l->text = s;
  if ((l->index = arbor__rlimit_find(name)) < 0)
    die("--rlimit \"%s\": unknown resource \"%s\"", s, name);
  if (limit_value(eq + 1, (size_t)(colon - eq - 1), &l->rl.rlim_cur) < 0 ||
      limit_value(colon + 1, strlen(colon + 1), &l->rl.rlim_max) < 0)
    die("--rlimit \"%s\": expected numbers or \"unlimited\" as SOFT:HARD", s);
  if (l->rl.rlim_cur > l->rl.rlim_max)
    die("--rlimit \"%s\": the soft limit is above the hard limit", s);
}

/* "1,2,3" (or "" for none) into a new array. */
static gid_t *parse_groups(const char *s, size_t *n) {
  size_t count = *s != '\0';
  for (const char *p = s; *p != '\0'; p++)
    count += *p == ',';
  if (count > MAX_GROUPS)
    die("--groups: more than %d groups", MAX_GROUPS);
  gid_t *g = calloc(count + 1, sizeof *g);
  if (g == NULL)
    die("--groups: out of memory");
  char item[16];
  const char *p = s;
  for (size_t i = 0; i < count; i++) {
    const char *end = strchr(p, ',');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    if (len >= sizeof item)
      die("--groups \"%s\": expected numbers separated by commas", s);
    memcpy(item, p, len);
    item[len] = '\0';
    g[i] = id_arg("--groups", item);
    p = end != NULL ? end + 1 : p + len;
  }
  *n = count;
  return g;
}

int main(int argc, char **argv) {
  struct limit limits[MAX_RLIMITS];
  size_t nlimits = 0, ngroups = 0;
  gid_t *groups = NULL;
  int has_groups = 0, has_gid = 0, has_uid = 0, has_umask = 0;
  unsigned uid = 0, gid = 0, mask = 0;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *opt = argv[i];
    if (i + 1 >= argc)
      die("%s: expected a value (usage: arbor-exec [OPTIONS] -- PROGRAM [ARG]...)", opt);
    const char *val = argv[++i];
    if (strcmp(opt, "--rlimit") == 0) {
      if (nlimits == MAX_RLIMITS)
        die("--rlimit: more than %d", MAX_RLIMITS);
      parse_rlimit(val, &limits[nlimits++]);
    } else if (strcmp(opt, "--umask") == 0) {
      long long v = -1;
      if (*val != '\0' && strspn(val, "01234567") == strlen(val) && strlen(val) <= 4)
        v = strtoll(val, NULL, 8);
      if (v < 0 || v > 0777)
        die("--umask \"%s\": expected octal digits from 0 to 0777", val);
      mask = (unsigned)v;
      has_umask = 1;
    } else if (strcmp(opt, "--groups") == 0) {
      free(groups);
      groups = parse_groups(val, &ngroups);
      has_groups = 1;
    } else if (strcmp(opt, "--gid") == 0) {
      gid = id_arg(opt, val);
      has_gid = 1;
    } else if (strcmp(opt, "--uid") == 0) {
      uid = id_arg(opt, val);
      has_uid = 1;
    } else {
      die("unknown option \"%s\" (expected --rlimit, --umask, --groups, --gid, --uid, then "
          "-- PROGRAM)", opt);
    }
  }
  if (i + 1 >= argc)
    die("expected -- PROGRAM [ARG]... after the options");
  char **prog = argv + i + 1;

  for (size_t k = 0; k < nlimits; k++)
    if (setrlimit(arbor__rlimit_names[limits[k].index].resource, &limits[k].rl) < 0)
      die("setrlimit %s: %s", limits[k].text, strerror(errno));
  if (has_umask)
    umask((mode_t)mask);
  if (has_groups && setgroups(ngroups, groups) < 0)
    die("setgroups (%zu groups): %s", ngroups, strerror(errno));
  free(groups);
  errno = 0;
  if (has_gid && (setgid((gid_t)gid) < 0 || getgid() != gid || getegid() != gid))
    die("setgid %u: %s", gid, errno != 0 ? strerror(errno) : "not in effect");
  if (has_uid) {
    if (setuid((uid_t)uid) < 0)
      die("setuid %u: %s", uid, strerror(errno));
    /* setuid from root sets every uid; anything less (a capability-only
     * setup, say) and the program could take root back: refuse to run it. */
    if (getuid() != uid || geteuid() != uid || (uid != 0 && setuid(0) == 0))
      die("setuid %u: root could be regained; not running %s", uid, prog[0]);
  }
  execvp(prog[0], prog);
  int e = errno;
  fprintf(stderr, "arbor-exec: cannot run %s: %s\n", prog[0], strerror(e));
  return e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
}
