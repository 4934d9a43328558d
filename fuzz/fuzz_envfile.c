/* fuzz/fuzz_envfile.c - a process service's env_file (supervisor/envfile.c) on
 * arbitrary bytes, read from a file in the driver's temp dir as at a start.
 *
 * Checked: a refusal says why in one line naming the file; what is accepted is
 * at most 1024 "NAME=VALUE" strings, each NAME a shell-style name, no two
 * alike (envfile.c's promises). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support.h"

static int name_ok(const char *s, const char *eq) {
  if (s == eq || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
    return 0;
  for (; s < eq; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
          (*s >= '0' && *s <= '9')))
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char path[256], msg[512];
  fz_tmpfile("env", data, size, path, sizeof path);
  char **vars = NULL;
  msg[0] = '\0';
  int rc = arbor__envfile_read(path, &vars, msg, sizeof msg);
  if (rc != 0) {
    if (rc > 0 || msg[0] == '\0' || strstr(msg, path) == NULL || strchr(msg, '\n') != NULL)
      fz_die("envfile refusal %d without a one-line message naming the file: %s", rc, msg);
    if (vars != NULL)
      fz_die("envfile: vars set on a refusal");
    return 0;
  }
  if (vars == NULL)
    fz_die("envfile: no list on success");
  size_t n = 0;
  for (; vars[n] != NULL; n++) {
    const char *eq = strchr(vars[n], '=');
    if (eq == NULL || !name_ok(vars[n], eq))
      fz_die("envfile: a variable that is not NAME=VALUE: %s", vars[n]);
    for (size_t k = 0; k < n; k++)
      if (strncmp(vars[k], vars[n], (size_t)(eq - vars[n]) + 1) == 0)
        fz_die("envfile: %.*s twice", (int)(eq - vars[n]), vars[n]);
  }
  if (n > 1024)
    fz_die("envfile: %zu variables, over the bound", n);
  free(vars);
  return 0;
}
