/* supervisor/runas.c - how a process service's program is executed: as another
 * user and group, with supplementary groups, a umask and resource limits
 * (arbor.h, arbor_service_spec_t; docs/api.md, "Run as another user, umask,
 * rlimits, env file").
 *
 * Why a helper program. libuv's uv_spawn has no hook between fork and exec. It
 * can setuid/setgid, but then drops every supplementary group (setgroups(0)),
 * and it cannot set a umask or rlimits in the child. Setting those in arbor
 * around the spawn would be wrong: umask and rlimits are process-wide, and
 * libuv's thread pool writes log files meanwhile. So arbor spawns arbor-exec
 * (exec/arbor_exec.c) with the settings as arguments; it applies them and execs
 * the program, in the same process (the pid arbor watches is the program's):
 * the chainloading of daemontools' setuidgid and s6's s6-softlimit. A spec that
 * sets none of them is spawned as before, with no helper.
 *
 * Names are resolved here, when the service is added or updated, into numeric
 * ids (the user's primary group and its groups, as initgroups(3) finds them, plus
 * the spec's groups): an unknown name is refused at once with the name in the
 * message, and the helper needs no user database. The cost: a user added to a
 * group later is seen from the next update (a reload that changes the service),
 * not the next restart. The lookups may block on a remote user database (LDAP);
 * they run when a service is added, not at each start.
 *
 * arbor not root cannot switch users: a spec naming another user or group,
 * supplementary groups, or a hard limit above arbor's own is refused with
 * ARBOR_EPERM and a message that says so, instead of a program that fails at
 * every start. Naming arbor's own user is accepted and changes nothing.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "rlimit_names.h"

/* Where the installed helper is; the Makefile defines it from LIBEXECDIR. */
#ifndef ARBOR_EXEC_HELPER_PATH
#define ARBOR_EXEC_HELPER_PATH "/usr/local/libexec/arbor/arbor-exec"
#endif

#define PW_BUF_MAX (1u << 20)    /* a user database entry larger than this: ENOMEM */
#define GROUPS_MAX 65536         /* Linux's NGROUPS_MAX */

struct arbor__runas {
  char *user, *group;            /* as the spec named them (for arbor_service_exec_info) */
  int has_uid, has_gid, has_groups;   /* what arbor-exec sets; 0: left as arbor's */
  uid_t uid;
  gid_t gid;
  uint32_t *groups;
  size_t ngroups;
  int umask;                     /* -1: arbor's */
  arbor_rlimit_t *rlimits;       /* names point into arbor__rlimit_names */
  size_t nrlimits;
  char *env_file;                /* absolute; NULL: none */
};

/* A decimal id ("65534"), or -1 for anything else (a name). */
static long long numeric_id(const char *s) {
  if (*s == '\0' || strlen(s) > 10)
    return -1;
  long long v = 0;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (*s - '0');
  }
  return v < (long long)UINT32_MAX ? v : -1;   /* (uid_t)-1 means "unchanged" */
}

/* getpwnam_r / getpwuid_r / getgrnam_r / getgrgid_r with a buffer that grows on
 * ERANGE. Returns 1 found, 0 not found, or ARBOR_ENOMEM. *buf is the caller's to
 * free. */
static int lookup_user(const char *s, struct passwd *pw, char **buf) {
  long long id = numeric_id(s);
  struct passwd *res = NULL;
  for (size_t size = 1024; size <= PW_BUF_MAX; size *= 4) {
    char *b = realloc(*buf, size);
    if (b == NULL)
      return ARBOR_ENOMEM;
    *buf = b;
    int e = id >= 0 ? getpwuid_r((uid_t)id, pw, b, size, &res)
                    : getpwnam_r(s, pw, b, size, &res);
    if (e != ERANGE)
      return e == 0 && res != NULL;
  }
  return ARBOR_ENOMEM;
}

/* A group by name or number into *gid. Returns 1 found (a number always is), 0
 * not found, ARBOR_ENOMEM. */
static int lookup_group(const char *s, gid_t *gid) {
  long long id = numeric_id(s);
  if (id >= 0) {
    *gid = (gid_t)id;
    return 1;
  }
  struct group gr, *res = NULL;
  char *buf = NULL;
  int rc = ARBOR_ENOMEM;
  for (size_t size = 1024; size <= PW_BUF_MAX; size *= 4) {
    char *b = realloc(buf, size);
    if (b == NULL)
      break;
    buf = b;
    int e = getgrnam_r(s, &gr, b, size, &res);
    if (e != ERANGE) {
      rc = e == 0 && res != NULL;
      if (rc == 1)
        *gid = gr.gr_gid;
      break;
    }
  }
  free(buf);
  return rc;
}

/* The user's groups as initgroups(3) would set them (gid first). */
static int user_groups(struct arbor__runas *ra, const char *name, gid_t gid) {
  int n = 32;
  for (;;) {
    gid_t *g = malloc((size_t)n * sizeof *g);
    if (g == NULL)
      return ARBOR_ENOMEM;
    int want = n;
    if (getgrouplist(name, gid, g, &want) >= 0) {
      ra->groups = malloc((size_t)want * sizeof *ra->groups);
      if (ra->groups == NULL) {
        free(g);
        return ARBOR_ENOMEM;
      }
      for (int i = 0; i < want; i++)
        ra->groups[i] = g[i];
      ra->ngroups = (size_t)want;
      free(g);
      return 0;
    }
    free(g);
    if (want <= n || want > GROUPS_MAX)
      return ARBOR_ENOMEM;
    n = want;
  }
}

static int add_group(struct arbor__runas *ra, gid_t gid) {
  for (size_t i = 0; i < ra->ngroups; i++)
    if (ra->groups[i] == gid)
      return 0;
  if (ra->ngroups == GROUPS_MAX)
    return ARBOR_EINVAL;
  uint32_t *g = realloc(ra->groups, (ra->ngroups + 1) * sizeof *g);
  if (g == NULL)
    return ARBOR_ENOMEM;
  ra->groups = g;
  ra->groups[ra->ngroups++] = gid;
  return 0;
}

/* user, group, groups -> ids; then what arbor not root may not do. */
static int resolve_ids(struct arbor__runas *ra, const arbor_service_spec_t *spec, char *msg,
                       size_t msglen) {
  const char *svc = spec->name != NULL ? spec->name : "service";
  struct passwd pw;
  char *pwbuf = NULL;
  int found = 0, rc;
  if (spec->user != NULL) {
    if ((found = lookup_user(spec->user, &pw, &pwbuf)) < 0) {
      free(pwbuf);
      return arbor__say(msg, msglen, found, "user: out of memory");
    }
    long long id = numeric_id(spec->user);
    if (!found && (id < 0 || spec->group == NULL)) {
      free(pwbuf);
      return id < 0 ? arbor__say(msg, msglen, ARBOR_EINVAL,
                                 "user: no user named \"%s\"", spec->user)
                    : arbor__say(msg, msglen, ARBOR_EINVAL,
                          "user: uid %lld has no entry in the user database, so no primary "
                          "group: name its group too", id);
    }
    ra->has_uid = ra->has_gid = ra->has_groups = 1;
    ra->uid = found ? pw.pw_uid : (uid_t)id;
    ra->gid = found ? pw.pw_gid : 0;
  }
  if (spec->group != NULL) {
    if ((rc = lookup_group(spec->group, &ra->gid)) <= 0) {
      free(pwbuf);
      return rc < 0 ? arbor__say(msg, msglen, rc, "group: out of memory")
                    : arbor__say(msg, msglen, ARBOR_EINVAL,
                                 "group: no group named \"%s\"", spec->group);
    }
    ra->has_gid = ra->has_groups = 1;
  }
  if (found && (rc = user_groups(ra, pw.pw_name, ra->gid)) < 0) {
    free(pwbuf);
    return arbor__say(msg, msglen, rc, "user: cannot list the groups of \"%s\": out of memory",
               spec->user);
  }
  free(pwbuf);
  size_t extras = 0;
  for (size_t i = 0; spec->groups != NULL && spec->groups[i] != NULL; i++, extras++) {
    gid_t g;
    if ((rc = lookup_group(spec->groups[i], &g)) <= 0)
      return rc < 0 ? arbor__say(msg, msglen, rc, "groups[%zu]: out of memory", i)
                    : arbor__say(msg, msglen, ARBOR_EINVAL, "groups[%zu]: no group named \"%s\"", i,
                          spec->groups[i]);
    if ((rc = add_group(ra, g)) < 0)
      return arbor__say(msg, msglen, rc, "groups[%zu]: %s", i,
                 rc == ARBOR_ENOMEM ? "out of memory" : "more than 65536 groups");
    ra->has_groups = 1;
  }
  if (geteuid() == 0)
    return 0;

  /* Not root: only what arbor already is. */
  unsigned self = (unsigned)geteuid();
  if (ra->has_uid && ra->uid != geteuid())
    return arbor__say(msg, msglen, ARBOR_EPERM,
               "user: arbor runs as uid %u, not root: it cannot run \"%s\" as user \"%s\"", self,
               svc, spec->user);
  if (ra->has_gid && ra->gid != getegid())
    return spec->group != NULL
               ? arbor__say(msg, msglen, ARBOR_EPERM,
                     "group: arbor runs as uid %u (gid %u), not root: it cannot run \"%s\" as "
                     "group \"%s\"", self, (unsigned)getegid(), svc, spec->group)
               : arbor__say(msg, msglen, ARBOR_EPERM,
                     "user: arbor runs as uid %u (gid %u), not root: it cannot run \"%s\" "
                     "with the primary group of user \"%s\" (gid %u)", self,
                     (unsigned)getegid(), svc, spec->user, (unsigned)ra->gid);
  if (extras > 0)
    return arbor__say(msg, msglen, ARBOR_EPERM,
               "groups: arbor runs as uid %u, not root: it cannot give \"%s\" supplementary "
               "groups", self, svc);
  ra->has_uid = ra->has_gid = ra->has_groups = 0;   /* already all of it */
  return 0;
}

static int resolve_rlimits(struct arbor__runas *ra, const arbor_service_spec_t *spec, char *msg,
                           size_t msglen) {
  if (spec->nrlimits == 0)
    return 0;
  if (spec->rlimits == NULL || spec->nrlimits > ARBOR__RLIMIT_COUNT)
    return arbor__say(msg, msglen, ARBOR_EINVAL, "rlimits: %zu limits %s", spec->nrlimits,
               spec->rlimits == NULL ? "and no array" : "(each resource may be named once)");
  if ((ra->rlimits = calloc(spec->nrlimits, sizeof *ra->rlimits)) == NULL)
    return arbor__say(msg, msglen, ARBOR_ENOMEM, "rlimits: out of memory");
  for (size_t i = 0; i < spec->nrlimits; i++) {
    const arbor_rlimit_t *l = &spec->rlimits[i];
    int k = arbor__rlimit_find(l->name);
    if (k < 0) {
      char list[256];
      size_t used = 0;
      for (size_t j = 0; j < ARBOR__RLIMIT_COUNT; j++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", j > 0 ? ", " : "",
                                 arbor__rlimit_names[j].name);
      return arbor__say(msg, msglen, ARBOR_EINVAL,
                        "rlimits: unknown resource \"%s\" (expected one of: %s)",
                 l->name != NULL ? l->name : "(null)", list);
    }
    const char *name = arbor__rlimit_names[k].name;
    for (size_t j = 0; j < i; j++)
      if (ra->rlimits[j].name == name)
        return arbor__say(msg, msglen, ARBOR_EINVAL, "rlimits.%s: given twice", name);
    if (l->soft > l->hard)
      return arbor__say(msg, msglen, ARBOR_EINVAL,
                 "rlimits.%s: soft limit %llu above the hard limit %llu", name,
                 (unsigned long long)l->soft, (unsigned long long)l->hard);
    struct rlimit cur;
    if (geteuid() != 0 && getrlimit(arbor__rlimit_names[k].resource, &cur) == 0 &&
        cur.rlim_max != RLIM_INFINITY &&
        (l->hard == ARBOR_RLIMIT_INFINITY || l->hard > (uint64_t)cur.rlim_max))
      return arbor__say(msg, msglen, ARBOR_EPERM,
                 "rlimits.%s: arbor runs as uid %u, not root: it cannot raise the hard limit "
                 "above its own, %llu", name, (unsigned)geteuid(),
                 (unsigned long long)cur.rlim_max);
    ra->rlimits[i] = (arbor_rlimit_t){.name = name, .soft = l->soft, .hard = l->hard};
    ra->nrlimits = i + 1;
  }
  return 0;
}

void arbor__runas_free(struct arbor__runas *ra) {
  if (ra == NULL)
    return;
  free(ra->user);
  free(ra->group);
  free(ra->groups);
  free(ra->rlimits);
  free(ra->env_file);
  free(ra);
}

int arbor__runas_new(const arbor_service_spec_t *spec, struct arbor__runas **out, char *msg,
                     size_t msglen) {
  *out = NULL;
  if (msg != NULL && msglen > 0)
    msg[0] = '\0';
  int any = spec->user != NULL || spec->group != NULL ||
            (spec->groups != NULL && spec->groups[0] != NULL) || spec->umask_set ||
            spec->nrlimits > 0 || (spec->env_file != NULL && spec->env_file[0] != '\0');
  if (!any)
    return 0;
  if ((spec->user != NULL && spec->user[0] == '\0') ||
      (spec->group != NULL && spec->group[0] == '\0'))
    return arbor__say(msg, msglen, ARBOR_EINVAL,
                      "%s: empty", spec->user != NULL && spec->user[0] == '\0'
                                                          ? "user" : "group");
  if (spec->umask_set && spec->umask > 0777)
    return arbor__say(msg, msglen, ARBOR_EINVAL, "umask: 0%o is above 0777", spec->umask);
  struct arbor__runas *ra = calloc(1, sizeof *ra);
  if (ra == NULL)
    return arbor__say(msg, msglen, ARBOR_ENOMEM, "out of memory");
  ra->umask = spec->umask_set ? (int)spec->umask : -1;
  int rc = ARBOR_ENOMEM;
  if ((spec->user != NULL && (ra->user = strdup(spec->user)) == NULL) ||
      (spec->group != NULL && (ra->group = strdup(spec->group)) == NULL)) {
    arbor__say(msg, msglen, rc, "out of memory");
    goto fail;
  }
  if (spec->env_file != NULL && spec->env_file[0] != '\0') {
    errno = 0;
    if ((ra->env_file = arbor__abs_path(spec->env_file)) == NULL) {
      rc = errno == ENOMEM ? ARBOR_ENOMEM : ARBOR_EINVAL;
      arbor__say(msg, msglen, rc,
                 "env_file: %s", rc == ARBOR_ENOMEM ? "out of memory" : "path too long");
      goto fail;
    }
  }
  if ((rc = resolve_rlimits(ra, spec, msg, msglen)) < 0 ||
      (rc = resolve_ids(ra, spec, msg, msglen)) < 0)
    goto fail;
  *out = ra;
  return 0;
fail:
  arbor__runas_free(ra);
  return rc;
}

const char *arbor__runas_env_file(const struct arbor__runas *ra) {
  return ra != NULL ? ra->env_file : NULL;
}

int arbor__runas_needs_helper(const struct arbor__runas *ra) {
  return ra != NULL &&
         (ra->has_uid || ra->has_gid || ra->has_groups || ra->umask >= 0 || ra->nrlimits > 0);
}

const char *arbor__exec_helper(const arbor_runtime_t *rt) {
  return rt->exec_helper != NULL ? rt->exec_helper : ARBOR_EXEC_HELPER_PATH;
}

/* ------------------------------------------------------ the helper's argv */

/* A buffer written twice: once to measure (p NULL), once for real. */
struct sbuf {
  char *p;
  size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void sb_add(struct sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(b->p != NULL ? b->p + b->len : NULL, b->p != NULL ? b->cap - b->len : 0,
                    fmt, ap);
  va_end(ap);
  b->len += w > 0 ? (size_t)w : 0;
}

/* Ends one argument. */
static void sb_end(struct sbuf *b, size_t *count) {
  if (b->p != NULL)
    b->p[b->len] = '\0';
  b->len++;
  (*count)++;
}

static void limit_text(struct sbuf *b, uint64_t v) {
  if (v == ARBOR_RLIMIT_INFINITY)
    sb_add(b, "unlimited");
  else
    sb_add(b, "%llu", (unsigned long long)v);
}

/* arbor-exec's options, in the order it applies them (exec/arbor_exec.c). */
static void helper_options(const struct arbor__runas *ra, struct sbuf *b, size_t *count) {
  for (size_t i = 0; i < ra->nrlimits; i++) {
    sb_add(b, "--rlimit");
    sb_end(b, count);
    sb_add(b, "%s=", ra->rlimits[i].name);
    limit_text(b, ra->rlimits[i].soft);
    sb_add(b, ":");
    limit_text(b, ra->rlimits[i].hard);
    sb_end(b, count);
  }
  if (ra->umask >= 0) {
    sb_add(b, "--umask");
    sb_end(b, count);
    sb_add(b, "%04o", (unsigned)ra->umask);
    sb_end(b, count);
  }
  if (ra->has_groups) {
    sb_add(b, "--groups");
    sb_end(b, count);
    for (size_t i = 0; i < ra->ngroups; i++)
      sb_add(b, "%s%u", i > 0 ? "," : "", (unsigned)ra->groups[i]);
    sb_end(b, count);
  }
  if (ra->has_gid) {
    sb_add(b, "--gid");
    sb_end(b, count);
    sb_add(b, "%u", (unsigned)ra->gid);
    sb_end(b, count);
  }
  if (ra->has_uid) {
    sb_add(b, "--uid");
    sb_end(b, count);
    sb_add(b, "%u", (unsigned)ra->uid);
    sb_end(b, count);
  }
}

int arbor__runas_argv(const struct arbor__runas *ra, const char *helper, char *const *argv,
                      char ***out) {
  size_t nargs = 0, nopts = 0;
  while (argv[nargs] != NULL)
    nargs++;
  struct sbuf b = {0};
  helper_options(ra, &b, &nopts);
  /* helper, options, "--", the program's argv, NULL; then the option strings. */
  size_t nptr = 1 + nopts + 1 + nargs + 1;
  char **v = malloc(nptr * sizeof *v + b.len);
  if (v == NULL)
    return ARBOR_ENOMEM;
  b = (struct sbuf){.p = (char *)(v + nptr), .cap = b.len};
  size_t n = 0;
  helper_options(ra, &b, &n);
  size_t k = 0;
  v[k++] = (char *)helper;
  for (char *s = b.p; n-- > 0; s += strlen(s) + 1)
    v[k++] = s;
  v[k++] = "--";
  for (size_t i = 0; i < nargs; i++)
    v[k++] = argv[i];
  v[k] = NULL;
  *out = v;
  return 0;
}

/* --------------------------------------------------------- one run's spawn */

extern char **environ;

int arbor__exec_prepare(const arbor_runtime_t *rt, const struct arbor__runas *ra,
                        char *const *argv, char *const *env, struct arbor__exec *x, char *msg,
                        size_t msglen) {
  memset(x, 0, sizeof *x);
  x->argv = (char **)argv;
  x->env = (char **)env;
  int rc;
  if (ra != NULL && ra->env_file != NULL) {
    if ((rc = arbor__envfile_read(ra->env_file, &x->vars, msg, msglen)) < 0)
      return rc;
    /* Read now, not at add: the environment is arbor's as it is at this start. */
    if ((rc = arbor__env_merge(env != NULL ? env : environ, x->vars, &x->own_env)) < 0)
      goto oom;
    x->env = x->own_env;
  }
  if (arbor__runas_needs_helper(ra)) {
    if ((rc = arbor__runas_argv(ra, arbor__exec_helper(rt), argv, &x->own_argv)) < 0)
      goto oom;
    x->argv = x->own_argv;
    x->helper = 1;
  }
  return 0;
oom:
  arbor__exec_free(x);
  return arbor__say(msg, msglen, rc, "out of memory");
}

void arbor__exec_free(struct arbor__exec *x) {
  free(x->own_argv);
  free(x->own_env);
  free(x->vars);
  memset(x, 0, sizeof *x);
}

/* ---------------------------------------------------------------- API */

int arbor_service_exec_info(const arbor_node_t *svc, arbor_exec_info_t *info) {
  if (svc == NULL || info == NULL)
    return ARBOR_EINVAL;
  if (svc->kind != ARBOR_KIND_SERVICE || svc->u.svc == NULL || svc->u.svc->proc == NULL)
    return ARBOR_EKIND;
  memset(info, 0, sizeof *info);
  const struct arbor__runas *ra = arbor__proc_runas(svc->u.svc->proc);
  info->uid = info->gid = info->umask = -1;
  if (ra == NULL)
    return 0;
  info->enabled = 1;
  info->user = ra->user;
  info->group = ra->group;
  info->uid = ra->has_uid ? (int64_t)ra->uid : -1;
  info->gid = ra->has_gid ? (int64_t)ra->gid : -1;
  info->groups_set = ra->has_groups;
  info->groups = ra->groups;
  info->ngroups = ra->ngroups;
  info->umask = ra->umask;
  info->rlimits = ra->rlimits;
  info->nrlimits = ra->nrlimits;
  info->env_file = ra->env_file;
  return 0;
}

int arbor_service_exec_check(const arbor_service_spec_t *spec, char *msg, size_t msglen) {
  if (spec == NULL)
    return arbor__say(msg, msglen, ARBOR_EINVAL, "spec: NULL");
  struct arbor__runas *ra;
  int rc = arbor__runas_new(spec, &ra, msg, msglen);
  if (rc < 0)
    return rc;
  if (ra != NULL && ra->env_file != NULL) {
    char **vars;
    char text[512];
    if ((rc = arbor__envfile_read(ra->env_file, &vars, text, sizeof text)) < 0)
      arbor__say(msg, msglen, rc, "env_file: %s", text + strlen("env_file "));
    else
      free(vars);
  }
  arbor__runas_free(ra);
  return rc;
}
