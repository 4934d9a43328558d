/* supervisor/overflow.c - report a fiber that overflows its stack, then abort.
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
 *    jump over it). Then it writes "arbor: stack overflow in fiber <id> <name>" with
 *    write(2) alone (the id is formatted by hand), restores SIG_DFL and aborts.
 *    Anything else goes to whatever handled the signal before us (ASan's report, an
 *    embedder's handler), or to SIG_DFL so that the fault repeats and the process
 *    dies of it as it did without arbor.
 *
 * The fiber record is read in a signal handler while the fiber it names is
 * running, so the node (its id and name) is alive: nothing frees a running fiber.
 */
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

/* "arbor: stack overflow in fiber <id> <name>\n" with async-signal-safe calls only. */
static void report(const struct arbor_ctx_s *f) {
  char buf[160];
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
  const struct arbor_ctx_s *f = arbor__overflow_fiber;
  if (is_overflow(f, si, uc)) {
    report(f);
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
