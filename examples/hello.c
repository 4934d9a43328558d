/* examples/hello.c - the README's example: three tasks in a group, each finishing
 * on a timer it owns. Exits 0 when nothing failed. */
#include <arbor.h>

static void on_tick(uv_timer_t *t) { arbor_task_done(t->data); }

static int tick(arbor_node_t *task, void *arg) {          /* a callback task's body */
  uv_timer_t *t = arbor_task_data(task);                  /* storage kept with the node */
  uv_timer_init(arbor_runtime_loop(arbor_node_runtime(task)), t);
  t->data = task;
  arbor_task_own(task, (uv_handle_t *)t);                 /* arbor closes it at the end */
  return uv_timer_start(t, on_tick, *(int *)arg, 0);
}

int main(void) {
  arbor_runtime_t *rt;
  arbor_node_t *g;
  int ms = 10;
  arbor_runtime_new(&rt, uv_default_loop(), NULL);
  arbor_group_new(arbor_root(rt), &(arbor_group_opts_t){.name = "workers"}, &g);
  for (int i = 0; i < 3; i++)
    arbor_task_spawn(g, &(arbor_task_spec_t){.name = "tick", .start = tick, .arg = &ms,
                                             .data_size = sizeof(uv_timer_t)}, NULL);
  arbor_group_join(g, NULL, NULL);                        /* finishes when all three have */
  return arbor_run(rt) == 0 ? 0 : 1;                      /* 0: nothing failed */
}
