/* supervisor/overflow.c - a fiber that overflows its stack ends FAILED with
 * ARBOR_ESTACK instead of taking the process down.
 *
 * A fiber that runs off the low end of its stack touches the PROT_NONE guard page
 * below it (stack.c) and gets SIGSEGV. On its own that is a bare "Segmentation
 * fault", and the kernel cannot even deliver a handler on the overflowed stack. So:
 *
 *  - arbor__overflow_install() (from fiber_start; cheap after the first call on a
 *    thread) gives the calling thread an alternate signal stack, unless it already
 *    has one (ASan's, the embedder's), and installs, once per process, a SIGSEGV
 *    and SIGBUS handler with SA_ONSTACK | SA_SIGINFO.
 *  - resume() in fiber.c calls arbor__overflow_enter(f) before switching to a fiber
 *    and arbor__overflow_enter(NULL) once it is back: a thread-local pointer to the
 *    running fiber, one store each way, no lock. The signal is synchronous, so the
 *    handler runs on the faulting thread and reads that thread's pointer.
 *  - The handler decides it is an overflow when the faulting address is in the
 *    running fiber's guard page or the page below it, or when the stack pointer at
 *    the fault is at or below the guard's top (a frame bigger than the guard can
 *    jump over it). Then it writes "arbor: stack overflow in fiber <id> <name>"
 *    with write(2) alone (the id is formatted by hand) and, where it can,
 *    recovers: it rewrites the interrupted context so that returning from the
 *    handler lands in arbor__overflow_recover(f) (fiber.c) with the stack
 *    pointer near the top of the same, overflowed stack. The kernel's sigreturn
 *    then leaves the alternate stack and restores the signal mask, as after any
 *    handler: no siglongjmp, no switch from inside the handler. recover ends
 *    the body with ARBOR_ESTACK and switches to the loop for good; the fiber's
 *    node FAILS with "stack overflow in fiber <id> <name> (stack <n> bytes)",
 *    which its supervisor handles like any failure. The stack is never resumed
 *    and never reused (fiber.c quarantines it, arbor_stats_t counts it).
 *  - It cannot recover, and aborts as before, when the fault is inside libc or
 *    libuv (the frame that overflowed may hold one of their locks, malloc's or
 *    the thread pool's, and arbor needs both to go on), when the CPU is not one
 *    whose context it knows how to rewrite (x86-64, AArch64), or when the
 *    running fiber is not the runtime's current one.
 *    Anything that is not an overflow goes to whatever handled the signal before
 *    us (ASan's report, an embedder's handler), or to SIG_DFL so that the fault
 *    repeats and the process dies of it as it did without arbor.
 *
 * What recovery cannot undo: an overflow inside one of arbor's own calls made
 * by the body (a spawn, a channel send) may leave that call half done; the
 * frames arbor's calls need are small, so an overflow almost always happens in
 * the body's own code, but it is not impossible.
 *
 * The fiber record is read in a signal handler while the fiber it names is
 * running, so the node (its id and name) is alive: nothing frees a running fiber.
 */
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"

#define ALTSTACK_SIZE (64u * 1024u)

/* The running fiber of this thread, or NULL. initial-exec: a plain %fs-relative
 * access, no __tls_get_addr (which may allocate) in the handler. */
__attribute__((tls_model("initial-exec"))) _Thread_local struct arbor_ctx_s
    *volatile arbor__overflow_fiber;

static __attribute__((tls_model("initial-exec"))) _Thread_local int thread_ready;
static int process_ready;                    /* __atomic: 0, 1 installing, 2 done */
static struct sigaction old_segv, old_bus;   /* what handled the signal before us */
static uintptr_t page_size;

/* ---------------------------------------------------------- the handler */

static void put(char *buf, size_t *len, size_t cap, const char *s, size_t n) {
  while (n-- > 0 && *len < cap)
    buf[(*len)++] = *s++;
}

/* The code of libc and libuv: an overflow there cannot be recovered from. */
static struct {
  uintptr_t lo, hi;
} unsafe[4];
static int nunsafe;

/* "arbor: stack overflow in fiber <id> <name><tail>\n" with async-signal-safe
 * calls only. */
static void report(const struct arbor_ctx_s *f, const char *tail) {
  char buf[256];                 /* head, id, a name of up to 64, the tail */
  size_t len = 0;
  static const char head[] = "arbor: stack overflow in fiber ";
  put(buf, &len, sizeof buf, head, sizeof head - 1);
  char digits[24];
  size_t nd = 0;
  uint64_t id = f->task->id;
  do {
    digits[nd++] = (char)('0' + id % 10);
    id /= 10;
  } while (id != 0);
  while (nd > 0 && len < sizeof buf)
    buf[len++] = digits[--nd];
  put(buf, &len, sizeof buf, " ", 1);
  const char *name = f->task->name;
  for (size_t i = 0; i < 64 && name[i] != '\0' && len < sizeof buf - 1; i++)
    buf[len++] = (name[i] >= ' ' && name[i] != 0x7f) ? name[i] : '?';
  put(buf, &len, sizeof buf - 1, tail, strlen(tail));
  buf[len++] = '\n';
  for (size_t off = 0; off < len;) {
    ssize_t w = write(STDERR_FILENO, buf + off, len - off);
    if (w <= 0)
      break;                     /* EINTR cannot happen: we are the handler */
    off += (size_t)w;
  }
}

/* The stack pointer at the fault, or 0 where we do not know how to read it. */
static uintptr_t fault_sp(const void *ucv) {
  const ucontext_t *uc = ucv;
  if (uc == NULL)
    return 0;
#if defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
  return (uintptr_t)uc->uc_mcontext.sp;
#else
  return 0;
#endif
}

/* The program counter at the fault, or 0. */
static uintptr_t fault_pc(const void *ucv) {
  const ucontext_t *uc = ucv;
  if (uc == NULL)
    return 0;
#if defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
  return (uintptr_t)uc->uc_mcontext.pc;
#else
  return 0;
#endif
}

/* Whether the fiber can be ended in place of the process (the comment on top). */
static int can_recover(const struct arbor_ctx_s *f, const void *uc) {
  uintptr_t pc = fault_pc(uc);
  if (pc == 0 || f->overflowed || f->task->rt->current != f)
    return 0;
  for (int i = 0; i < nunsafe; i++)
    if (pc >= unsafe[i].lo && pc < unsafe[i].hi)
      return 0;
  return 1;
}

/* Makes the return from the handler a call of arbor__overflow_recover(f) near
 * the top of f's stack: whatever frames were there are the dead body's. */
static void redirect(struct arbor_ctx_s *f, void *ucv) {
  ucontext_t *uc = ucv;
  struct arbor__stacks *s = &f->task->rt->stacks;
  uintptr_t top = (uintptr_t)arbor__stack_lo(s, &f->stack) + arbor__stack_usable(s, &f->stack);
  uintptr_t sp = (top - 256) & ~(uintptr_t)15;
#if defined(__x86_64__)
  sp -= 8;                       /* as after a call: the return address's slot */
  *(uintptr_t *)sp = 0;
  uc->uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
  uc->uc_mcontext.gregs[REG_RBP] = 0;
  uc->uc_mcontext.gregs[REG_RDI] = (greg_t)(uintptr_t)f;
  uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)arbor__overflow_recover;
#elif defined(__aarch64__)
  uc->uc_mcontext.sp = sp;
  uc->uc_mcontext.regs[29] = 0;
  uc->uc_mcontext.regs[30] = 0;
  uc->uc_mcontext.regs[0] = (uintptr_t)f;
  uc->uc_mcontext.pc = (uintptr_t)arbor__overflow_recover;
#else
  (void)uc;
  (void)sp;
#endif
}

static int is_overflow(const struct arbor_ctx_s *f, const siginfo_t *si, const void *uc) {
  if (f == NULL || f->stack.map == NULL || si->si_code <= 0)   /* <= 0: sent, not a fault */
    return 0;
  uintptr_t guard_lo = (uintptr_t)f->stack.map, guard_hi = guard_lo + page_size;
  uintptr_t addr = (uintptr_t)si->si_addr;
  if (addr >= guard_lo - page_size && addr < guard_hi)
    return 1;
  /* A frame larger than the guard: the faulting address may be anywhere below, but
   * the stack pointer has left the stack. Bounded, so a wild sp far away is not
   * taken for this fiber's overflow. */
  uintptr_t sp = fault_sp(uc);
  return sp != 0 && sp < guard_hi && sp >= guard_lo - 1024 * page_size;
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
  struct arbor_ctx_s *f = arbor__overflow_fiber;
  if (is_overflow(f, si, uc)) {
    if (can_recover(f, uc)) {
      report(f, ": the fiber FAILED (ARBOR_ESTACK), arbor goes on");
      redirect(f, uc);
      return;                    /* into arbor__overflow_recover, off this stack */
    }
    report(f, "");
    signal(sig, SIG_DFL);
    abort();
  }
  /* Not ours: as if we had never been installed. */
  const struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
  if (old->sa_flags & SA_SIGINFO) {
    if (old->sa_sigaction != NULL) {
      old->sa_sigaction(sig, si, uc);
      return;
    }
  } else if (old->sa_handler == SIG_IGN) {
    if (si->si_code <= 0)
      return;                    /* sent, not a fault: ignored, as without arbor */
  } else if (old->sa_handler != SIG_DFL) {
    old->sa_handler(sig);
    return;
  }
  /* SIG_DFL (or SIG_IGN, which the kernel ignores for a fault anyway): restore the
   * default. A real fault repeats when we return and kills the process with the
   * right signal (and core); a signal sent by kill/raise is raised again, and
   * delivered once the handler returns and unblocks it. */
  signal(sig, SIG_DFL);
  if (si->si_code <= 0)
    raise(sig);
}

/* ---------------------------------------------------------- installing */

/* Gives this thread an alternate signal stack unless it has a big enough one. */
static void thread_install(void) {
  stack_t cur;
  if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
      cur.ss_size >= ALTSTACK_SIZE / 2)
    return;
  /* Never freed: a thread keeps it for its lifetime (64 KiB per thread that ever
   * ran a fiber; the kernel forgets it when the thread exits, the mapping stays). */
  void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (mem == MAP_FAILED)
    return;                      /* no report then, but the fault still kills */
  stack_t st = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&st, NULL) != 0)
    munmap(mem, ALTSTACK_SIZE);
}

/* Notes the executable segments of libc and libuv (see can_recover). */
static int find_unsafe(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  (void)arg;
  const char *name = info->dlpi_name;
  if (name == NULL || (strstr(name, "/libc.so") == NULL && strstr(name, "/libuv.so") == NULL))
    return 0;
  for (int i = 0; i < info->dlpi_phnum && nunsafe < 4; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      unsafe[nunsafe].lo = info->dlpi_addr + ph->p_vaddr;
      unsafe[nunsafe].hi = unsafe[nunsafe].lo + ph->p_memsz;
      nunsafe++;
    }
  }
  return 0;
}

void arbor__overflow_install(void) {
  if (thread_ready)
    return;
  thread_ready = 1;
  thread_install();
  int expected = 0;
  if (!__atomic_compare_exchange_n(&process_ready, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return;                      /* another thread did (or is doing) it */
  page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
  dl_iterate_phdr(find_unsafe, NULL);
  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_sigaction = on_fault;
  act.sa_flags = SA_ONSTACK | SA_SIGINFO;
  sigemptyset(&act.sa_mask);
  /* Read the old actions first, so they are in place before our handler can run. */
  sigaction(SIGSEGV, NULL, &old_segv);
  sigaction(SIGBUS, NULL, &old_bus);
  sigaction(SIGSEGV, &act, NULL);
  sigaction(SIGBUS, &act, NULL);
  __atomic_store_n(&process_ready, 2, __ATOMIC_RELEASE);
}
