/* tests/supervisor/test_switch.c - the context switch under fibers (switch.h):
 * switch_x86_64.S, or switch_ucontext.c with FIBER=ucontext. Ping-pongs between the
 * main stack and a context on an mmap'd stack, and checks that values the compiler
 * keeps in callee-saved registers and the stack's 16-byte alignment survive. */
#include "harness.h"

#include <stdalign.h>
#include <sys/mman.h>

#include "switch.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARBOR_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARBOR_TEST_ASAN 1
#endif
#endif

#ifdef ARBOR_TEST_ASAN
/* The fiber-switch annotations (from <sanitizer/common_interface_defs.h>, which
 * Debian installs only inside each compiler's own include directory). */
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#define START_SWITCH(save, bottom, size) __sanitizer_start_switch_fiber((save), (bottom), (size))
#define FINISH_SWITCH(save, bottom, size) __sanitizer_finish_switch_fiber((save), (bottom), (size))
#else
#define START_SWITCH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define FINISH_SWITCH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif

#define STACK_SIZE (64 * 1024)

static arbor__ctx_t main_ctx, fib_ctx;
static void *stack;
static const void *main_bottom;
static size_t main_size;
static volatile int counter;
static int misaligned;

static void to_main(void) {
  void *fake = NULL;
  START_SWITCH(&fake, main_bottom, main_size);
  arbor__ctx_switch(&fib_ctx, &main_ctx);
  FINISH_SWITCH(fake, NULL, NULL);
}

static void to_fiber(void) {
  void *fake = NULL;
  START_SWITCH(&fake, stack, STACK_SIZE);
  arbor__ctx_switch(&main_ctx, &fib_ctx);
  FINISH_SWITCH(fake, NULL, NULL);
}

static void entry(void *arg) {
  FINISH_SWITCH(NULL, &main_bottom, &main_size);
  int *rounds = arg;
  for (int i = 0; i < *rounds; i++) {
    alignas(16) volatile char probe[16];
    if (((uintptr_t)probe & 15) != 0)
      misaligned++;
    counter += 1;
    to_main();
  }
  counter = -1;                  /* done; switch away for good */
  START_SWITCH(NULL, main_bottom, main_size);
  arbor__ctx_switch(&fib_ctx, &main_ctx);
}

static void switch_ping_pong_preserves_registers(void **state) {
  (void)state;
  int rounds = 1000;
  stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(stack != MAP_FAILED);
  arbor__ctx_make(&fib_ctx, stack, STACK_SIZE, entry, &rounds);
  /* Values live across the switches, likely in callee-saved registers at -O2. */
  long a = 11, b = 22, c = 33, d = 44, e = 55, f = 66;
  for (int i = 0; i < rounds; i++) {
    to_fiber();
    assert_int_eq(counter, i + 1);
    a += 1, b += 2, c += 3, d += 4, e += 5, f += 6;
  }
  to_fiber();                    /* the fiber leaves its loop and ends */
  assert_int_eq(counter, -1);
  assert_int_eq(misaligned, 0);
  assert_int_eq(a, 11 + rounds);
  assert_int_eq(b, 22 + 2 * rounds);
  assert_int_eq(c, 33 + 3 * rounds);
  assert_int_eq(d, 44 + 4 * rounds);
  assert_int_eq(e, 55 + 5 * rounds);
  assert_int_eq(f, 66 + 6 * rounds);
  assert_int_eq(munmap(stack, STACK_SIZE), 0);
}

static const struct CMUnitTest switch_tests[] = {
    cmocka_unit_test(switch_ping_pong_preserves_registers),
};

ARBOR_TEST_MAIN(switch_tests)
