/* examples/seed/example.c - what every examples/seed_<name>.c does around its
 * service: the runtime, a supervisor, the events printed as they happen, and a
 * graceful shutdown after the seconds given on the command line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed.h"

/* The node's name, or "#id" once it left retention. */
static const char *name_of(seed_example_t *ex, uint64_t id, char *buf, size_t size) {
  arbor_node_t *n = arbor_node_find(ex->rt, id);
  if (n != NULL)
    return arbor_node_name(n);
  snprintf(buf, size, "#%" PRIu64, id);
  return buf;
}

/* The chain on one line, outermost first: "gave up after 5 tries <- upstream
 * call 9 failed: connection refused". */
static void print_chain(FILE *out, const arbor_error_t *err) {
  const char *sep = "";
  for (; err != NULL; err = arbor_error_cause(err), sep = " <- ")
    fprintf(out, "%s%s", sep, arbor_error_message(err));
}

/* Tasks come and go by the dozen (a peer manager's dialled peers); their state
 * changes show only as they start and finish. */
static int worth_showing(const arbor_event_t *e) {
  if (e->type == ARBOR_EVENT_CREATED || e->type == ARBOR_EVENT_CANCEL ||
      e->kind == ARBOR_KIND_ROOT)
    return 0;
  if (e->type != ARBOR_EVENT_STATE || e->kind != ARBOR_KIND_TASK)
    return 1;
  return e->to == ARBOR_STATE_STARTED || e->to == ARBOR_STATE_FINISHED;
}

static void print_event(seed_example_t *ex, const arbor_event_t *e) {
  char buf[24];
  uint64_t t = e->time_ns - ex->start_ns;
  arbor_node_t *n = arbor_node_find(ex->rt, e->node_id);
  fprintf(ex->out, "%4" PRIu64 ".%03" PRIu64 "s  %-10s %s (%" PRIu64 ")  ", t / 1000000000u,
          t / 1000000u % 1000u, arbor_kind_name(e->kind),
          name_of(ex, e->node_id, buf, sizeof buf), e->node_id);
  switch (e->type) {
  case ARBOR_EVENT_STATE:
    fprintf(ex->out, "%s -> %s", arbor_state_name(e->from), arbor_state_name(e->to));
    if (e->to == ARBOR_STATE_FINISHED && n != NULL)
      fprintf(ex->out, " %s", arbor_outcome_name(arbor_node_outcome(n)));
    break;
  case ARBOR_EVENT_FAILED:
    fprintf(ex->out, "FAILED: ");
    print_chain(ex->out, e->error);
    break;
  case ARBOR_EVENT_RESTART: {
    arbor_node_info_t info;
    if (n != NULL)
      arbor_node_info(n, &info);
    fprintf(ex->out, "restarted (%" PRIu32 " so far)", n != NULL ? info.restarts : 0);
    break;
  }
  default:
    fprintf(ex->out, "%s", arbor_event_type_name(e->type));
    if (e->error != NULL) {
      fprintf(ex->out, ": ");
      print_chain(ex->out, e->error);
    }
    break;
  }
  fputc('\n', ex->out);
}

/* Prints every event recorded since the last call. */
static void print_events(seed_example_t *ex) {
  arbor_event_t ev[64];
  uint64_t missed = 0;
  int n, i;
  do {
    n = arbor_events_read(ex->rt, &ex->cursor, ev, 64, &missed);
    if (missed > 0)
      fprintf(ex->out, "  (%" PRIu64 " events missed)\n", missed);
    for (i = 0; i < n; i++)
      if (worth_showing(&ev[i]))
        print_event(ex, &ev[i]);
  } while (n == 64);
  fflush(ex->out);
}

static void on_watch(uv_timer_t *t) { print_events(t->data); }

static void on_stop(uv_timer_t *t) {
  seed_example_t *ex = t->data;
  fprintf(ex->out, "-- stopping (graceful shutdown) --\n");
  arbor_shutdown(ex->rt, 0);
}

/* The supervisor's finish callback: the last events, then the timers go, so
 * that nothing of ours touches the runtime once arbor_run frees it. */
static void sup_finished(arbor_node_t *sup, void *arg) {
  seed_example_t *ex = arg;
  (void)sup;
  print_events(ex);
  arbor_tree_print(arbor_root(ex->rt), ex->out);
  if (ex->at_end != NULL)
    ex->at_end(ex);
  uv_close((uv_handle_t *)&ex->watch, NULL);
  uv_close((uv_handle_t *)&ex->stop, NULL);
  ex->closed = 1;
}

int seed_example_open(seed_example_t *ex, int argc, char **argv, const arbor_sup_opts_t *sup) {
  arbor_sup_opts_t opts = *sup;
  char *end = NULL;
  double seconds = 0;
  int rc;
  memset(ex, 0, sizeof *ex);
  ex->out = stdout;
  if (argc > 1)
    seconds = strtod(argv[1], &end);
  if (argc > 2 || (argc == 2 && (end == argv[1] || *end != '\0' || seconds <= 0))) {
    fprintf(stderr, "usage: %s [SECONDS]\n  runs until SIGINT/SIGTERM, or for SECONDS\n",
            argv[0]);
    return ARBOR_EINVAL;
  }
  ex->run_ms = (uint64_t)(seconds * 1000);
  ex->loop = uv_default_loop();
  ex->start_ns = uv_hrtime();    /* before the root's first event */
  if ((rc = arbor_runtime_new(&ex->rt, ex->loop, NULL)) < 0)
    return rc;
  opts.finish = sup_finished;
  opts.arg = ex;
  if ((rc = arbor_supervisor_new(arbor_root(ex->rt), &opts, &ex->sup)) < 0) {
    arbor_runtime_close(ex->rt, NULL, NULL);
    uv_run(ex->loop, UV_RUN_DEFAULT);
    return rc;
  }
  ex->cursor = 1;
  uv_timer_init(ex->loop, &ex->watch);
  uv_timer_init(ex->loop, &ex->stop);
  ex->watch.data = ex->stop.data = ex;
  uv_timer_start(&ex->watch, on_watch, 100, 100);
  uv_unref((uv_handle_t *)&ex->watch);
  if (ex->run_ms > 0) {
    uv_timer_start(&ex->stop, on_stop, ex->run_ms, 0);
    uv_unref((uv_handle_t *)&ex->stop);
  }
  fprintf(ex->out, "%s: running%s; Ctrl-C stops it gracefully\n", argv[0],
          ex->run_ms > 0 ? " for the seconds given" : "");
  return 0;
}

int seed_example_run(seed_example_t *ex) {
  int rc = arbor_run(ex->rt);
  if (!ex->closed) {             /* the supervisor never finished: arbor_run gave up */
    uv_close((uv_handle_t *)&ex->watch, NULL);
    uv_close((uv_handle_t *)&ex->stop, NULL);
  }
  uv_run(ex->loop, UV_RUN_DEFAULT);
  uv_loop_close(ex->loop);
  fprintf(ex->out, "arbor_run: %s\n", rc == 0 ? "ok" : arbor_strerror(rc));
  return rc == 0 ? 0 : 1;
}
