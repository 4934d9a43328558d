/* supervisor/stack.c - fiber stacks: mmap'd, a guard page below, pooled.
 *
 * A stack is taken when its fiber first runs and given back when the fiber ends.
 *
 * Stacks of the runtime's default size are cut from slabs: one mapping holds
 * ARBOR__SLAB_STACKS units of (guard page + stack). Why: each mmap and munmap is a
 * system call with kernel bookkeeping (and munmap a TLB flush), and with a stack
 * per mapping they dominated both spawning many fibers and cancelling many (the
 * fiber benchmarks of docs/PERFORMANCE.md). A slab costs one mmap, one munmap,
 * and an mprotect per guard page, done the first time its unit is handed out.
 * Free units are reused most-recent-first (their pages are likely still cached);
 * a slab whose every unit is free is unmapped once more than `max` free stacks
 * would remain without it. Other sizes get a mapping of their own, unmapped when
 * their fiber ends.
 *
 * Each guard page still splits the mapping: two kernel VMAs per stack handed out,
 * and Linux allows vm.max_map_count (65,530 by default) per process, so about
 * 32,700 live fibers. Past that, mprotect fails, arbor__stack_get returns
 * ARBOR_ENOMEM and the fiber's task fails with it; see docs/DEVELOPING.md.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

void arbor__stacks_init(struct arbor__stacks *s, size_t default_size, size_t max) {
  s->page = (size_t)sysconf(_SC_PAGESIZE);
  s->default_size = (default_size + s->page - 1) & ~(s->page - 1);
  s->unit = s->default_size + s->page;
  s->max = max;
  s->partial = s->all = NULL;
  s->free_units = 0;
}

void *arbor__stack_lo(const struct arbor__stacks *s, const struct arbor__stack *st) {
  return (char *)st->map + s->page;
}

size_t arbor__stack_usable(const struct arbor__stacks *s, const struct arbor__stack *st) {
  return st->map_size - s->page;
}

static void list_add(struct arbor__stacks *s, struct arbor__slab *b) {
  b->prev = NULL;
  b->next = s->partial;
  if (s->partial != NULL)
    s->partial->prev = b;
  s->partial = b;
  b->listed = 1;
}

static void list_del(struct arbor__stacks *s, struct arbor__slab *b) {
  if (b->prev != NULL)
    b->prev->next = b->next;
  else
    s->partial = b->next;
  if (b->next != NULL)
    b->next->prev = b->prev;
  b->listed = 0;
}

static struct arbor__slab *slab_new(struct arbor__stacks *s) {
  struct arbor__slab *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  void *base = mmap(NULL, s->unit * ARBOR__SLAB_STACKS, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    free(b);
    return NULL;
  }
  b->base = base;
  for (int i = 0; i < ARBOR__SLAB_STACKS; i++)    /* unit 0 is handed out first */
    b->free[i] = (uint16_t)(ARBOR__SLAB_STACKS - 1 - i);
  b->nfree = ARBOR__SLAB_STACKS;
  b->next_all = s->all;
  s->all = b;
  s->free_units += ARBOR__SLAB_STACKS;
  list_add(s, b);
  return b;
}

static void slab_unmap(struct arbor__stacks *s, struct arbor__slab *b) {
  if (b->listed)
    list_del(s, b);
  struct arbor__slab **pp = &s->all;
  while (*pp != b)
    pp = &(*pp)->next_all;
  *pp = b->next_all;
  s->free_units -= b->nfree;
  munmap(b->base, s->unit * ARBOR__SLAB_STACKS);
  free(b);
}

static int get_from_slab(struct arbor__stacks *s, struct arbor__stack *out) {
  struct arbor__slab *b = s->partial;
  if (b == NULL && (b = slab_new(s)) == NULL)
    return ARBOR_ENOMEM;
  unsigned idx = b->free[b->nfree - 1];
  char *unit = b->base + (size_t)idx * s->unit;
  if (!(b->guarded & (UINT64_C(1) << idx))) {
    if (mprotect(unit, s->page, PROT_NONE) != 0)  /* the guard: stacks grow down */
      return ARBOR_ENOMEM;     /* the unit stays free; likely the map count is out */
    b->guarded |= UINT64_C(1) << idx;
  }
  b->nfree--;
  s->free_units--;
  if (b->nfree == 0)
    list_del(s, b);
  out->map = unit;
  out->map_size = s->unit;
  out->slab = b;
  return 0;
}

/* A stack with at least `size` usable bytes (0: the default). 0 or ARBOR_ENOMEM. */
int arbor__stack_get(struct arbor__stacks *s, size_t size, struct arbor__stack *out) {
  size = size == 0 ? s->default_size : (size + s->page - 1) & ~(s->page - 1);
  if (size == s->default_size)
    return get_from_slab(s, out);
  size_t map_size = size + s->page;
  void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (map == MAP_FAILED)
    return ARBOR_ENOMEM;
  if (mprotect(map, s->page, PROT_NONE) != 0) {
    munmap(map, map_size);
    return ARBOR_ENOMEM;
  }
  out->map = map;
  out->map_size = map_size;
  out->slab = NULL;
  return 0;
}

void arbor__stack_put(struct arbor__stacks *s, struct arbor__stack *st) {
  if (st->map == NULL)
    return;
  struct arbor__slab *b = st->slab;
  if (b == NULL) {
    munmap(st->map, st->map_size);
  } else {
    unsigned idx = (unsigned)(((char *)st->map - b->base) / s->unit);
    b->free[b->nfree++] = (uint16_t)idx;
    s->free_units++;
    if (!b->listed)
      list_add(s, b);
    else if (s->partial != b) {  /* most recently used first */
      list_del(s, b);
      list_add(s, b);
    }
    if (b->nfree == ARBOR__SLAB_STACKS && s->free_units - ARBOR__SLAB_STACKS >= s->max)
      slab_unmap(s, b);
  }
  st->map = NULL;
  st->slab = NULL;
}

void arbor__stacks_free(struct arbor__stacks *s) {
  while (s->all != NULL)
    slab_unmap(s, s->all);
}
