/* supervisor/work.c - arbor_run_in_thread: a blocking function on libuv's thread
 * pool as a fiber checkpoint (anyio's to_thread.run_sync).
 *
 * The request lives in a heap record, never on the fiber's stack, because libuv
 * calls its after-work callback whatever happened to the fiber. That callback finds
 * the fiber through the record (rec->waiter), which the fiber's unhook clears when
 * it stops waiting. Who frees the record:
 *  - the fiber, once the after-work callback has run (rec->done) and it is back;
 *  - the after-work callback, when the fiber has left already: only after a
 *    uv_cancel that succeeded (fn never started), where the fiber returns at once.
 * When fn is already running, uv_cancel fails and the fiber cannot leave: fn may
 * use memory on the fiber's stack (arg). So it waits on in a shielded scope (rule
 * 6: no cancellation or outer deadline reaches it) until fn returns, then reports
 * ARBOR_ECANCELED and drops fn's result.
 */
#include "internal.h"

struct work {
  uv_work_t req;                 /* req.data = this */
  int (*fn)(void *arg);
  void *arg;
  int result;                    /* fn's, written on the pool's thread */
  int status;                    /* the after-work callback's: 0 or UV_ECANCELED */
  arbor_ctx_t *waiter;           /* the fiber parked on it, or NULL */
  uint8_t done;                  /* the after-work callback ran */
  uint8_t orphan;                /* the fiber left: the callback frees the record */
};

/* On a thread of the pool. libuv orders this before the after-work callback. */
static void work_run(uv_work_t *req) {
  struct work *w = req->data;
  w->result = w->fn(w->arg);
}

/* On the loop, after work_run returned, or with UV_ECANCELED when uv_cancel took
 * the request back before it started. */
static void work_after(uv_work_t *req, int status) {
  struct work *w = req->data;
  if (w->orphan) {
    free(w);
    return;
  }
  w->done = 1;
  w->status = status;
  arbor_ctx_t *cx = w->waiter;
  w->waiter = NULL;
  if (cx != NULL)
    arbor__fiber_wake(cx, status < 0 ? status : w->result);
}

/* What the unhook found, on the fiber's stack (the fiber waits while it runs). */
struct work_wait {
  struct work *w;
  int withdrawn;                 /* uv_cancel succeeded: fn never runs */
};

static void work_unhook(arbor_ctx_t *cx, void *arg) {
  (void)cx;
  struct work_wait *ww = arg;
  ww->w->waiter = NULL;
  if (!ww->w->done && uv_cancel((uv_req_t *)&ww->w->req) == 0) {
    ww->withdrawn = 1;
    ww->w->orphan = 1;           /* work_after runs later, with UV_ECANCELED */
  }
}

int arbor_run_in_thread_at(arbor_ctx_t *cx, int (*fn)(void *arg), void *arg, const char *file,
                           int line) {
  int rc = arbor__checkpoint(cx);
  if (rc < 0)
    return rc;
  if (fn == NULL)
    return ARBOR_EINVAL;
  struct work *w = calloc(1, sizeof *w);
  if (w == NULL)
    return ARBOR_ENOMEM;
  w->req.data = w;
  w->fn = fn;
  w->arg = arg;
  if ((rc = uv_queue_work(cx->task->rt->loop, &w->req, work_run, work_after)) < 0) {
    free(w);
    return rc;
  }
  w->waiter = cx;
  struct work_wait ww = {.w = w};
  rc = arbor__fiber_park(cx, "run_in_thread", file, line, work_unhook, &ww);
  if (ww.withdrawn)
    return ARBOR_ECANCELED;      /* w is work_after's now, maybe freed already */
  if (!w->done) {
    /* Cancelled while fn runs: wait for it, out of cancellation's reach. The shield
     * has no deadline and hides every outer one, so only work_after wakes us. */
    arbor_scope_t shield;
    int entered = arbor_scope_enter(cx, &shield, &(arbor_scope_opts_t){.shield = 1});
    ARBOR_ASSERT(entered == 0);
    while (!w->done) {
      w->waiter = cx;
      arbor__fiber_park(cx, "run_in_thread", file, line, NULL, NULL);
    }
    arbor_scope_exit(cx, &shield);
    rc = ARBOR_ECANCELED;
  }
  free(w);
  return rc;
}
