/* examples/supervise.c - a supervisor with a steady service, a flaky one and a
 * process service; after two seconds the tree is printed with its restart counts
 * and error chains, and the whole shuts down gracefully.
 *
 *   build/gcc-opt/examples/supervise
 */
#include <stdio.h>

#include <arbor.h>

/* Beats until cancelled (the seed's HeartbeatService). */
static int heartbeat(arbor_ctx_t *cx, void *arg) {
  int *beats = arg, rc;
  while ((rc = arbor_sleep(cx, 100)) == 0)
    ++*beats;
  return rc;                     /* ARBOR_ECANCELED: cancelled, not failed */
}

/* Fails its first three runs, a little later each time, then stays up. */
static int flaky(arbor_ctx_t *cx, void *arg) {
  int *runs = arg;
  if (++*runs <= 3) {
    arbor_sleep(cx, 50);
    return arbor_fiber_fail(cx, -ECONNREFUSED, "connect to upstream failed (run %d)", *runs);
  }
  return arbor_sleep(cx, 3600 * 1000);
}

/* The tree as it is, then a graceful shutdown: newest first, within the grace. */
static void stop_later(uv_timer_t *t) {
  arbor_runtime_t *rt = t->data;
  arbor_tree_print(arbor_root(rt), stdout);
  arbor_shutdown(rt, 0);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  arbor_runtime_t *rt;
  arbor_node_t *sup, *svc;
  int beats = 0, runs = 0;
  if (arbor_runtime_new(&rt, loop, NULL) < 0)
    return 1;
  arbor_supervisor_new(arbor_root(rt),
                       &(arbor_sup_opts_t){.name = "app", .strategy = ARBOR_ONE_FOR_ONE,
                                           .intensity = 5, .period_ms = 10000,
                                           .backoff_ms = 50},
                       &sup);
  arbor_service_add(sup, &(arbor_service_spec_t){.name = "heartbeat", .fiber = heartbeat,
                                                 .arg = &beats},
                    NULL);
  arbor_service_add(sup, &(arbor_service_spec_t){.name = "flaky", .fiber = flaky, .arg = &runs},
                    &svc);
  char *argv[] = {"/bin/sh", "-c", "echo started; exec sleep 3600", NULL};
  arbor_service_add(sup, &(arbor_service_spec_t){.name = "sleeper", .argv = argv}, NULL);

  uv_timer_t t;                  /* SIGINT/SIGTERM would do the same, earlier */
  uv_timer_init(loop, &t);
  t.data = rt;
  uv_timer_start(&t, stop_later, 2000, 0);
  uv_unref((uv_handle_t *)&t);

  (void)svc;
  int rc = arbor_run(rt);
  printf("arbor_run: %s; %d heartbeats; flaky ran %d times\n", rc == 0 ? "ok" : arbor_strerror(rc),
         beats, runs);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return rc == 0 ? 0 : 1;
}
