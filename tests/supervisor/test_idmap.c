/* tests/supervisor/test_idmap.c - the id map (supervisor/idmap.c) against a plain
 * array as the reference, under the patterns a runtime produces: sequential ids,
 * deletes oldest-first (retention), deletes in random order, growth and shrinking,
 * and ids far apart that collide in the identity hash. */
#include "harness.h"
#include "internal.h"

#define N 5000

static arbor_node_t *make_nodes(size_t n, uint64_t first_id, uint64_t stride) {
  arbor_node_t *v = calloc(n, sizeof *v);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++)
    v[i].id = first_id + i * stride;
  return v;
}

/* Every live node is found, every deleted one is not. */
static void check_all(struct arbor__idmap *m, arbor_node_t *v, const char *live, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    arbor_node_t *got = arbor__idmap_get(m, v[i].id);
    if (live[i]) {
      assert_ptr_equal(got, &v[i]);
      count++;
    } else {
      assert_null(got);
    }
  }
  assert_uint_eq(m->count, count);
}

static void run_pattern(uint64_t first_id, uint64_t stride, int random_order) {
  struct arbor__idmap m;
  arbor_node_t *v = make_nodes(N, first_id, stride);
  char *live = calloc(N, 1);
  assert_non_null(live);
  assert_code(arbor__idmap_init(&m), 0);
  for (size_t i = 0; i < N; i++) {
    assert_code(arbor__idmap_put(&m, &v[i]), 0);
    live[i] = 1;
  }
  check_all(&m, v, live, N);
  assert_null(arbor__idmap_get(&m, first_id + N * stride));   /* never inserted */
  /* Delete all but 10, oldest first or in a fixed pseudo-random order, checking
   * along the way (each check also exercises the early-exit lookups). */
  uint32_t x = 12345;
  for (size_t k = 0; k < N - 10; k++) {
    size_t i = k;
    if (random_order) {
      do {
        x = x * 1103515245u + 12345u;
        i = (x >> 8) % N;
      } while (!live[i]);
    }
    arbor__idmap_del(&m, v[i].id);
    live[i] = 0;
    if (k % 500 == 0)
      check_all(&m, v, live, N);
  }
  check_all(&m, v, live, N);
  arbor__idmap_del(&m, first_id + N * stride);                /* unknown: no-op */
  check_all(&m, v, live, N);
  arbor__idmap_free(&m);
  free(live);
  free(v);
}

static void idmap_sequential_ids_deleted_oldest_first(void **state) {
  (void)state;
  run_pattern(2, 1, 0);
}

static void idmap_sequential_ids_deleted_in_random_order(void **state) {
  (void)state;
  run_pattern(2, 1, 1);
}

/* Ids a power of two apart all share one home slot: the worst case for the identity
 * hash, which must stay correct (only slower). */
static void idmap_colliding_ids(void **state) {
  (void)state;
  run_pattern(7, 1024, 1);
}

static const struct CMUnitTest idmap_tests[] = {
    cmocka_unit_test(idmap_sequential_ids_deleted_oldest_first),
    cmocka_unit_test(idmap_sequential_ids_deleted_in_random_order),
    cmocka_unit_test(idmap_colliding_ids),
};

ARBOR_TEST_MAIN(idmap_tests)
