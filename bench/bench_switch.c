/* bench/bench_switch.c - the raw cost of arbor__ctx_switch (supervisor/switch.h):
 * a context on its own stack and the main stack switch back and forth N times.
 * One round trip is two switches; the figure is per switch. This is the floor under
 * the fiber issue's "fiber -> loop -> fiber" target, which adds the loop's part.
 *
 *   bench_switch N        (default 10,000,000)
 * Prints `RESULT peer=arbor bench=switch n=N wall_ns=... ns_per_switch=...`. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <uv.h>

#include "switch.h"

#define STACK_SIZE (64 * 1024)

static arbor__ctx_t main_ctx, fib_ctx;

static void entry(void *arg) {
  (void)arg;
  for (;;)
    arbor__ctx_switch(&fib_ctx, &main_ctx);
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
  void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack == MAP_FAILED)
    return 1;
  arbor__ctx_make(&fib_ctx, stack, STACK_SIZE, entry, NULL);
  for (int i = 0; i < 1000; i++)       /* warm up */
    arbor__ctx_switch(&main_ctx, &fib_ctx);
  uint64_t t0 = uv_hrtime();
  for (size_t i = 0; i < n; i++)
    arbor__ctx_switch(&main_ctx, &fib_ctx);
  uint64_t dt = uv_hrtime() - t0;
  printf("RESULT peer=arbor bench=switch n=%zu wall_ns=%llu ns_per_switch=%.2f\n", n,
         (unsigned long long)dt, (double)dt / (double)(2 * n));
  munmap(stack, STACK_SIZE);
  return 0;
}
