/* tests/exhaust/test_fd_exhaust.c - out of file descriptors (a low
 * RLIMIT_NOFILE): each use of a new fd becomes a clear error, the loop does not
 * spin while it lasts, and everything works again once fds are back (issue 9,
 * "Resource exhaustion"; spawns are in test_spawn_fail.c).
 *
 * Each case runs in a forked child that lowers its own RLIMIT_NOFILE and fills
 * its table with /dev/null, then reports through its exit status (cmocka's
 * asserts cannot cross fork). valgrind keeps the fd limit to itself: skipped
 * there.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define FD_LIMIT 128

/* Runs fn in a child whose RLIMIT_NOFILE is FD_LIMIT; its exit status, 77
 * when the limit could not be lowered (valgrind), 100 + N for signal N. */
static int run_child(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit lim = {FD_LIMIT, FD_LIMIT};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
      _exit(77);
    fn();
    _exit(0);
  }
  int status;
  assert_int_eq(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* Skips the test when the limit could not be lowered. cmocka's skip() leaves
 * the test at once: what the caller has to clean up must be done before. */
static void skip_if_no_limit(int rc) {
  if (rc == 77) {
    print_message("skipped: RLIMIT_NOFILE cannot be lowered here (valgrind)\n");
    skip();
  }
}

static int in_child(void (*fn)(void)) {
  int rc = run_child(fn);
  skip_if_no_limit(rc);
  return rc;
}

/* Fills the fd table; returns how many it opened (closed again by unfill). */
static int fillers[FD_LIMIT], nfillers;

static void fill(void) {
  nfillers = 0;
  while (nfillers < FD_LIMIT && (fillers[nfillers] = open("/dev/null", O_RDONLY)) >= 0)
    nfillers++;
  if (errno != EMFILE)
    _exit(90);
}

static void unfill(void) {
  while (nfillers > 0)
    close(fillers[--nfillers]);
}

static void on_tick(uv_timer_t *t) { *(int *)t->data = 1; }

/* Loop passes until a timer of ms fires: a loop that waits takes a handful, one
 * that spins on a ready fd thousands. */
static long passes_in(uv_loop_t *loop, uint64_t ms) {
  uv_timer_t t;
  int fired = 0;
  long passes = 0;
  uv_timer_init(loop, &t);
  t.data = &fired;
  uv_timer_start(&t, on_tick, ms, 0);
  while (!fired && passes < 1000000) {
    uv_run(loop, UV_RUN_ONCE);
    passes++;
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return passes;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    _exit(91);
  return fd;
}

/* Sends a GET on fd and drives the loop until the status line arrived; returns
 * the status (0: the connection closed without one). */
static int get_status(uv_loop_t *loop, int fd, const char *path) {
  char req[256], buf[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                   path);
  if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
    return -1;
  size_t got = 0;
  for (int k = 0; k < 20000; k++) {
    ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, MSG_DONTWAIT);
    if (r > 0) {
      got += (size_t)r;
      buf[got] = '\0';
      if (strstr(buf, "\r\n") != NULL)
        break;
    } else if (r == 0) {
      break;
    }
    passes_in(loop, 1);
  }
  buf[got] = '\0';
  int status = 0;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
    status = 0;
  return status;
}

static void close_runtime(uv_loop_t *loop, arbor_runtime_t *rt) {
  int closed = 0;
  if (arbor_runtime_close(rt, arbor_test_close_cb_, &closed) != 0)
    _exit(95);
  uv_run(loop, UV_RUN_DEFAULT);
  if (closed != 1 || uv_loop_close(loop) != 0)
    _exit(96);
}

/* Reads what the server sent on fd (without sending anything: a request the
 * server never read would make its close a reset), driving the loop; returns
 * the status of the first line, 0 when none came. */
static int read_status(uv_loop_t *loop, int fd) {
  char buf[512];
  size_t got = 0;
  for (int k = 0; k < 20000 && got < sizeof buf - 1; k++) {
    ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, MSG_DONTWAIT);
    if (r == 0)
      break;
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    passes_in(loop, 1);
  }
  buf[got] = '\0';
  int status = 0;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
    status = 0;
  return status;
}

/* The admin server with no fd left for accept(): the pending connection is
 * told 503 at once (libmicrohttpd alone would leave it in the backlog and spin
 * the loop on it), the loop then waits, and once fds are back a new connection
 * is served. */
static void admin_child(void) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  if (uv_loop_init(&loop) != 0 ||
      arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1}) != 0 ||
      arbor_admin_start(rt, &(arbor_admin_opts_t){.port = 0}, &admin) != 0)
    _exit(20);
  int port = arbor_admin_port(admin);
  int early = connect_to(port);  /* one served before, then closed: MHD holds none */
  if (get_status(&loop, early, "/healthz") != 200)
    _exit(21);
  close(early);
  passes_in(&loop, 10);
  int c = connect_to(port);      /* completed by the kernel from the backlog */
  fill();
  int status = read_status(&loop, c);
  if (status != 503) {
    fprintf(stderr, "admin: status %d with no fd left\n", status);
    _exit(22);
  }
  close(c);
  long passes = passes_in(&loop, 200);
  if (getenv("FD_EXHAUST_VERBOSE") != NULL)
    fprintf(stderr, "admin: %ld loop passes in 200 ms with no fd left\n", passes);
  if (passes > 100)
    _exit(23);                   /* spinning */
  unfill();
  c = connect_to(port);
  status = get_status(&loop, c, "/api/v1/tree");
  if (status != 200) {
    fprintf(stderr, "admin: status %d after fds came back\n", status);
    _exit(24);
  }
  close(c);
  close_runtime(&loop, rt);
}

/* The same with a connection open (kept alive): libmicrohttpd then stops
 * watching its listen socket by itself until a connection closes and it runs
 * again. The pending connection is told 503 at once, and once fds are back a new
 * one is served while the first is still open (emfile.c hands it to MHD). */
static void admin_busy_child(void) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_admin_t *admin;
  if (uv_loop_init(&loop) != 0 ||
      arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1}) != 0 ||
      arbor_admin_start(rt, &(arbor_admin_opts_t){.port = 0}, &admin) != 0)
    _exit(60);
  int port = arbor_admin_port(admin);
  int held = connect_to(port);
  const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";   /* keep-alive */
  if (send(held, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1))
    _exit(61);
  /* Its response's head, then the connection stays open. */
  char head[1024];
  size_t got = 0;
  for (int k = 0; k < 20000 && got < sizeof head - 1; k++) {
    ssize_t r = recv(held, head + got, sizeof head - 1 - got, MSG_DONTWAIT);
    if (r > 0) {
      got += (size_t)r;
      head[got] = '\0';
      if (strstr(head, "\r\n\r\n") != NULL)
        break;
    } else if (r == 0) {
      break;
    } else {
      passes_in(&loop, 1);
    }
  }
  head[got] = '\0';
  if (strncmp(head, "HTTP/1.1 200", 12) != 0)
    _exit(62);
  int c = connect_to(port);
  fill();
  int status = read_status(&loop, c);
  if (status != 503) {
    fprintf(stderr, "admin: status %d with no fd left and a connection open\n", status);
    _exit(63);
  }
  close(c);
  long passes = passes_in(&loop, 200);
  if (passes > 100)
    _exit(64);
  /* fds are back while the kept-alive connection stays open (as an event stream
   * would, for hours): a new client is served all the same. */
  unfill();
  c = connect_to(port);
  if (get_status(&loop, c, "/healthz") != 200)
    _exit(65);
  close(c);
  close(held);
  close_runtime(&loop, rt);
}

static void fd_exhaust_admin_sheds_503_with_a_connection_open(void **state) {
  assert_int_eq(in_child(admin_busy_child), 0);
}

static void fd_exhaust_admin_sheds_503_without_spinning_then_serves(void **state) {
  assert_int_eq(in_child(admin_child), 0);
}

/* Drives the loop with a 1 ms tick until cond holds, at most 20000 passes; exits
 * with code when it never does. */
#define child_wait(loop, cond, code)                                                   \
  do {                                                                                 \
    int k_;                                                                            \
    for (k_ = 0; k_ < 20000 && !(cond); k_++)                                          \
      passes_in((loop), 1);                                                            \
    if (!(cond))                                                                       \
      _exit(code);                                                                     \
  } while (0)

static int log_error(arbor_node_t *svc) {
  arbor_log_file_info_t li;
  return arbor_service_log_file_info(svc, &li) == 0 ? li.error : 1;
}

static uint64_t log_written(arbor_node_t *svc) {
  arbor_log_file_info_t li;
  return arbor_service_log_file_info(svc, &li) == 0 ? li.bytes_written : 0;
}

static uint64_t log_dropped(arbor_node_t *svc) {
  arbor_log_file_info_t li;
  return arbor_service_log_file_info(svc, &li) == 0 ? li.bytes_dropped : 0;
}

/* A log file that cannot be opened (no fd left once the program runs): its
 * output is dropped and counted, the error is in arbor_service_log_file_info,
 * the program runs on; its next run writes to the file again. */
static char log_dir[64];

static void logfile_child(void) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *svc;
  char log[128], gate[128], gate_tmp[128], script[512];
  snprintf(log, sizeof log, "%s/out.log", log_dir);
  snprintf(gate, sizeof gate, "%s/gate", log_dir);
  snprintf(gate_tmp, sizeof gate_tmp, "%s/gate.tmp", log_dir);
  /* Writes a line once the gate exists (each run), then waits: for the test's
   * child to go, at most a minute. */
  snprintf(script, sizeof script,
           "i=0; while [ ! -e %s ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; "
           "echo line; i=0; while [ $i -lt 300 ] && kill -0 $PPID; do sleep 0.2; i=$((i+1)); done",
           gate);
  char *argv[] = {"/bin/sh", "-c", script, NULL};
  if (uv_loop_init(&loop) != 0 ||
      arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1}) != 0 ||
      arbor_service_add(arbor_root(rt), &(arbor_service_spec_t){.name = "prog", .argv = argv,
                                                                 .log_file = log},
                        &svc) != 0)
    _exit(30);
  FILE *g = fopen(gate_tmp, "w");
  if (g == NULL)
    _exit(31);
  fclose(g);
  child_wait(&loop, arbor_service_is_running(svc), 32);
  fill();
  if (rename(gate_tmp, gate) != 0)   /* needs no fd */
    _exit(33);
  child_wait(&loop, log_error(svc) == -EMFILE, 34);
  if (log_dropped(svc) == 0 || !arbor_service_is_running(svc))
    _exit(35);
  unfill();
  /* The next run opens the file again. */
  if (arbor_service_restart(svc) != 0)
    _exit(36);
  child_wait(&loop, log_written(svc) > 0, 37);
  if (log_error(svc) != 0)
    _exit(38);
  if (arbor_node_cancel(svc) != 0)
    _exit(39);
  child_wait(&loop, arbor_node_is_finished(svc), 40);
  close_runtime(&loop, rt);
}

static void fd_exhaust_log_file_open_dropped_counted_then_writes(void **state) {
  arbor_test_tmp_t tmp;
  arbor_test_tmp_open(&tmp, "fdlog");
  snprintf(log_dir, sizeof log_dir, "%s", tmp.dir);
  int rc = run_child(logfile_child);
  arbor_test_tmp_close(&tmp);    /* before a skip, which would leave it behind */
  skip_if_no_limit(rc);
  assert_int_eq(rc, 0);
}

/* A TCP liveness probe that cannot make its socket: each attempt fails with
 * EMFILE, the verdict fails the run (EPROBE caused by it), the service is
 * restarted; once fds are back the probe passes again. */
static int body_up(arbor_ctx_t *cx, void *arg) {
  (void)arg;
  return arbor_sleep(cx, 3600 * 1000);
}

static int probe_saw_emfile(arbor_node_t *svc) {
  arbor_probe_info_t pi;
  return arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS, &pi) == 0 && pi.last_error != NULL &&
         arbor_error_code(pi.last_error) == -EMFILE;
}

static int probe_passing_since(arbor_node_t *svc, uint64_t successes) {
  arbor_probe_info_t pi;
  return arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS, &pi) == 0 &&
         pi.successes > successes && pi.last_ok;
}

static uint64_t probe_successes(arbor_node_t *svc) {
  arbor_probe_info_t pi;
  return arbor_service_probe_info(svc, ARBOR_PROBE_LIVENESS, &pi) == 0 ? pi.successes : 0;
}

static void probe_child(void) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_node_t *sup, *svc;
  /* Something to connect to: a listening socket of our own. */
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 128) != 0 ||
      getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
    _exit(50);
  arbor_health_probe_t live = {.kind = ARBOR_PROBE_TCP, .port = ntohs(a.sin_port),
                               .interval_ms = 10, .timeout_ms = 1000, .failure_threshold = 2};
  if (uv_loop_init(&loop) != 0 ||
      arbor_runtime_new(&rt, &loop, &(arbor_runtime_opts_t){.no_signals = 1}) != 0 ||
      arbor_supervisor_new(arbor_root(rt),
                           &(arbor_sup_opts_t){.name = "sup", .intensity = 1000, .backoff_ms = 1,
                                               .backoff_max_ms = 10, .no_jitter = 1},
                           &sup) != 0 ||
      arbor_service_add(sup, &(arbor_service_spec_t){.name = "up", .fiber = body_up,
                                                       .liveness = &live},
                        &svc) != 0)
    _exit(51);
  child_wait(&loop, probe_successes(svc) > 0, 52);
  fill();
  child_wait(&loop, probe_saw_emfile(svc), 53);
  arbor_service_failure_t f;
  child_wait(&loop, arbor_service_failure(svc, 0, &f) == 0, 54);
  if (arbor_error_code(f.error) != ARBOR_EPROBE)
    _exit(55);
  if (arbor_node_is_finished(sup))
    _exit(56);
  unfill();
  /* Accepted connections pile up in ls's backlog: nobody accepts, which is
   * enough for a TCP probe. */
  uint64_t before = probe_successes(svc);
  child_wait(&loop, probe_passing_since(svc, before) && arbor_service_is_running(svc), 57);
  if (arbor_node_cancel(sup) != 0)
    _exit(58);
  child_wait(&loop, arbor_node_is_finished(sup), 59);
  close(ls);
  close_runtime(&loop, rt);
}

static void fd_exhaust_probe_emfile_fails_run_then_passes(void **state) {
  assert_int_eq(in_child(probe_child), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(fd_exhaust_log_file_open_dropped_counted_then_writes),
    cmocka_unit_test(fd_exhaust_probe_emfile_fails_run_then_passes),
    cmocka_unit_test(fd_exhaust_admin_sheds_503_without_spinning_then_serves),
    cmocka_unit_test(fd_exhaust_admin_sheds_503_with_a_connection_open),
};

ARBOR_TEST_MAIN(tests)
