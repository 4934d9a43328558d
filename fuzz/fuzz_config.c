/* fuzz/fuzz_config.c - the daemon's config parser (cmd/config*.c) on arbitrary
 * bytes: config_load on a file holding the input, in the driver's temp dir (a
 * config names files relative to its own directory; none is opened, nothing
 * runs).
 *
 * Checked besides "no crash, no leak":
 *  - config_json_syntax and cJSON agree: config_load reports "out of memory"
 *    when cJSON refuses text the syntax check passed, so a text both accept
 *    differently would be a wrong error message;
 *  - a refusal is one line that names the file;
 *  - a config that loads is equal to itself loaded again (config_*_equal on
 *    every node): a reload of an unchanged file must change nothing.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cmd/config.h"
#include "support.h"

static void same_nodes(const struct config_node *a, const struct config_node *b) {
  if (a->is_supervisor != b->is_supervisor || strcmp(a->name, b->name) != 0 ||
      a->nchildren != b->nchildren)
    fz_die("the same file loaded twice differs at %s", a->path);
  if (a->is_supervisor ? !config_supervisor_equal(a, b) : !config_service_equal(a, b))
    fz_die("config_*_equal: %s differs from itself", a->path);
  if (!config_deps_equal(a, b))
    fz_die("config_deps_equal: %s differs from itself", a->path);
  for (size_t i = 0; i < a->nchildren; i++)
    same_nodes(&a->children[i], &b->children[i]);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size > CONFIG_FILE_MAX + 1)
    return 0;
  char path[256], err[CONFIG_ERR_MAX];
  fz_tmpfile("arbor.json", data, size, path, sizeof path);

  int line, col;
  const char *what;
  int syntax_ok = config_json_syntax((const char *)data, size, &line, &col, &what) == 0;
  if (syntax_ok) {
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    if (doc == NULL)
      fz_die("config_json_syntax accepts what cJSON refuses");
    cJSON_Delete(doc);
  } else if (line < 1 || col < 1 || what == NULL) {
    fz_die("config_json_syntax: a refusal without a place (%d:%d)", line, col);
  }

  struct config a, b;
  if (config_load(path, &a, err, sizeof err) != 0) {
    if (strncmp(err, path, strlen(path)) != 0 || strchr(err, '\n') != NULL)
      fz_die("a config error that is not one line naming the file: %s", err);
    return 0;
  }
  if (!syntax_ok)
    fz_die("config_load accepted text config_json_syntax refused");
  if (config_load(path, &b, err, sizeof err) != 0)
    fz_die("the same file loads once, not twice: %s", err);
  same_nodes(&a.top, &b.top);
  config_free(&a);
  config_free(&b);
  return 0;
}
