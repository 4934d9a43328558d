/* tests/supervisor/test_scope.c - cancel scopes (supervisor/scope.c): rules 5 and 6.
 * Deadlines are generous against waits of an hour: a 20 ms deadline must cut a
 * 1-hour sleep short, whatever the machine's speed. Nothing asserts a duration. */
#include "harness.h"

#define HOUR (3600u * 1000u)

typedef struct {
  int plan;
  int sleep_rc, sleep2_rc, exit_rc, exit2_rc, after_rc;
  int caught, caught2;
  uint64_t d_outer, d_inner, d_after, d_none;
  int parked;                    /* set just before a long sleep */
  arbor_scope_t *open;           /* for cancel-by-hand */
  int finishes;
} sc_t;

enum {
  P_MOVE_ON, P_FAIL, P_NESTED_INNER_EARLIER, P_NESTED_OUTER_EARLIER, P_ABSOLUTE,
  P_SHIELD_IGNORES_OUTSIDE, P_SHIELD_OWN_DEADLINE, P_LIFO_MISUSE, P_RETURN_INSIDE,
  P_CANCEL_BY_HAND
};

static int body(arbor_ctx_t *cx, void *arg) {
  sc_t *t = arg;
  arbor_scope_t a, b;
  arbor_runtime_t *rt = arbor_node_runtime(arbor_ctx_node(cx));
  t->d_none = arbor_current_effective_deadline(cx);
  switch (t->plan) {
  case P_MOVE_ON:
    arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.move_on_after_ms = 20});
    t->sleep_rc = arbor_sleep(cx, HOUR);
    t->sleep2_rc = arbor_yield(cx);          /* still inside: level-triggered */
    t->exit_rc = arbor_scope_exit(cx, &a);
    t->caught = arbor_scope_cancelled_caught(&a);
    t->after_rc = arbor_yield(cx);           /* outside: not cancelled */
    return 0;
  case P_FAIL:
    arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.fail_after_ms = 20});
    t->sleep_rc = arbor_sleep(cx, HOUR);
    t->exit_rc = arbor_scope_exit(cx, &a);
    return t->exit_rc;                       /* propagates: the fiber fails */
  case P_NESTED_INNER_EARLIER:
    arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.move_on_after_ms = HOUR});
    t->d_outer = arbor_current_effective_deadline(cx);
    arbor_scope_enter(cx, &b, &(arbor_scope_opts_t){.fail_after_ms = 20});
    t->d_inner = arbor_current_effective_deadline(cx);
    t->sleep_rc = arbor_sleep(cx, HOUR);
    t->exit_rc = arbor_scope_exit(cx, &b);
    t->caught = arbor_scope_cancelled_caught(&b);
    t->d_after = arbor_current_effective_deadline(cx);
    t->sleep2_rc = arbor_sleep(cx, 0);       /* the outer scope is not cancelled */
    t->exit2_rc = arbor_scope_exit(cx, &a);
    t->caught2 = arbor_scope_cancelled_caught(&a);
    return 0;
  case P_NESTED_OUTER_EARLIER:
    arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.move_on_after_ms = 20});
    t->d_outer = arbor_current_effective_deadline(cx);
    arbor_scope_enter(cx, &b, &(arbor_scope_opts_t){.fail_after_ms = HOUR});
    t->d_inner = arbor_current_effective_deadline(cx);
    t->sleep_rc = arbor_sleep(cx, HOUR);
    t->exit_rc = arbor_scope_exit(cx, &b);   /* its own deadline did not pass: 0 */
    t->caught = arbor_scope_cancelled_caught(&b);
    t->exit2_rc = arbor_scope_exit(cx, &a);
    t->caught2 = arbor_scope_cancelled_caught(&a);
    return 0;
  case P_ABSOLUTE:
    arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.move_on_at_ms = arbor_now_ms(rt) + 20});
    t->d_inner = arbor_current_effective_deadline(cx);
    t->d_outer = arbor_now_ms(rt);
    t->sleep_rc = arbor_sleep(cx, HOUR);
    t->exit_rc = arbor_scope_exit(cx, &a);
    t->caught = arbor_scope_cancelled_caught(&a);
    return 0;
  case P_SHIELD_IGNORES_OUTSIDE:
    arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.shield = 1});
    t->parked = 1;
    t->sleep_rc = arbor_sleep(cx, 30);       /* the task is cancelled meanwhile */
    t->sleep2_rc = arbor_yield(cx);
    t->exit_rc = arbor_scope_exit(cx, &a);
    t->after_rc = arbor_yield(cx);           /* outside the shield: cancelled */
    return t->after_rc;
  case P_SHIELD_OWN_DEADLINE:
    arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.shield = 1, .move_on_after_ms = 20});
    t->parked = 1;
    t->sleep_rc = arbor_sleep(cx, HOUR);
    t->exit_rc = arbor_scope_exit(cx, &a);
    t->caught = arbor_scope_cancelled_caught(&a);
    t->after_rc = arbor_yield(cx);
    return t->after_rc;
  case P_LIFO_MISUSE:
    arbor_scope_enter(cx, &a, NULL);
    arbor_scope_enter(cx, &b, NULL);
    t->exit_rc = arbor_scope_exit(cx, &a);   /* not the innermost */
    t->exit2_rc = arbor_scope_exit(cx, &b);
    t->after_rc = arbor_scope_exit(cx, &a);
    t->sleep_rc = arbor_scope_enter(cx, &a, &(arbor_scope_opts_t){.move_on_after_ms = 1,
                                                                  .fail_after_ms = 1});
    return 0;
  case P_RETURN_INSIDE:
    arbor_scope_enter(cx, &a, NULL);
    return 0;                                /* misuse: the scope is still open */
  case P_CANCEL_BY_HAND:
    arbor_scope_enter(cx, &a, NULL);
    t->open = &a;
    t->parked = 1;
    t->sleep_rc = arbor_sleep(cx, HOUR);
    t->open = NULL;
    t->exit_rc = arbor_scope_exit(cx, &a);
    t->caught = arbor_scope_cancelled_caught(&a);
    return 0;
  }
  return 0;
}

static void on_finish(arbor_node_t *node, void *arg) {
  (void)node;
  ((sc_t *)arg)->finishes++;
}

static arbor_node_t *spawn(arbor_node_t *parent, sc_t *t) {
  arbor_node_t *n = NULL;
  arbor_fiber_spec_t spec = {.name = "scoped", .fn = body, .arg = t, .finish = on_finish};
  assert_code(arbor_fiber_spawn(parent, &spec, &n), 0);
  return n;
}

#define run_once_until(loop, cond)                                                     \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 1000 && !(cond); k_++)                                           \
      uv_run((loop), UV_RUN_ONCE);                                                     \
    assert_true(cond);                                                                 \
  } while (0)

#define OPEN(loop, rt)                                                                 \
  uv_loop_t loop;                                                                      \
  arbor_runtime_t *rt;                                                                 \
  (void)state;                                                                         \
  arbor_test_open(&loop, &rt, NULL)

static void rule5_move_on_deadline_ends_scope_quietly(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_MOVE_ON};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  run_once_until(&loop, t.finishes == 1);
  assert_int_eq(t.sleep_rc, ARBOR_ECANCELED);
  assert_int_eq(t.sleep2_rc, ARBOR_ECANCELED);
  assert_int_eq(t.exit_rc, 0);
  assert_int_eq(t.caught, 1);
  assert_int_eq(t.after_rc, 0);
  assert_true(t.d_none == UINT64_MAX);
  assert_outcome(n, OK);
  assert_uint_eq(arbor_test_count_events(rt, arbor_node_id(n), ARBOR_EVENT_DEADLINE), 1);
  arbor_test_close(rt, &loop);
}

static void rule5_fail_deadline_fails_with_timeout_error(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_FAIL};
  arbor_node_t *g = arbor_test_group(arbor_root(rt), "g");
  arbor_node_t *n = spawn(g, &t);
  assert_code(arbor_group_join(g, NULL, NULL), 0);
  run_once_until(&loop, arbor_node_is_finished(g));
  assert_int_eq(t.sleep_rc, ARBOR_ECANCELED);
  assert_int_eq(t.exit_rc, ARBOR_ETIMEDOUT);
  assert_outcome(n, FAILED);
  assert_code(arbor_error_code(arbor_node_error(n)), ARBOR_ETIMEDOUT);
  assert_non_null(strstr(arbor_error_message(arbor_node_error(n)), "test_scope.c"));
  assert_outcome(g, FAILED);     /* the timeout propagates */
  assert_code(arbor_error_code(arbor_error_child(arbor_node_error(g), 0)), ARBOR_ETIMEDOUT);
  arbor_test_close(rt, &loop);
}

static void rule5_earliest_deadline_wins_inner(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_NESTED_INNER_EARLIER};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  run_once_until(&loop, t.finishes == 1);
  assert_true(t.d_inner < t.d_outer);
  assert_true(t.d_after == t.d_outer);
  assert_int_eq(t.sleep_rc, ARBOR_ECANCELED);
  assert_int_eq(t.exit_rc, ARBOR_ETIMEDOUT);
  assert_int_eq(t.caught, 1);
  assert_int_eq(t.sleep2_rc, 0);
  assert_int_eq(t.exit2_rc, 0);
  assert_int_eq(t.caught2, 0);
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
}

static void rule5_earliest_deadline_wins_outer(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_NESTED_OUTER_EARLIER};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  run_once_until(&loop, t.finishes == 1);
  assert_true(t.d_inner == t.d_outer);   /* the outer, earlier one applies inside */
  assert_int_eq(t.sleep_rc, ARBOR_ECANCELED);
  assert_int_eq(t.exit_rc, 0);
  assert_int_eq(t.caught, 0);
  assert_int_eq(t.exit2_rc, 0);
  assert_int_eq(t.caught2, 1);
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
}

static void rule5_absolute_deadline(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_ABSOLUTE};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  run_once_until(&loop, t.finishes == 1);
  assert_true(t.d_inner == t.d_outer + 20);
  assert_int_eq(t.sleep_rc, ARBOR_ECANCELED);
  assert_int_eq(t.caught, 1);
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
}

static void rule6_shield_ignores_outside_cancellation(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_SHIELD_IGNORES_OUTSIDE};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  arbor_test_run_until(&loop, t.parked);
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, t.finishes == 1);
  assert_int_eq(t.sleep_rc, 0);          /* the 30 ms sleep ran to its end */
  assert_int_eq(t.sleep2_rc, 0);
  assert_int_eq(t.exit_rc, 0);
  assert_int_eq(t.after_rc, ARBOR_ECANCELED);
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
}

static void rule6_shield_keeps_its_own_deadline(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_SHIELD_OWN_DEADLINE};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  arbor_test_run_until(&loop, t.parked);
  assert_code(arbor_node_cancel(n), 0);
  run_once_until(&loop, t.finishes == 1);
  assert_int_eq(t.sleep_rc, ARBOR_ECANCELED);   /* its own 20 ms deadline */
  assert_int_eq(t.exit_rc, 0);
  assert_int_eq(t.caught, 1);
  assert_int_eq(t.after_rc, ARBOR_ECANCELED);   /* the task's cancel, outside */
  assert_outcome(n, CANCELLED);
  arbor_test_close(rt, &loop);
}

static void scope_lifo_misuse_is_refused(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_LIFO_MISUSE};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  run_once_until(&loop, t.finishes == 1);
  assert_int_eq(t.exit_rc, ARBOR_ESTATE);
  assert_int_eq(t.exit2_rc, 0);
  assert_int_eq(t.after_rc, 0);
  assert_int_eq(t.sleep_rc, ARBOR_EINVAL);      /* two deadlines */
  assert_outcome(n, OK);
  assert_code(arbor_scope_enter(NULL, NULL, NULL), ARBOR_EINVAL);
  arbor_test_close(rt, &loop);
}

static void scope_returning_inside_open_scope_fails(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_RETURN_INSIDE};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  run_once_until(&loop, t.finishes == 1);
  assert_outcome(n, FAILED);
  assert_code(arbor_error_code(arbor_node_error(n)), ARBOR_ESTATE);
  assert_non_null(strstr(arbor_error_message(arbor_node_error(n)), "cancel scope"));
  arbor_test_close(rt, &loop);
}

static void scope_cancel_by_hand_wakes_parked_fiber(void **state) {
  OPEN(loop, rt);
  sc_t t = {.plan = P_CANCEL_BY_HAND};
  arbor_node_t *n = spawn(arbor_root(rt), &t);
  arbor_test_run_until(&loop, t.parked && t.open != NULL);
  arbor_test_spin(&loop, 2);
  assert_code(arbor_scope_cancel(t.open), 0);
  assert_code(arbor_scope_cancel(t.open), 0);   /* twice is harmless */
  run_once_until(&loop, t.finishes == 1);
  assert_int_eq(t.sleep_rc, ARBOR_ECANCELED);
  assert_int_eq(t.exit_rc, 0);
  assert_int_eq(t.caught, 1);
  assert_outcome(n, OK);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest scope_tests[] = {
    cmocka_unit_test(rule5_move_on_deadline_ends_scope_quietly),
    cmocka_unit_test(rule5_fail_deadline_fails_with_timeout_error),
    cmocka_unit_test(rule5_earliest_deadline_wins_inner),
    cmocka_unit_test(rule5_earliest_deadline_wins_outer),
    cmocka_unit_test(rule5_absolute_deadline),
    cmocka_unit_test(rule6_shield_ignores_outside_cancellation),
    cmocka_unit_test(rule6_shield_keeps_its_own_deadline),
    cmocka_unit_test(scope_lifo_misuse_is_refused),
    cmocka_unit_test(scope_returning_inside_open_scope_fails),
    cmocka_unit_test(scope_cancel_by_hand_wakes_parked_fiber),
};

ARBOR_TEST_MAIN(scope_tests)
