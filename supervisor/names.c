/* supervisor/names.c - text for codes and enum values, expanded from the X-macro
 * lists in arbor/names.h so that names and values cannot drift apart. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *errno_name(int e);

static int is_uv_code(int code) {
  /* UV_EAI_* run from -3000 to -3014 with -3012 unused. */
  return (code >= UV_EAI_PROTOCOL && code <= UV_EAI_ADDRFAMILY && code != -3012) ||
         code == UV_EOF || code == UV_ECHARSET || code == UV_EFTYPE;
}

const char *arbor_strerror(int code) {
  switch (code) {
#define XX(name, value, msg)                                                           \
  case value:                                                                          \
    return msg;
    ARBOR_ERRNO_MAP(XX)
#undef XX
  default:
    break;
  }
  /* libuv's own codes, which task bodies pass on from libuv calls. Only the ones
   * libuv knows: for an unknown code uv_strerror allocates (and leaks) a string. */
  if (is_uv_code(code))
    return uv_strerror(code);
  /* A plain negative errno that arbor does not list itself, e.g. -ECONNREFUSED
   * returned by a task body. glibc's strerror() returns a static string for a valid
   * errno; it is not called for other codes. */
  if (code < 0 && code > -4096 && errno_name(-code) != NULL)   /* -INT_MIN is UB */
    return strerror(-code);
  return "unknown error";
}

/* Names for the errno codes arbor does not list but task bodies commonly return. */
static const char *errno_name(int e) {
  switch (e) {
#define E(x)                                                                           \
  case x:                                                                              \
    return #x;
    E(EPERM) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD)
    E(EAGAIN) E(EACCES) E(EFAULT) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR)
    E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE)
    E(EDOM) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOTSUP)
    E(EPROTO) E(EOVERFLOW) E(EILSEQ) E(ENOTSOCK) E(EADDRINUSE) E(EADDRNOTAVAIL)
    E(ENETDOWN) E(ENETUNREACH) E(ECONNABORTED) E(ECONNRESET) E(ENOBUFS) E(EISCONN)
    E(ENOTCONN) E(ECONNREFUSED) E(EHOSTUNREACH) E(EINPROGRESS) E(EMSGSIZE)
    E(EPROTONOSUPPORT) E(EAFNOSUPPORT) E(ESHUTDOWN) E(ENODATA) E(ETIME) E(EBADMSG)
#undef E
  default:
    return NULL;
  }
}

const char *arbor_err_name(int code) {
  switch (code) {
#define XX(name, value, msg)                                                           \
  case value:                                                                          \
    return #name;                /* as uv_err_name: "EINVAL", not "ARBOR_EINVAL" */
    ARBOR_ERRNO_MAP(XX)
#undef XX
  default:
    break;
  }
  if (is_uv_code(code))
    return uv_err_name(code);
  if (code < 0 && code > -4096) {
    const char *n = errno_name(-code);
    if (n != NULL)
      return n;
  }
  return "UNKNOWN";
}

const char *arbor_kind_name(arbor_kind_t kind) {
  static const char *const names[] = {
#define XX(name, text) text,
      ARBOR_KIND_MAP(XX)
#undef XX
  };
  return (unsigned)kind < ARBOR_KIND_COUNT ? names[kind] : "unknown";
}

const char *arbor_state_name(arbor_state_t state) {
  static const char *const names[] = {
#define XX(name, text) text,
      ARBOR_STATE_MAP(XX)
#undef XX
  };
  return (unsigned)state < ARBOR_STATE_COUNT ? names[state] : "unknown";
}

const char *arbor_outcome_name(arbor_outcome_t outcome) {
  static const char *const names[] = {
#define XX(name, text) text,
      ARBOR_OUTCOME_MAP(XX)
#undef XX
  };
  return (unsigned)outcome < ARBOR_OUTCOME_COUNT ? names[outcome] : "unknown";
}

const char *arbor_event_type_name(arbor_event_type_t type) {
  static const char *const names[] = {
#define XX(name, text) text,
      ARBOR_EVENT_MAP(XX)
#undef XX
  };
  return (unsigned)type < ARBOR_EVENT_COUNT ? names[type] : "unknown";
}

void arbor__assert_fail(const char *expr, const char *file, int line, const char *func) {
  fprintf(stderr, "arbor: internal invariant broken: %s at %s:%d in %s()\n", expr, file, line,
          func);
  fflush(stderr);
  abort();
}
