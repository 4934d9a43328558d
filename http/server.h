/* http/server.h - what server.c and stream.c share of the admin server. Not for
 * the resources (they use http/http.h only).
 */
#ifndef ARBOR_HTTP_SERVER_H
#define ARBOR_HTTP_SERVER_H

#include "http.h"

struct http_stream_s;            /* emfile.c: out of fds, a pending connection is shed with a 503 instead of
 * letting MHD spin the loop on it. */
void http__emfile_init(struct arbor_admin_s *admin, int listen_fd);
void http__emfile_free(struct arbor_admin_s *admin);
/* After each MHD_run. */
void http__emfile_check(struct arbor_admin_s *admin);

/* stream.c */

struct arbor_admin_s {
  arbor_runtime_t *rt;
  uv_loop_t *loop;
  arbor_admin_opts_t opts;       /* defaults filled in; strings below */
  char *bind;                    /* opts.bind points here */
  char *cors_origin;             /* opts.cors_origin points here (or NULL) */
  char *token;                   /* NULL: no token: POSTs are open */
  arbor_admin_services_t services;   /* opts.services points here (or is NULL) */
  size_t token_len;
  size_t tree_bytes_last;        /* the last /tree answer's size (tree.c's presize) */
  int port;
  struct MHD_Daemon *mhd;
  uv_poll_t poll;                /* MHD's epoll fd, readable when MHD has work */
  uv_timer_t timer;              /* MHD_get_timeout: connection timeouts, pending data */
  uv_idle_t wake;                /* resumes the streams next iteration (http_streams_wake) */
  uv_timer_t beat;               /* the earliest heartbeat of a suspended stream */
  uv_timer_t sweep;              /* request heads that never arrive (server.c, on_sweep) */
  int handles;                   /* of the five above, not yet closed */
  struct http_conn *conns;       /* every open connection's state (server.c) */
  struct arbor__closer closer;   /* the runtime's close stops us */
  struct http_stream_s *streams; /* open streams, suspended or not */
  unsigned stream_count;         /* how many: their turns share one budget (stream.c) */
  unsigned connections;          /* open TCP connections (MHD's notify) */
  int relisten;                  /* MHD left its limit: run it once more (server.c) */
  int in_run;                    /* inside MHD_run: stop must wait until it returns */
  int stop_pending;              /* stop asked for inside MHD_run */
  int stopped;                   /* stop began: no more requests, no more wakes */
  struct arbor__events_sub events;   /* wakes the streams at the next event */
  /* Responses queued, by status (HTTP_STATUS_FIRST..HTTP_STATUS_LAST), for
   * GET /metrics: counted in http__queue, which every response goes through. */
  uint64_t responses[HTTP_STATUS_LAST - HTTP_STATUS_FIRST + 1];
  int listen_fd;                 /* MHD's (it closes it); -1 before start */
  int spare_fd;                  /* emfile.c: freed to accept and shed a connection */
  int fd_recovering;             /* emfile.c: shed since the backlog was last empty */
};

/* server.c */
/* Runs MHD now and re-arms its timer (a no-op from inside MHD_run). */
void http__run(struct arbor_admin_s *admin);
/* Adds the common headers (and content_type when not NULL), queues the response
 * and drops the caller's reference to it (also on failure). */
enum MHD_Result http__queue(struct http_req *r, unsigned status, struct MHD_Response *resp,
                            const char *content_type);
/* Whether got[0..got_len) is want[0..want_len), in time that depends on
 * want_len only (the token check; exposed for its unit test). */
int http__token_equal(const char *want, size_t want_len, const char *got, size_t got_len);
/* Tests only: how long a request's head may take (0: the default, 60 s). */
void http__test_head_timeout(unsigned ms);
/* Tests only: routes tried after the table's (process-wide; NULL, 0 clears). */
void http__test_routes(const struct http_route *routes, size_t n);

/* stream.c */
/* Resumes every suspended stream (before a stop: MHD must have none). When
 * closing, their fill() is not asked again: the response ends. */
void http__streams_resume_all(struct arbor_admin_s *admin, int closing);
/* The heartbeat timer fired. */
void http__streams_beat(uv_timer_t *t);
/* The wake handle ran. */
void http__streams_wake_cb(uv_idle_t *h);
/* The events subscription's callback: wakes the streams. */
void http__streams_on_event(void *arg);

#endif /* ARBOR_HTTP_SERVER_H */
