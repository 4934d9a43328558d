/* supervisor/stack.c - fiber stacks: mmap'd, a guard page below, pooled.
 *
 * A stack is taken when its fiber first runs and given back when the fiber ends.
 * Stacks of the runtime's default size go back to a bounded pool and are reused
 * as they are (their touched pages stay resident: at most max * size bytes);
 * others, and any beyond the bound, are unmapped.
 *
 * Each stack costs two kernel VMAs (the guard page splits the mapping), and Linux
 * allows vm.max_map_count (65,530 by default) per process: about 32,700 live
 * fibers. Past that, arbor__stack_get fails with ARBOR_ENOMEM and the fiber's
 * task fails with it; see docs/DEVELOPING.md, "Fibers".
 */
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

void arbor__stacks_init(struct arbor__stacks *s, size_t default_size, size_t max) {
  s->page = (size_t)sysconf(_SC_PAGESIZE);
  s->default_size = (default_size + s->page - 1) & ~(s->page - 1);
  s->max = max;
  s->pool = NULL;
  s->len = 0;
}

void *arbor__stack_lo(const struct arbor__stacks *s, const struct arbor__stack *st) {
  return (char *)st->map + s->page;
}

size_t arbor__stack_usable(const struct arbor__stacks *s, const struct arbor__stack *st) {
  return st->map_size - s->page;
}

/* A stack with at least `size` usable bytes (0: the default). 0 or ARBOR_ENOMEM. */
int arbor__stack_get(struct arbor__stacks *s, size_t size, struct arbor__stack *out) {
  size = size == 0 ? s->default_size : (size + s->page - 1) & ~(s->page - 1);
  if (size == s->default_size && s->len > 0) {
    *out = s->pool[--s->len];
    return 0;
  }
  size_t map_size = size + s->page;
  void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (map == MAP_FAILED)
    return ARBOR_ENOMEM;
  if (mprotect(map, s->page, PROT_NONE) != 0) {   /* the guard: stacks grow down */
    munmap(map, map_size);
    return ARBOR_ENOMEM;
  }
  out->map = map;
  out->map_size = map_size;
  return 0;
}

void arbor__stack_put(struct arbor__stacks *s, struct arbor__stack *st) {
  if (st->map == NULL)
    return;
  if (st->map_size == s->default_size + s->page && s->len < s->max) {
    if (s->pool == NULL && (s->pool = malloc(s->max * sizeof *s->pool)) == NULL)
      goto unmap;
    s->pool[s->len++] = *st;
    st->map = NULL;
    return;
  }
unmap:
  munmap(st->map, st->map_size);
  st->map = NULL;
}

void arbor__stacks_free(struct arbor__stacks *s) {
  while (s->len > 0) {
    struct arbor__stack *st = &s->pool[--s->len];
    munmap(st->map, st->map_size);
  }
  free(s->pool);
  s->pool = NULL;
}
