/* examples/seed/retry.c - a service that retries a flaky call with backoff and
 * gives up after max_tries, failing with an error chain: "gave up after 5 tries"
 * caused by the last try's own error, which the supervisor keeps in the
 * service's failure history and the admin API shows. */
#include "seed.h"

static void show(arbor_ctx_t *cx, seed_retry_t *r) {
  arbor_node_t *svc = seed_service_of(cx);
  seed_attr_u64(svc, "tries", r->tries);
  seed_attr_u64(svc, "succeeded", r->succeeded);
  seed_attr_u64(svc, "gave_up", r->gave_up);
}

/* One job: tries the call until it succeeds or max_tries failed, sleeping
 * backoff_ms, then twice that, ... between tries. Returns 0 on success, 1 when
 * every try failed (*last: the last try's error, owned by the caller), or
 * ARBOR_ECANCELED. */
static int attempt(arbor_ctx_t *cx, seed_retry_t *r, arbor_error_t **last) {
  uint64_t delay = r->backoff_ms;
  int t, rc;
  for (t = 1;; t++) {
    arbor_error_t *err;
    r->tries++;
    rc = seed_flaky_call(cx, r->upstream, &err);
    if (rc == 0 || rc == ARBOR_ECANCELED)
      return rc;
    arbor_error_unref(*last);
    *last = err;
    if (t >= r->max_tries)
      return 1;
    if ((rc = arbor_sleep(cx, delay)) < 0)
      return rc;
    delay *= 2;
  }
}

static int retry(arbor_ctx_t *cx, void *arg) {
  seed_retry_t *r = arg;
  int rc;
  show(cx, r);
  while ((rc = arbor_sleep(cx, r->job_ms)) == 0) {
    arbor_error_t *last = NULL;
    rc = attempt(cx, r, &last);
    if (rc == 0) {
      arbor_error_unref(last);   /* the tries that failed before it */
      r->succeeded++;
      show(cx, r);
      continue;
    }
    if (rc < 0) {                /* stopped between tries */
      arbor_error_unref(last);
      return rc;
    }
    r->gave_up++;
    show(cx, r);
    /* The wrap takes our reference to last; the chain keeps its code, so the
     * outer error says why as well as that we gave up. */
    int code = last != NULL ? arbor_error_code(last) : ARBOR_EFAILED;
    return arbor_fiber_fail_error(
        cx, arbor_error_wrap(last, code, "gave up after %d tries", r->max_tries));
  }
  return rc;
}

/* Adds "retry" under sup. Errors: ARBOR_EINVAL (NULL r or upstream), then as
 * arbor_service_add. */
int seed_retry_add(arbor_node_t *sup, seed_retry_t *r, arbor_node_t **out) {
  if (r == NULL || r->upstream == NULL)
    return ARBOR_EINVAL;
  if (r->job_ms == 0)
    r->job_ms = 1000;
  if (r->backoff_ms == 0)
    r->backoff_ms = 100;
  if (r->max_tries <= 0)
    r->max_tries = 5;
  return arbor_service_add(sup, &(arbor_service_spec_t){.name = "retry", .fiber = retry, .arg = r,
                                                        .shutdown_timeout_ms = 1000},
                           out);
}
