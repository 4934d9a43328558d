/* cmd/tracefile.c - trace files written whole or not at all (tracefile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"
#include "tracefile.h"

#define PIECE_BYTES (256 * 1024)  /* written per loop iteration by a background dump */

static void logf_(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "arbor: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  fflush(stderr);
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static char *tmp_name(const char *path) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 5);
  if (tmp != NULL) {
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
  }
  return tmp;
}

/* Ends the dump: renames PATH.tmp over PATH when ok, else removes it. */
static int finish(struct tracefile *tf, int rc) {
  if (tf->fd >= 0 && close(tf->fd) < 0 && rc == 0)
    rc = -errno;
  tf->fd = -1;
  if (rc == 0 && rename(tf->tmp, tf->path) < 0)
    rc = -errno;
  if (rc < 0)
    unlink(tf->tmp);
  uv_idle_stop(&tf->idle);
  trace_export_free(tf->x);
  free(tf->x);
  tf->x = NULL;
  free(tf->tmp);
  free(tf->path);
  tf->tmp = tf->path = NULL;
  return rc;
}

static void on_idle(uv_idle_t *h) {
  struct tracefile *tf = h->data;
  static char buf[PIECE_BYTES];
  ssize_t n = trace_export_read(tf->x, buf, sizeof buf);
  int rc = n < 0 ? (int)n : write_all(tf->fd, buf, (size_t)n);
  if (n > 0 && rc == 0) {
    tf->bytes += (size_t)n;
    return;                      /* more on the next iteration */
  }
  char size[32];
  snprintf(size, sizeof size, "%zu", tf->bytes);
  char *path = strdup(tf->path);
  rc = finish(tf, rc);
  if (rc == 0)
    logf_("SIGUSR1: trace written to %s (%s bytes)", path != NULL ? path : "?", size);
  else
    logf_("SIGUSR1: cannot write the trace to %s: %s", path != NULL ? path : "?",
          arbor_strerror(rc));
  free(path);
}

int tracefile_init(struct tracefile *tf, uv_loop_t *loop, arbor_runtime_t *rt) {
  memset(tf, 0, sizeof *tf);
  tf->fd = -1;
  tf->rt = rt;
  int rc = uv_idle_init(loop, &tf->idle);
  tf->idle.data = tf;
  return rc;
}

void tracefile_abort(struct tracefile *tf) {
  if (tf->x != NULL)
    finish(tf, ARBOR_ECANCELED);
}

int tracefile_start(struct tracefile *tf, const char *path, arbor_trace_format_t format) {
  tracefile_abort(tf);
  tf->path = strdup(path);
  tf->tmp = tmp_name(path);
  tf->x = malloc(sizeof *tf->x);
  tf->bytes = 0;
  if (tf->path == NULL || tf->tmp == NULL || tf->x == NULL) {
    free(tf->x);
    tf->x = NULL;
    free(tf->path);
    free(tf->tmp);
    tf->path = tf->tmp = NULL;
    return ARBOR_ENOMEM;
  }
  int rc = trace_export_init(tf->x, arbor_root(tf->rt), format, NULL);
  if (rc < 0) {
    free(tf->x);
    tf->x = NULL;
    free(tf->path);
    free(tf->tmp);
    tf->path = tf->tmp = NULL;
    return rc;
  }
  tf->fd = open(tf->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (tf->fd < 0)
    return finish(tf, -errno);
  uv_idle_start(&tf->idle, on_idle);
  return 0;
}

int tracefile_write_now(arbor_runtime_t *rt, const char *path, arbor_trace_format_t format,
                        size_t *bytes) {
  char *tmp = tmp_name(path);
  if (tmp == NULL)
    return ARBOR_ENOMEM;
  FILE *f = fopen(tmp, "we");
  if (f == NULL) {
    int rc = -errno;
    free(tmp);
    return rc;
  }
  int rc = arbor_trace_write(rt, format, f);
  long size = ftell(f);
  if (fclose(f) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) < 0)
    rc = -errno;
  if (rc < 0)
    unlink(tmp);
  else if (bytes != NULL)
    *bytes = size > 0 ? (size_t)size : 0;
  free(tmp);
  return rc;
}
