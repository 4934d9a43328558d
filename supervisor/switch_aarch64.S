/* supervisor/switch_aarch64.S - the fiber context switch for AArch64 (AAPCS64).
 *
 * void arbor__ctx_switch(arbor__ctx_t *from, arbor__ctx_t *to)
 *   Stores the callee-saved registers on the current stack in a 160-byte frame
 *   (x19-x28, x29 the frame pointer, x30 the return address, then the low halves
 *   d8-d15 of v8-v15, the only vector state AAPCS64 makes callee-saved), stores sp
 *   in from->sp, loads to->sp, loads the other side's frame and returns into it
 *   through its x30. Caller-saved registers need no saving: the compiler assumes a
 *   call clobbers them. FPCR/FPSR are not switched: fibers share the thread's
 *   floating-point modes, which arbor never changes.
 *
 *   Frame, from sp upwards (what arbor__ctx_make lays out for a new context):
 *     +0 x19 x20   +16 x21 x22   +32 x23 x24   +48 x25 x26   +64 x27 x28
 *     +80 x29 x30  +96 d8 d9     +112 d10 d11  +128 d12 d13  +144 d14 d15
 *
 * void arbor__ctx_make(arbor__ctx_t *ctx, void *stack, size_t size,
 *                      void (*entry)(void *), void *arg)
 *   Here, not in C: the frame layout lives in this file only. Lays out a frame
 *   below the 16-byte aligned top of the stack whose x19 is entry, x20 arg, x29 0
 *   (the end of the frame-pointer chain) and x30 arbor__ctx_entry; everything else
 *   zero. The first switch to it "returns" into arbor__ctx_entry with sp at the
 *   aligned top.
 *
 * arbor__ctx_entry: where a new context starts: calls x19(x20); never returns.
 */
        .text

        .globl  arbor__ctx_switch
        .hidden arbor__ctx_switch
        .type   arbor__ctx_switch, %function
        .p2align 4
arbor__ctx_switch:
        .cfi_startproc
        sub     sp, sp, #160
        .cfi_def_cfa_offset 160
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8,  d9,  [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mov     x9, sp
        str     x9, [x0]
        ldr     x9, [x1]
        mov     sp, x9
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8,  d9,  [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #160
        .cfi_def_cfa_offset 0
        ret
        .cfi_endproc
        .size   arbor__ctx_switch, .-arbor__ctx_switch

        .globl  arbor__ctx_make
        .hidden arbor__ctx_make
        .type   arbor__ctx_make, %function
        .p2align 4
arbor__ctx_make:
        .cfi_startproc
        add     x9, x1, x2              /* top = (stack + size) & ~15 */
        and     x9, x9, #~15
        sub     x9, x9, #160
        stp     x3,  x4,  [x9, #0]      /* x19 = entry, x20 = arg */
        stp     xzr, xzr, [x9, #16]
        stp     xzr, xzr, [x9, #32]
        stp     xzr, xzr, [x9, #48]
        stp     xzr, xzr, [x9, #64]
        adr     x10, .Lentry
        stp     xzr, x10, [x9, #80]     /* x29 = 0, x30 = arbor__ctx_entry */
        stp     xzr, xzr, [x9, #96]
        stp     xzr, xzr, [x9, #112]
        stp     xzr, xzr, [x9, #128]
        stp     xzr, xzr, [x9, #144]
        str     x9, [x0]                /* ctx->sp */
        ret
        .cfi_endproc
        .size   arbor__ctx_make, .-arbor__ctx_make

        .globl  arbor__ctx_entry
        .hidden arbor__ctx_entry
        .type   arbor__ctx_entry, %function
        .p2align 4
arbor__ctx_entry:
.Lentry:
        .cfi_startproc
        .cfi_undefined x30              /* the outermost frame of a fiber: stop unwinding */
        mov     x0, x20
        blr     x19
        brk     #0x3e8                  /* entry functions never return */
        .cfi_endproc
        .size   arbor__ctx_entry, .-arbor__ctx_entry

        .section .note.GNU-stack,"",%progbits
