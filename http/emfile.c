/* http/emfile.c - the admin server out of file descriptors.
 *
 * When accept() fails with EMFILE (or ENFILE), the connection stays in the
 * listen backlog and the listen socket stays readable. libmicrohttpd 0.9.75
 * then stops watching it while it holds other connections (and watches it again
 * when one closes), but with none it keeps it in its epoll set "busy waiting
 * for resources": MHD's epoll fd, and so our uv_poll_t, is ready at every pass
 * and the loop spins at 100 % of a core for as long as the shortage lasts
 * (measured: 64,000 passes in 200 ms, tests/exhaust/test_fd_exhaust.c).
 *
 * So after every MHD_run, http__emfile_check looks whether a connection is still
 * pending (poll on the listen socket, no wait) and whether that is for lack of
 * fds (a dup of the listen socket fails with EMFILE/ENFILE). Only then does it
 * shed it, libuv's and nginx's way: it closes a spare fd kept for the purpose,
 * accepts the connection with it, writes a fixed 503 (best effort, never
 * blocking), closes it and takes the spare again. The backlog drains, the loop
 * waits again, the client gets a clear answer instead of a hang, and the 503 is
 * counted with the others in /metrics. With fds to spare, a pending connection
 * is MHD's: it arrived after MHD_run looked, and the next run takes it.
 *
 * Afterwards. With other connections open, MHD stopped watching its listen
 * socket when its accept() failed, and takes it back only once one of them
 * closes and it runs again: with event streams open that may be never, and new
 * clients would wait in the backlog for good. So from the first shed until the
 * backlog is empty again (admin->fd_recovering), a connection still pending
 * after MHD_run, now that fds are back, is accepted here and handed to MHD
 * (MHD_add_connection, which counts it against max_connections as any other;
 * over that limit MHD closes it).
 *
 * Cost when nothing is short: one poll() per MHD_run; one dup() and close()
 * more when a connection was pending.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

/* At most this many connections shed per MHD_run: a flood is drained over a
 * few loop passes, not in one long one. */
#define SHED_MAX 64

void http__emfile_init(struct arbor_admin_s *admin, int listen_fd) {
  admin->listen_fd = listen_fd;
  admin->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);   /* -1: tried again later */
}

void http__emfile_free(struct arbor_admin_s *admin) {
  if (admin->spare_fd >= 0)
    close(admin->spare_fd);
  admin->spare_fd = -1;
}

/* Whether a connection waits in the backlog. */
static int pending(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Whether the process (or the system) has no fd left. */
static int out_of_fds(int fd) {
  int probe = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (probe >= 0) {
    close(probe);
    return 0;
  }
  return errno == EMFILE || errno == ENFILE;
}

/* fds are back but MHD may not be watching its listen socket yet: the pending
 * connections are accepted here and given to MHD. */
static void hand_over(struct arbor_admin_s *admin) {
  for (int i = 0; i < SHED_MAX && pending(admin->listen_fd); i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int c = accept4(admin->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
      break;
    (void)MHD_add_connection(admin->mhd, c, (struct sockaddr *)&ss, len);   /* closes c on failure */
  }
  admin->relisten = 1;           /* http__run runs MHD again at once: they are read */
}

void http__emfile_check(struct arbor_admin_s *admin) {
#define SHED_BODY                                                                      \
  "{\"error\":{\"code\":\"out_of_fds\",\"message\":\"no file descriptor left for this "    \
  "connection\"}}"
  static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Type: application/json; charset=utf-8\r\n"
                             "Content-Length: 87\r\n"
                             "Retry-After: 1\r\n"
                             "Connection: close\r\n"
                             "\r\n" SHED_BODY;
  _Static_assert(sizeof SHED_BODY - 1 == 87, "the Content-Length above");
  if (admin->listen_fd < 0)
    return;
  if (!pending(admin->listen_fd)) {
    admin->fd_recovering = 0;    /* the backlog is empty: MHD is on its own again */
    return;
  }
  if (!out_of_fds(admin->listen_fd)) {
    if (admin->fd_recovering)
      hand_over(admin);
    return;
  }
  admin->fd_recovering = 1;
  for (int i = 0; i < SHED_MAX && pending(admin->listen_fd); i++) {
    if (admin->spare_fd >= 0)
      close(admin->spare_fd);
    int c = accept4(admin->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      /* A fresh socket's send buffer takes these few bytes whole, or not at all. */
      (void)!send(c, resp, sizeof resp - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      close(c);
      admin->responses[503 - HTTP_STATUS_FIRST]++;
    }
    admin->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (c < 0)
      break;                     /* someone else took the fd we freed: next run */
  }
}
