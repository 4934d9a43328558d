/* tests/cmd/arbor_proc.c - run the built `arbor` program from a test
 * (arbor_proc.h). */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "arbor_proc.h"

static void die(const char *what) {
  print_error("arbor_proc: %s: %s\n", what, strerror(errno));
  fail();
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

void arbor_proc_init(struct arbor_proc *p) {
  memset(p, 0, sizeof *p);
  p->out_fd = -1;
  snprintf(p->dir, sizeof p->dir, "/tmp/arbor-test-XXXXXX");
  if (mkdtemp(p->dir) == NULL)
    die("mkdtemp");
}

const char *arbor_proc_path(struct arbor_proc *p, const char *name) {
  static char bufs[4][PATH_MAX];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, PATH_MAX, "%s/%s", p->dir, name);
  return b;
}

void arbor_proc_write(struct arbor_proc *p, const char *name, const char *text) {
  const char *path = arbor_proc_path(p, name);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL)
    die(tmp);
  fputs(text, f);
  if (fclose(f) != 0 || rename(tmp, path) != 0)   /* the daemon never sees half a file */
    die(path);
}

char *arbor_proc_read(struct arbor_proc *p, const char *name) {
  FILE *f = fopen(arbor_proc_path(p, name), "r");
  if (f == NULL)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (len + 1 == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (bigger == NULL)
        free(buf);
      buf = bigger;
    }
  }
  fclose(f);
  if (buf == NULL)
    die("read");
  buf[len] = '\0';
  return buf;
}

int arbor_proc_lines(struct arbor_proc *p, const char *name) {
  char *text = arbor_proc_read(p, name);
  int n = 0;
  for (char *c = text; c != NULL && *c != '\0'; c++)
    n += *c == '\n';
  free(text);
  return n;
}

void arbor_proc_wait_text(struct arbor_proc *p, const char *name, const char *needle) {
  for (;;) {
    char *text = arbor_proc_read(p, name);
    int found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    if (found)
      return;
    pause_ms(20);
  }
}

void arbor_proc_wait_lines(struct arbor_proc *p, const char *name, int n) {
  while (arbor_proc_lines(p, name) < n)
    pause_ms(20);
}

const char *arbor_proc_service_argv(struct arbor_proc *p, const char *name, const char *extra) {
  static char buf[4][2048];
  static int next;
  char *b = buf[next++ % 4];
  const char *d = p->dir;
  snprintf(b, sizeof buf[0],
           "[\"sh\", \"-c\", \"echo $$ >> %s/%s.pids; "
           "trap 'echo %s >> %s/order; exit 0' TERM; "
           "while [ ! -e %s/stop ]; do sleep 0.05; done %s\"]",
           d, name, name, d, d, extra != NULL ? extra : "");
  return b;
}

/* build/<variant>/tests/cmd/test_x -> build/<variant>/arbor */
static const char *arbor_bin(void) {
  static char bin[PATH_MAX];
  const char *env = getenv("ARBOR_BIN");
  if (env != NULL && env[0] != '\0')
    return env;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    die("readlink /proc/self/exe");
  exe[n] = '\0';
  char *dir = dirname(exe);      /* .../tests/cmd */
  snprintf(bin, sizeof bin, "%s/../../arbor", dir);
  return bin;
}

extern char **environ;

/* The test's environment without NOTIFY_SOCKET (a test run under systemd must
 * not let arbor talk to it), plus env. The array is malloc'd, its strings borrowed. */
static char **child_env(char *const *env) {
  size_t n = 0, k = 0;
  for (char **e = environ; *e != NULL; e++)
    n++;
  for (char *const *e = env; e != NULL && *e != NULL; e++)
    n++;
  char **out = calloc(n + 1, sizeof *out);
  if (out == NULL)
    die("malloc");
  for (char **e = environ; *e != NULL; e++)
    if (strncmp(*e, "NOTIFY_SOCKET=", 14) != 0)
      out[k++] = *e;
  for (char *const *e = env; e != NULL && *e != NULL; e++)
    out[k++] = *e;
  return out;
}

static pid_t spawn(struct arbor_proc *p, char *const *argv, char *const *env, int out_fd,
                   int err_fd) {
  const char *bin = arbor_bin();
  char **envp = child_env(env);
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid > 0) {
    free(envp);
    return pid;
  }
  /* The child: only async-signal-safe calls until exec. */
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0 ||
      chdir(p->dir) < 0)
    _exit(126);
  execve(bin, argv, envp);
  _exit(127);
}

void arbor_proc_start(struct arbor_proc *p, char *const *argv, char *const *env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0)
    die("pipe");
  int err_fd = open(arbor_proc_path(p, "stderr"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err_fd < 0)
    die("open stderr");
  p->pid = spawn(p, argv, env, fds[1], err_fd);
  close(fds[1]);
  close(err_fd);
  p->out_fd = fds[0];
}

int arbor_proc_read_url(struct arbor_proc *p) {
  char line[512];
  size_t len = 0;
  for (;;) {
    char c;
    ssize_t n = read(p->out_fd, &c, 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    if (c != '\n') {
      if (len + 1 < sizeof line)
        line[len++] = c;
      continue;
    }
    line[len] = '\0';
    len = 0;
    int port;
    if (sscanf(line, "arbor: dashboard at http://127.0.0.1:%d/", &port) == 1) {
      p->port = port;
      snprintf(p->base, sizeof p->base, "http://127.0.0.1:%d", port);
      return 0;
    }
  }
}

void arbor_proc_kill(struct arbor_proc *p, int sig) {
  if (p->pid > 0)
    kill(p->pid, sig);
}

static int exit_code(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int arbor_proc_wait(struct arbor_proc *p) {
  if (p->pid <= 0)
    return exit_code(p->status);
  while (waitpid(p->pid, &p->status, 0) < 0)
    if (errno != EINTR)
      die("waitpid");
  p->pid = 0;
  return exit_code(p->status);
}

/* Everything from fd until EOF. */
static char *slurp(int fd) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (buf == NULL)
      die("malloc");
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len + 1 == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (bigger == NULL)
        free(buf);
      buf = bigger;
    }
  }
  buf[len] = '\0';
  return buf;
}

int arbor_proc_run(struct arbor_proc *p, char *const *argv, char **out, char **err) {
  const char *err_path = arbor_proc_path(p, "run.stderr");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0)
    die("pipe");
  int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (err_fd < 0)
    die("open");
  /* A daemon the fixture runs stays its daemon (arbor ctl against it). */
  pid_t daemon = p->pid;
  int daemon_status = p->status;
  p->pid = spawn(p, argv, NULL, fds[1], err_fd);
  close(fds[1]);
  close(err_fd);
  char *o = slurp(fds[0]);
  close(fds[0]);
  int rc = arbor_proc_wait(p);
  p->pid = daemon;
  p->status = daemon_status;
  if (out != NULL)
    *out = o;
  else
    free(o);
  if (err != NULL)
    *err = arbor_proc_read(p, "run.stderr");
  return rc;
}

/* ------------------------------------------------------------------ HTTP */

struct buf {
  char *data;
  size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg) {
  struct buf *b = arg;
  size_t n = size * nmemb;
  char *bigger = realloc(b->data, b->len + n + 1);
  if (bigger == NULL)
    return 0;
  b->data = bigger;
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

long arbor_proc_http(struct arbor_proc *p, const char *method, const char *path, char **body) {
  return arbor_proc_http_token(p, method, path, NULL, body);
}

long arbor_proc_http_token(struct arbor_proc *p, const char *method, const char *path,
                           const char *token, char **body) {
  return arbor_proc_http_send(p, method, path, token, NULL, body);
}

long arbor_proc_http_send(struct arbor_proc *p, const char *method, const char *path,
                          const char *token, const char *req_body, char **body) {
  struct buf b = {calloc(1, 1), 0};
  struct curl_slist *headers = NULL;
  char auth[256];
  char url[512];
  snprintf(url, sizeof url, "%s%s", p->base, path);
  CURL *c = curl_easy_init();
  long status = 0;
  if (c != NULL && b.data != NULL) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (token != NULL) {
      snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
      headers = curl_slist_append(headers, auth);
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    }
    if (strcmp(method, "POST") == 0 || req_body != NULL) {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req_body != NULL ? req_body : "");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (curl_easy_perform(c) == CURLE_OK)
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  }
  if (c != NULL)
    curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  *body = b.data;
  return status;
}

/* --------------------------------------------------------------- cleanup */

void arbor_proc_cleanup(struct arbor_proc *p) {
  if (p->dir[0] == '\0')
    return;
  arbor_proc_write(p, "stop", "");   /* orphaned test services end by themselves */
  if (p->pid > 0) {
    kill(p->pid, SIGKILL);
    arbor_proc_wait(p);
  }
  if (p->out_fd >= 0)
    close(p->out_fd);
  p->out_fd = -1;
  pause_ms(100);                 /* two rounds of the services' loops: they see stop */
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
  if (system(cmd) != 0)
    print_error("arbor_proc: could not remove %s\n", p->dir);
  p->dir[0] = '\0';
}
