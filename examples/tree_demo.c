/* examples/tree_demo.c - a small live tree in which one task fails.
 *
 * A group "workers" runs three callback tasks: a heartbeat that ticks until it is
 * cancelled, a config fetch that finishes, and a database connect that fails with
 * a two-link error chain. The failure cancels the heartbeat (rule 2) and the group
 * fails with an error group. When the group has finished, the tree and the error
 * chain are printed, as `make run` shows.
 */
#include <arbor.h>
#include <stdio.h>
#include <stdlib.h>

struct ticker {
  uv_timer_t timer;
  arbor_node_t *task;
  int beats;
};

/* Every task here is "a timer the task owns": arm one and let the callback decide.
 * No cancel hook: the default one ends the task and arbor closes the timer. */
static int arm(arbor_node_t *task, uv_timer_cb cb, uint64_t delay, uint64_t repeat) {
  struct ticker *tk = arbor_task_data(task);
  tk->task = task;
  uv_timer_init(arbor_runtime_loop(arbor_node_runtime(task)), &tk->timer);
  tk->timer.data = tk;
  arbor_task_own(task, (uv_handle_t *)&tk->timer);
  return uv_timer_start(&tk->timer, cb, delay, repeat);
}

/* Heartbeat: ticks until it is cancelled. */
static void on_beat(uv_timer_t *t) {
  struct ticker *tk = t->data;
  tk->beats++;
}

static int heartbeat_start(arbor_node_t *task, void *arg) {
  (void)arg;
  return arm(task, on_beat, 10, 10);
}

static void on_fetched(uv_timer_t *t) {
  struct ticker *tk = t->data;
  arbor_node_attr_set(tk->task, "bytes", "512");
  arbor_task_done(tk->task);
}

static int fetch_start(arbor_node_t *task, void *arg) {
  (void)arg;
  return arm(task, on_fetched, 20, 0);
}

static void on_connect_timeout(uv_timer_t *t) {
  struct ticker *tk = t->data;
  /* The low-level cause, then the task's own view of it: a two-link chain. */
  arbor_error_t *cause = arbor_error_new(-ECONNREFUSED, "connect to 127.0.0.1:5432 refused");
  arbor_task_fail_error(tk->task, arbor_error_wrap(cause, ARBOR_EFAILED,
                                                   "cannot open the connection pool"));
}

static int connect_start(arbor_node_t *task, void *arg) {
  (void)arg;
  return arm(task, on_connect_timeout, 50, 0);
}

static void on_workers_finished(arbor_node_t *group, void *arg) {
  arbor_runtime_t *rt = arg;
  printf("The tree when \"workers\" finished:\n\n");
  arbor_tree_print(arbor_root(rt), stdout);
  printf("\nThe error chain of \"workers\" (%s):\n\n", arbor_outcome_name(arbor_node_outcome(group)));
  arbor_error_print(arbor_node_error(group), stdout);
}

int main(void) {
  arbor_runtime_t *rt;
  arbor_node_t *workers;
  int rc = arbor_runtime_new(&rt, uv_default_loop(), NULL);
  if (rc < 0) {
    fprintf(stderr, "tree_demo: %s\n", arbor_strerror(rc));
    return 1;
  }
  arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = "workers"}, &workers);
  arbor_task_spawn(workers, &(arbor_task_spec_t){.name = "heartbeat", .start = heartbeat_start,
                                                 .data_size = sizeof(struct ticker)}, NULL);
  arbor_task_spawn(workers, &(arbor_task_spec_t){.name = "fetch-config", .start = fetch_start,
                                                 .data_size = sizeof(struct ticker)}, NULL);
  arbor_task_spawn(workers, &(arbor_task_spec_t){.name = "db-connect", .start = connect_start,
                                                 .data_size = sizeof(struct ticker)}, NULL);
  arbor_group_join(workers, on_workers_finished, rt);

  rc = arbor_run(rt);            /* returns the first top-level failure's code */
  printf("\narbor_run returned %s (%s): the failure was expected; the demo worked.\n",
         arbor_err_name(rc), arbor_strerror(rc));
  return uv_loop_close(uv_default_loop()) == 0 && rc == ARBOR_EGROUP ? 0 : 1;
}
