/* supervisor/switch_x86_64.S - the fiber context switch for x86-64 (System V).
 *
 * void arbor__ctx_switch(arbor__ctx_t *from, arbor__ctx_t *to)
 *   Pushes the callee-saved registers (rbp, rbx, r12-r15) on the current stack,
 *   stores rsp in from->sp, loads to->sp, pops the other side's registers and
 *   returns into it. Caller-saved registers need no saving: the compiler assumes
 *   a call clobbers them. The x87 control word and MXCSR are not switched: fibers
 *   share the thread's floating-point modes, which arbor never changes.
 *
 * arbor__ctx_entry: where a new context starts (see arbor__ctx_make in fiber.c):
 *   r12 holds the entry function and r13 its argument.
 */
        .text
        .globl  arbor__ctx_switch
        .hidden arbor__ctx_switch
        .type   arbor__ctx_switch, @function
arbor__ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   arbor__ctx_switch, .-arbor__ctx_switch

        .globl  arbor__ctx_entry
        .hidden arbor__ctx_entry
        .type   arbor__ctx_entry, @function
arbor__ctx_entry:
        .cfi_startproc
        .cfi_undefined rip           /* the outermost frame of a fiber: stop unwinding */
        movq    %r13, %rdi
        callq   *%r12
        ud2                          /* entry functions never return */
        .cfi_endproc
        .size   arbor__ctx_entry, .-arbor__ctx_entry

        .section .note.GNU-stack,"",@progbits
