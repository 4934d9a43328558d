/* tests/supervisor/test_stack.c - fiber stacks (supervisor/stack.c): slabs, guard
 * pages, reuse most-recent-first, unmapping whole slabs beyond the pool bound. */
#include "harness.h"
#include "internal.h"

#include <sys/mman.h>

#define N 150                    /* three slabs of 64 */

static size_t count_slabs(const struct arbor__stacks *s) {
  size_t n = 0;
  for (const struct arbor__slab *b = s->all; b != NULL; b = b->next_all)
    n++;
  return n;
}

/* The guard page is mapped but inaccessible: mincore still answers for it, and
 * /proc/self/maps lists it as ---p. */
static int is_guard(const void *page) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (uintptr_t)page >= lo &&
        (uintptr_t)page < hi) {
      found = perms[0] == '-' && perms[1] == '-' && perms[2] == '-';
      break;
    }
  }
  if (f != NULL)
    fclose(f);
  return found;
}

static void stack_slabs_guard_reuse_and_unmap(void **state) {
  (void)state;
  static struct arbor__stack st[N];
  struct arbor__stacks s;
  arbor__stacks_init(&s, 64 * 1024, 64);
  for (int i = 0; i < N; i++) {
    assert_code(arbor__stack_get(&s, 0, &st[i]), 0);
    assert_non_null(st[i].slab);
    assert_uint_eq(arbor__stack_usable(&s, &st[i]), 64 * 1024);
    /* usable and writable from its low end to its top */
    char *lo = arbor__stack_lo(&s, &st[i]);
    lo[0] = 1;
    lo[64 * 1024 - 1] = 1;
  }
  assert_uint_eq(count_slabs(&s), 3);
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++)
      assert_true(st[i].map != st[j].map);
  assert_true(is_guard(st[0].map));
  assert_true(is_guard(st[N - 1].map));
  assert_false(is_guard(arbor__stack_lo(&s, &st[0])));

  /* Most recently given back, first handed out again. */
  void *last = st[7].map;
  arbor__stack_put(&s, &st[7]);
  assert_null(st[7].map);
  assert_code(arbor__stack_get(&s, 0, &st[7]), 0);
  assert_ptr_equal(st[7].map, last);

  /* Everything back: whole slabs go while more than 64 free stacks would remain. */
  for (int i = 0; i < N; i++)
    arbor__stack_put(&s, &st[i]);
  assert_true(count_slabs(&s) <= 2);
  assert_true(s.free_units >= 64);

  /* Another size: a mapping of its own, guarded, unmapped when given back. */
  struct arbor__stack big;
  assert_code(arbor__stack_get(&s, 200 * 1024, &big), 0);
  assert_null(big.slab);
  assert_true(arbor__stack_usable(&s, &big) >= 200 * 1024);
  assert_true(is_guard(big.map));
  arbor__stack_put(&s, &big);
  arbor__stacks_free(&s);
  assert_null(s.all);
  assert_uint_eq(s.free_units, 0);
}

static const struct CMUnitTest stack_tests[] = {
    cmocka_unit_test(stack_slabs_guard_reuse_and_unmap),
};

ARBOR_TEST_MAIN(stack_tests)
