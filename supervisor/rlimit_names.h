/* supervisor/rlimit_names.h - resource limit names, shared by runas.c (which
 * checks a spec's rlimits) and exec/arbor_exec.c (which sets them), so that the
 * two can never disagree about what "nofile" is. Names are prlimit(1)'s and
 * systemd's Limit*= ones: the RLIMIT_ constant, lowercase, without the prefix.
 * Header-only: arbor-exec links nothing of libarbor. */
#ifndef ARBOR_RLIMIT_NAMES_H
#define ARBOR_RLIMIT_NAMES_H

#include <string.h>
#include <sys/resource.h>

static const struct {
  const char *name;
  int resource;
} arbor__rlimit_names[] = {
    {"as", RLIMIT_AS},
    {"core", RLIMIT_CORE},
    {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE},
    {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE},
    {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC},
    {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME},
    {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

#define ARBOR__RLIMIT_COUNT (sizeof arbor__rlimit_names / sizeof arbor__rlimit_names[0])

/* The index of name in the table, or -1. */
static inline int arbor__rlimit_find(const char *name) {
  for (size_t i = 0; name != NULL && i < ARBOR__RLIMIT_COUNT; i++)
    if (strcmp(arbor__rlimit_names[i].name, name) == 0)
      return (int)i;
  return -1;
}

#endif /* ARBOR_RLIMIT_NAMES_H */
