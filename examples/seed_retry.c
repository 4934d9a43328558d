/* examples/seed_retry.c - the retry service around a flaky upstream (60 % of
 * calls fail): each job is tried up to 5 times with a doubling backoff; when all
 * fail, the service fails with "gave up after 5 tries" caused by the last error,
 * and the supervisor restarts it. Its failure history is printed at the end.
 *
 *   build/gcc-opt/examples/seed_retry 10
 */
#include <inttypes.h>

#include "seed/all.c"

/* The supervisor keeps a service's last failures, newest first. */
static void print_history(seed_example_t *ex) {
  arbor_node_t *svc = arbor_node_find(ex->rt, *(uint64_t *)ex->data);
  arbor_service_failure_t f;
  size_t i;
  for (i = 0; svc != NULL && arbor_service_failure(svc, i, &f) == 0; i++) {
    printf("failure %zu (run %" PRIu64 "):\n", i + 1, f.incarnation_id);
    arbor_error_print(f.error, stdout);
  }
}

int main(int argc, char **argv) {
  seed_example_t ex;
  seed_flaky_t up = {.latency_ms = 20, .fail_percent = 60, .seed = 42};
  seed_retry_t r = {.upstream = &up, .job_ms = 300, .backoff_ms = 50, .max_tries = 5};
  arbor_node_t *svc;
  uint64_t svc_id = 0;
  int rc;
  if (seed_example_open(&ex, argc, argv, &(arbor_sup_opts_t){.name = "seed", .intensity = 12,
                                                             .period_ms = 10000,
                                                             .backoff_max_ms = 2000}) < 0)
    return 2;
  if ((rc = seed_retry_add(ex.sup, &r, &svc)) < 0) {
    fprintf(stderr, "retry: %s\n", arbor_strerror(rc));
    arbor_node_cancel(ex.sup);
  } else {
    svc_id = arbor_node_id(svc);
    ex.at_end = print_history;
    ex.data = &svc_id;
  }
  rc = seed_example_run(&ex);
  printf("retry: %" PRIu64 " tries, %" PRIu64 " jobs done, gave up %" PRIu64
         " times; upstream: %" PRIu64 " calls, %" PRIu64 " failed\n",
         r.tries, r.succeeded, r.gave_up, up.calls, up.failures);
  return rc;
}
