/* examples/seed_crasher.c - a real program that crashes every 1-4 seconds, as a
 * process service: it reports ready on fd 3, the supervisor restarts it after
 * each crash (exit status 3) with a backoff, and the end shows its captured
 * output and the error chain of its last crash.
 *
 *   build/gcc-opt/examples/seed_crasher 10
 */
#include <inttypes.h>

#include "seed/all.c"

/* The service's captured stdout and stderr, and its newest failure. */
static void print_log(seed_example_t *ex) {
  arbor_node_t *svc = arbor_node_find(ex->rt, *(uint64_t *)ex->data);
  arbor_service_failure_t f;
  uint64_t offset = 0, missed = 0;
  char buf[4096];
  int n;
  if (svc == NULL)
    return;
  printf("-- its log --\n");
  while ((n = arbor_service_log_read(svc, &offset, buf, sizeof buf, &missed)) > 0)
    fwrite(buf, 1, (size_t)n, stdout);
  if (arbor_service_failure(svc, 0, &f) == 0) {
    printf("-- its last failure --\n");
    arbor_error_print(f.error, stdout);
  }
}

int main(int argc, char **argv) {
  seed_example_t ex;
  seed_crasher_t c = {.ready_ms = 200, .up_ms = 1000};
  arbor_node_t *svc;
  uint64_t svc_id = 0;
  int rc;
  if (seed_example_open(&ex, argc, argv, &(arbor_sup_opts_t){.name = "seed", .intensity = 12,
                                                             .period_ms = 10000,
                                                             .backoff_max_ms = 2000}) < 0)
    return 2;
  if ((rc = seed_crasher_add(ex.sup, &c, &svc)) < 0) {
    fprintf(stderr, "crasher: %s\n", arbor_strerror(rc));
    arbor_node_cancel(ex.sup);
  } else {
    svc_id = arbor_node_id(svc);
    ex.at_end = print_log;
    ex.data = &svc_id;
  }
  return seed_example_run(&ex);
}
