/* cmd/ctl_stub.c - stands in for `arbor ctl` until cmd/ctl.c lands (weak: the
 * real arbor_ctl_main wins the link). Delete this file then. */
#include <stdio.h>

int arbor_ctl_main(int argc, char **argv);

__attribute__((weak)) int arbor_ctl_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "arbor ctl: not built yet\n");
  return 2;
}
