/* supervisor/switch_ucontext.c - the portable context switch (makecontext and
 * swapcontext), for CPUs without a switch_<cpu>.S or with FIBER=ucontext. It is
 * slower (swapcontext saves and restores the signal mask: a system call per switch)
 * but needs nothing of the CPU. Built empty otherwise. */
#include "switch.h"

#if ARBOR_FIBER_UCONTEXT
#include <stdint.h>
#include <stdlib.h>

/* makecontext passes only int arguments: split the two pointers. */
static void trampoline(unsigned fn_hi, unsigned fn_lo, unsigned arg_hi, unsigned arg_lo) {
  void (*entry)(void *) =
      (void (*)(void *))(((uintptr_t)fn_hi << 16 << 16) | (uintptr_t)fn_lo);
  void *arg = (void *)(((uintptr_t)arg_hi << 16 << 16) | (uintptr_t)arg_lo);
  entry(arg);
  abort();                       /* entry functions never return */
}

void arbor__ctx_make(arbor__ctx_t *ctx, void *stack, size_t size, void (*entry)(void *),
                     void *arg) {
  uintptr_t f = (uintptr_t)entry, a = (uintptr_t)arg;
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = NULL;
  makecontext(&ctx->uc, (void (*)(void))trampoline, 4, (unsigned)(f >> 16 >> 16),
              (unsigned)f, (unsigned)(a >> 16 >> 16), (unsigned)a);
}

void arbor__ctx_switch(arbor__ctx_t *from, arbor__ctx_t *to) { swapcontext(&from->uc, &to->uc); }
#else
typedef int arbor__switch_ucontext_unused; /* ISO C forbids an empty translation unit */
#endif
