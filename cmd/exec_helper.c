/* cmd/exec_helper.c - where the daemon finds arbor-exec, the helper that runs a
 * program as another user, with a umask or rlimits (supervisor/runas.c).
 *
 * libarbor knows the path it was installed to; the daemon looks beside its own
 * executable first, so that the build tree (build/<variant>/arbor and
 * build/<variant>/arbor-exec) and an installed tree moved elsewhere
 * (PREFIX/bin/arbor and PREFIX/libexec/arbor/arbor-exec) each run their own
 * helper, never one from another build.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

const char *daemon_exec_helper(char *buf, size_t size) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return NULL;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL)
    return NULL;
  *slash = '\0';
  static const char *const beside[] = {"arbor-exec", "../libexec/arbor/arbor-exec"};
  for (size_t i = 0; i < sizeof beside / sizeof beside[0]; i++) {
    int w = snprintf(buf, size, "%s/%s", self, beside[i]);
    if (w > 0 && (size_t)w < size && access(buf, X_OK) == 0)
      return buf;
  }
  return NULL;                   /* libarbor's own path, fixed at build */
}
