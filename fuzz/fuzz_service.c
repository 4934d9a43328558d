/* fuzz/fuzz_service.c - one service object alone (config_service_parse): the
 * body of POST /api/v1/services and PUT /api/v1/services/{name}, parsed by the
 * config's rules (cmd/config_live.c hands it there).
 *
 * Checked: a refusal is one line starting "body"; a spec that parses is a
 * service equal to itself (config_service_equal), so a PUT of the running spec
 * restarts nothing. */
#include <stdlib.h>
#include <string.h>

#include "../cmd/config.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static char config_file[256];
  if (config_file[0] == '\0')
    snprintf(config_file, sizeof config_file, "%s/arbor.json", fz_tmpdir());
  /* The server hands the callbacks a NUL-terminated body. */
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  struct config_node n;
  char err[CONFIG_ERR_MAX];
  if (config_service_parse(text, size, config_file, &n, err, sizeof err) != 0) {
    if (strncmp(err, "body", 4) != 0 || strchr(err, '\n') != NULL)
      fz_die("a spec error that is not one line starting with \"body\": %s", err);
  } else {
    if (n.is_supervisor || n.name == NULL || n.argv == NULL || n.argv[0] == NULL)
      fz_die("a service parsed without a name or argv");
    if (!config_service_equal(&n, &n))
      fz_die("config_service_equal: a spec differs from itself");
    config_node_free(&n);
  }
  free(text);
  return 0;
}
