/* supervisor/switch_asm.c - arbor__ctx_make for the per-CPU assembly switch.
 * Built empty with ARBOR_FIBER_UCONTEXT (switch_ucontext.c serves then). */
#include "switch.h"

#if !ARBOR_FIBER_UCONTEXT && defined(__x86_64__)   /* aarch64: in switch_aarch64.S */
#include <stdint.h>

void arbor__ctx_entry(void);

/* Lays out the new stack as arbor__ctx_switch expects to find a saved one: six
 * callee-saved registers (r15 r14 r13 r12 rbx rbp, lowest first), then the return
 * address, arbor__ctx_entry, which takes the entry function from r12 and its
 * argument from r13. After the `ret` into arbor__ctx_entry, rsp is the 16-byte
 * aligned top, so its `call` enters the entry function with rsp = 16k - 8, as the
 * ABI requires at a function's first instruction. */
void arbor__ctx_make(arbor__ctx_t *ctx, void *stack, size_t size, void (*entry)(void *),
                     void *arg) {
  uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
  void **sp = (void **)top;
  *--sp = (void *)arbor__ctx_entry;  /* return address of the first switch */
  *--sp = 0;                         /* rbp */
  *--sp = 0;                         /* rbx */
  *--sp = (void *)entry;             /* r12 */
  *--sp = arg;                       /* r13 */
  *--sp = 0;                         /* r14 */
  *--sp = 0;                         /* r15 */
  ctx->sp = sp;
}
#else
typedef int arbor__switch_asm_unused; /* ISO C forbids an empty translation unit */
#endif
