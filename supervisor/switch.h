/* supervisor/switch.h - the context switch under fibers, one compile-time interface.
 *
 * Two implementations, picked by the build (see the Makefile's FIBER): our own
 * switch per CPU (switch_x86_64.S: save the callee-saved registers and the stack
 * pointer, load the other's, return into it, as libco and Boost.Context's fcontext
 * do) or ucontext (switch_ucontext.c), the portable fallback. The core calls only
 * these two functions; this header is the one place that knows which is built.
 */
#ifndef ARBOR_SUPERVISOR_SWITCH_H
#define ARBOR_SUPERVISOR_SWITCH_H

#include <stddef.h>

#if ARBOR_FIBER_UCONTEXT
#include <ucontext.h>
typedef struct {
  ucontext_t uc;
} arbor__ctx_t;
#else
typedef struct {
  void *sp;                      /* saved stack pointer; registers live on the stack */
} arbor__ctx_t;
#endif

/* Prepares ctx so that the first switch to it calls entry(arg) on the given stack.
 * entry must never return (it switches away for the last time instead). */
void arbor__ctx_make(arbor__ctx_t *ctx, void *stack, size_t size, void (*entry)(void *),
                     void *arg);

/* Saves the running context into from and continues in to. Returns when something
 * switches back to from. */
void arbor__ctx_switch(arbor__ctx_t *from, arbor__ctx_t *to);

#endif /* ARBOR_SUPERVISOR_SWITCH_H */
