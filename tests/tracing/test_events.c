/* test_events.c - the event ring (rule 9, overflow, readers that fall behind) and the
 * retention of finished nodes. */
#include "harness.h"

#include "extension.h"

/* Replays every event of the run and checks rule 9 for every non-root node:
 * exactly one CREATED event, first; STATE events chained (from = previous to) along
 * legal edges only, ending at FINISHED; other events carry the state of the moment;
 * seq 1, 2, 3 ... and times never going back. */
typedef struct {
  uint64_t id;
  arbor_state_t cur;
  int created, states, failed, cancels;
  const arbor_error_t *failed_error;
} replay_t;

static replay_t *replay_find(replay_t *r, size_t n, uint64_t id) {
  size_t i;
  for (i = 0; i < n; i++)
    if (r[i].id == id)
      return &r[i];
  return NULL;
}

static void rule9_event_per_transition(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t pa = {0}, pb = {0}, pc = {0}, pd = {0}, g = {0};
  arbor_node_t *grp, *a, *b, *c, *d;
  arbor_node_t *nodes[5];
  arbor_event_t *ev;
  replay_t r[5];
  size_t n, i, created_seen;
  uint64_t root_id;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  root_id = arbor_node_id(arbor_root(rt));

  grp = arbor_test_group(arbor_root(rt), "grp");
  a = arbor_test_spawn(grp, &pa, "a", 0);
  b = arbor_test_spawn(grp, &pb, "b", ARBOR_PROBE_HANDSHAKE);
  c = arbor_test_spawn(grp, &pc, "c", 0);
  d = arbor_test_spawn(arbor_root(rt), &pd, "d", 0);
  assert_code(arbor_node_cancel(d), 0); /* d: cancelled before it ran */
  arbor_test_run_until(&loop, pa.starts && pb.starts && pc.starts);
  assert_code(arbor_task_started(b), 0);
  assert_code(arbor_task_done(a), 0);
  arbor_test_run_until(&loop, pa.finishes > 0);
  assert_code(arbor_group_join(grp, arbor_probe_join_cb, &g), 0);
  assert_code(arbor_task_fail(c, -EIO, "c failed"), 0); /* b gets cancelled */
  arbor_test_run_until(&loop, g.finishes && pd.finishes);

  nodes[0] = grp, nodes[1] = a, nodes[2] = b, nodes[3] = c, nodes[4] = d;
  memset(r, 0, sizeof r);
  for (i = 0; i < 5; i++)
    r[i].id = arbor_node_id(nodes[i]);

  ev = arbor_test_events(rt, &n);
  for (i = 0; i < n; i++) {
    replay_t *x;
    assert_uint_eq(ev[i].seq, i + 1);
    if (i > 0)
      assert_uint_le(ev[i - 1].time_ns, ev[i].time_ns);
    x = replay_find(r, 5, ev[i].node_id);
    if (x == NULL) {
      /* the root, if it records anything at all */
      assert_uint_eq(ev[i].node_id, root_id);
      continue;
    }
    {
      arbor_node_t *node = arbor_node_find(rt, x->id);
      arbor_node_t *parent = arbor_node_parent(node);
      assert_uint_eq(ev[i].parent_id, arbor_node_id(parent));
      assert_int_eq(ev[i].kind, arbor_node_kind(node));
    }
    switch (ev[i].type) {
    case ARBOR_EVENT_CREATED:
      assert_int_eq(x->created, 0);
      assert_int_eq(x->states, 0);
      x->created = 1;
      x->cur = ARBOR_STATE_CREATED;
      assert_state_eq(ev[i].to, ARBOR_STATE_CREATED);
      assert_null(ev[i].error);
      break;
    case ARBOR_EVENT_STATE:
      assert_int_eq(x->created, 1);
      assert_state_eq(ev[i].from, x->cur);
      if (!arbor_test_edge_legal(ev[i].from, ev[i].to))
        fail_msg("illegal edge %s -> %s", arbor_state_name(ev[i].from),
                 arbor_state_name(ev[i].to));
      x->cur = ev[i].to;
      x->states++;
      assert_null(ev[i].error);
      break;
    case ARBOR_EVENT_FAILED:
      assert_int_eq(x->created, 1);
      assert_non_null(ev[i].error);
      x->failed++;
      x->failed_error = ev[i].error;
      assert_state_eq(ev[i].from, x->cur);
      assert_state_eq(ev[i].to, x->cur);
      break;
    case ARBOR_EVENT_CANCEL:
      assert_int_eq(x->created, 1);
      assert_null(ev[i].error);
      x->cancels++;
      assert_state_eq(ev[i].from, x->cur);
      assert_state_eq(ev[i].to, x->cur);
      break;
    default:
      fail_msg("unexpected event type %s", arbor_event_type_name(ev[i].type));
    }
  }

  for (i = 0; i < 5; i++) {
    assert_int_eq(r[i].created, 1);
    assert_state_eq(r[i].cur, ARBOR_STATE_FINISHED);
    assert_state_eq(arbor_node_state(nodes[i]), ARBOR_STATE_FINISHED);
  }
  /* exact transition counts: grp C>STARTED>STOPPED>FINISHED, a C>STARTED>STOPPED>
   * FINISHED, b C>STARTING>STARTED>STOPPING>STOPPED>FINISHED, c like a, d C>FINISHED */
  assert_int_eq(r[0].states, 3);
  assert_int_eq(r[1].states, 3);
  assert_int_eq(r[2].states, 5);
  assert_int_eq(r[3].states, 3);
  assert_int_eq(r[4].states, 1);
  /* failures: c with its error, the group with its error group */
  assert_int_eq(r[3].failed, 1);
  assert_code(arbor_error_code(r[3].failed_error), -EIO);
  assert_int_eq(r[0].failed, 1);
  assert_code(arbor_error_code(r[0].failed_error), ARBOR_EGROUP);
  assert_int_eq(r[1].failed + r[2].failed + r[4].failed, 0);
  /* cancel requests: b (by its sibling's failure) and d (by the test) */
  assert_int_eq(r[2].cancels, 1);
  assert_int_eq(r[4].cancels, 1);
  assert_int_eq(r[1].cancels, 0);
  assert_int_eq(r[3].cancels, 0);
  /* the ring's CREATED count matches the nodes */
  created_seen = 0;
  for (i = 0; i < n; i++)
    if (ev[i].type == ARBOR_EVENT_CREATED && ev[i].node_id != root_id)
      created_seen++;
  assert_uint_eq(created_seen, 5);
  free(ev);
  arbor_test_close(rt, &loop);
}

/* Each state change records its event at once: the STATE event is the newest one
 * right after the call that changed the state. */
static void rule9_event_recorded_at_transition(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t p = {0};
  arbor_node_t *t;
  arbor_event_t *ev;
  size_t n;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", ARBOR_PROBE_HANDSHAKE);
  ev = arbor_test_events(rt, &n);
  assert_true(n >= 1);
  assert_int_eq(ev[n - 1].type, ARBOR_EVENT_CREATED);
  assert_uint_eq(ev[n - 1].node_id, arbor_node_id(t));
  assert_int_eq(ev[n - 1].kind, ARBOR_KIND_TASK);
  free(ev);

  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_task_started(t), 0);
  ev = arbor_test_events(rt, &n);
  assert_int_eq(ev[n - 1].type, ARBOR_EVENT_STATE);
  assert_uint_eq(ev[n - 1].node_id, arbor_node_id(t));
  assert_state_eq(ev[n - 1].from, ARBOR_STATE_STARTING);
  assert_state_eq(ev[n - 1].to, ARBOR_STATE_STARTED);
  free(ev);

  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  assert_path(rt, t, CREATED, STARTING, STARTED, STOPPED, FINISHED);
  arbor_test_close(rt, &loop);
}

/* Generates events: `count` tasks spawned and cancelled before they run (3 events
 * each: CREATED, CANCEL, STATE CREATED->FINISHED), loop run until all finished. */
static arbor_probe_t churn_probe;

static void churn(uv_loop_t *loop, arbor_runtime_t *rt, int count) {
  int i;
  for (i = 0; i < count; i++) {
    arbor_task_spec_t spec;
    arbor_node_t *t = NULL;
    memset(&spec, 0, sizeof spec);
    spec.name = "churn";
    spec.start = arbor_probe_start;
    spec.arg = &churn_probe;
    assert_code(arbor_task_spawn(arbor_root(rt), &spec, &t), 0);
    assert_code(arbor_node_cancel(t), 0);
  }
  arbor_test_spin(loop, 5);
  assert_int_eq(churn_probe.starts, 0); /* cancelled before they ran */
}

static void assert_stats_consistent(const arbor_events_stats_t *s) {
  uint64_t kept = s->recorded < s->capacity ? s->recorded : s->capacity;
  assert_uint_eq(s->dropped, s->recorded - kept);
  assert_uint_eq(s->first_seq, s->dropped + 1);
}

/* Overflow drops the oldest and counts them; the ring never holds more than its
 * capacity; a reader from seq 1 learns how many it lost. */
static void events_ring_overflow_counts_drops(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_events_stats_t s;
  arbor_event_t ev[64];
  uint64_t cursor = 1, missed = 0;
  int n, i;
  (void)state;
  opts.event_capacity = 16;
  arbor_test_open(&loop, &rt, &opts);

  arbor_events_stats(rt, &s);
  assert_uint_eq(s.capacity, 16);
  assert_uint_eq(s.dropped, 0);
  assert_stats_consistent(&s);

  churn(&loop, rt, 20); /* at least 60 events */
  arbor_events_stats(rt, &s);
  assert_true(s.recorded >= 60);
  assert_uint_eq(s.capacity, 16);
  assert_uint_eq(s.dropped, s.recorded - 16);
  assert_uint_eq(s.first_seq, s.recorded - 16 + 1);
  assert_stats_consistent(&s);

  n = arbor_events_read(rt, &cursor, ev, 64, &missed);
  assert_int_eq(n, 16);
  assert_uint_eq(missed, s.first_seq - 1);
  assert_uint_eq(ev[0].seq, s.first_seq);
  for (i = 1; i < n; i++)
    assert_uint_eq(ev[i].seq, ev[i - 1].seq + 1);
  assert_uint_eq(ev[n - 1].seq, s.recorded);
  assert_uint_eq(cursor, s.recorded + 1);
  /* nothing new: 0 events, nothing missed */
  missed = 99;
  assert_int_eq(arbor_events_read(rt, &cursor, ev, 64, &missed), 0);
  assert_uint_eq(missed, 0);
  assert_uint_eq(cursor, s.recorded + 1);
  arbor_test_close(rt, &loop);
}

/* A reader that kept up reads everything; when it falls behind it gets *missed and
 * resumes at the oldest event kept, without a gap after that. */
static void events_reader_learns_it_fell_behind(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_events_stats_t s;
  arbor_event_t ev[64];
  uint64_t cursor = 1, missed = 0, last_seq;
  int n, i;
  (void)state;
  opts.event_capacity = 16;
  arbor_test_open(&loop, &rt, &opts);

  churn(&loop, rt, 2); /* 6+ events: fits */
  n = arbor_events_read(rt, &cursor, ev, 64, &missed);
  assert_true(n >= 6);
  assert_uint_eq(missed, 0);
  assert_uint_eq(ev[0].seq, 1);
  last_seq = ev[n - 1].seq;
  assert_uint_eq(cursor, last_seq + 1);

  churn(&loop, rt, 10); /* 30+ more: the ring wraps past the reader */
  arbor_events_stats(rt, &s);
  assert_true(s.first_seq > cursor);
  n = arbor_events_read(rt, &cursor, ev, 4, &missed); /* a small page */
  assert_int_eq(n, 4);
  assert_uint_eq(missed, s.first_seq - (last_seq + 1));
  assert_uint_eq(ev[0].seq, s.first_seq);
  for (i = 1; i < n; i++)
    assert_uint_eq(ev[i].seq, ev[i - 1].seq + 1);
  assert_uint_eq(cursor, s.first_seq + 4);
  /* the next page continues where it stopped, nothing missed */
  last_seq = ev[n - 1].seq;
  missed = 99;
  n = arbor_events_read(rt, &cursor, ev, 64, &missed);
  assert_int_eq(n, 12);
  assert_uint_eq(missed, 0);
  assert_uint_eq(ev[0].seq, last_seq + 1);
  assert_uint_eq(ev[n - 1].seq, s.recorded);
  arbor_test_close(rt, &loop);
}

/* The capacity is rounded up to a power of two; 0 means the default 16384. */
static void events_capacity_rounded_to_power_of_two(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_events_stats_t s;
  (void)state;

  opts.event_capacity = 10;
  arbor_test_open(&loop, &rt, &opts);
  arbor_events_stats(rt, &s);
  assert_uint_eq(s.capacity, 16);
  arbor_test_close(rt, &loop);

  opts.event_capacity = 17;
  arbor_test_open(&loop, &rt, &opts);
  arbor_events_stats(rt, &s);
  assert_uint_eq(s.capacity, 32);
  arbor_test_close(rt, &loop);

  opts.event_capacity = 0;
  arbor_test_open(&loop, &rt, &opts);
  arbor_events_stats(rt, &s);
  assert_uint_eq(s.capacity, 16384);
  arbor_test_close(rt, &loop);

  arbor_test_open(&loop, &rt, NULL);
  arbor_events_stats(rt, &s);
  assert_uint_eq(s.capacity, 16384);
  assert_stats_consistent(&s);
  arbor_test_close(rt, &loop);
}

/* Reading in pages of one: every event once, in order, cursor one past the last. */
static void events_read_in_pages(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_events_stats_t s;
  arbor_event_t ev;
  uint64_t cursor = 1, missed, expect = 1;
  int n;
  (void)state;
  arbor_test_open(&loop, &rt, NULL);

  churn(&loop, rt, 5);
  arbor_events_stats(rt, &s);
  while ((n = arbor_events_read(rt, &cursor, &ev, 1, &missed)) == 1) {
    assert_uint_eq(missed, 0);
    assert_uint_eq(ev.seq, expect);
    expect++;
    assert_uint_eq(cursor, expect);
  }
  assert_int_eq(n, 0);
  assert_uint_eq(expect, s.recorded + 1);
  /* max 0 reads nothing and keeps the cursor */
  cursor = 1;
  assert_int_eq(arbor_events_read(rt, &cursor, &ev, 0, NULL), 0);
  assert_uint_eq(cursor, 1);
  /* a cursor in the future reads nothing */
  cursor = s.recorded + 100;
  assert_int_eq(arbor_events_read(rt, &cursor, &ev, 1, &missed), 0);
  arbor_test_close(rt, &loop);
}

/* A FAILED event's error stays readable with a reference after the ring moved on. */
static void events_failed_error_ref_survives_overwrite(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t p = {0};
  arbor_node_t *t;
  arbor_event_t ev[16];
  arbor_error_t *kept = NULL;
  uint64_t cursor = 1;
  int n, i;
  (void)state;
  opts.event_capacity = 16;
  arbor_test_open(&loop, &rt, &opts);

  t = arbor_test_spawn(arbor_root(rt), &p, "t", 0);
  arbor_test_run_until(&loop, p.starts > 0);
  assert_code(arbor_task_fail(t, -EIO, "remember me"), 0);
  arbor_test_run_until(&loop, p.finishes > 0);
  n = arbor_events_read(rt, &cursor, ev, 16, NULL);
  for (i = 0; i < n; i++)
    if (ev[i].type == ARBOR_EVENT_FAILED && ev[i].node_id == arbor_node_id(t))
      kept = arbor_error_ref((arbor_error_t *)ev[i].error);
  assert_non_null(kept);
  churn(&loop, rt, 20); /* the FAILED event is overwritten */
  assert_string_equal(arbor_error_message(kept), "remember me");
  arbor_error_unref(kept);
  arbor_test_close(rt, &loop);
}

/* Retention: with retain_finished = 3, after 8 tasks finished (in order) only the 3
 * newest are findable and listed as children; live nodes are never evicted. */
static void retention_bound_keeps_newest(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t live[5] = {{0}}, fin[8] = {{0}};
  arbor_node_t *out[32];
  arbor_node_info_t info;
  size_t total;
  int i, n;
  (void)state;
  opts.retain_finished = 3;
  arbor_test_open(&loop, &rt, &opts);

  for (i = 0; i < 5; i++)
    arbor_test_spawn(arbor_root(rt), &live[i], "live", 0);
  for (i = 0; i < 8; i++)
    arbor_test_spawn(arbor_root(rt), &fin[i], "done", 0);
  arbor_test_run_until(&loop, fin[7].starts && live[4].starts);
  for (i = 0; i < 8; i++) {
    assert_code(arbor_task_done(fin[i].node), 0);
    arbor_test_run_until(&loop, fin[i].finishes > 0);
  }
  arbor_test_spin(&loop, 5);

  for (i = 0; i < 5; i++)
    assert_ptr_equal(arbor_node_find(rt, live[i].id), live[i].node);
  for (i = 0; i < 5; i++)
    if (arbor_node_find(rt, fin[i].id) != NULL)
      fail_msg("finished task %d (id %ju) was not evicted", i, (uintmax_t)fin[i].id);
  for (i = 5; i < 8; i++) {
    arbor_node_t *node = arbor_node_find(rt, fin[i].id);
    assert_non_null(node);
    assert_state(node, FINISHED);
    assert_outcome(node, OK);
  }

  n = arbor_node_children(arbor_root(rt), 0, 32, out, &total);
  assert_int_eq(n, 8);
  assert_uint_eq(total, 8);
  for (i = 0; i < 5; i++)
    assert_uint_eq(arbor_node_id(out[i]), live[i].id);
  for (i = 0; i < 3; i++)
    assert_uint_eq(arbor_node_id(out[5 + i]), fin[5 + i].id);
  arbor_node_info(arbor_root(rt), &info);
  assert_uint_eq(info.children, 8);
  assert_uint_eq(info.live_children, 5);
  assert_uint_eq(info.children_total, 13);
  arbor_test_close(rt, &loop);
}

/* "Newest" means most recently finished: finishing in reverse creation order keeps
 * the ones created first. */
static void retention_keeps_most_recently_finished(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t fin[6] = {{0}};
  int i;
  (void)state;
  opts.retain_finished = 2;
  arbor_test_open(&loop, &rt, &opts);

  for (i = 0; i < 6; i++)
    arbor_test_spawn(arbor_root(rt), &fin[i], "done", 0);
  arbor_test_run_until(&loop, fin[5].starts > 0);
  for (i = 5; i >= 0; i--) {
    assert_code(arbor_task_done(fin[i].node), 0);
    arbor_test_run_until(&loop, fin[i].finishes > 0);
  }
  arbor_test_spin(&loop, 5);
  assert_non_null(arbor_node_find(rt, fin[0].id));
  assert_non_null(arbor_node_find(rt, fin[1].id));
  for (i = 2; i < 6; i++)
    assert_null(arbor_node_find(rt, fin[i].id));
  arbor_test_close(rt, &loop);
}

/* Live nodes are never evicted, however many there are. */
static void retention_live_nodes_never_evicted(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t p[20] = {{0}};
  arbor_node_t *g;
  int i;
  (void)state;
  opts.retain_finished = 1;
  arbor_test_open(&loop, &rt, &opts);

  g = arbor_test_group(arbor_root(rt), "g");
  for (i = 0; i < 20; i++)
    arbor_test_spawn(g, &p[i], "t", 0);
  arbor_test_run_until(&loop, p[19].starts > 0);
  /* finish a few; the rest stay live */
  for (i = 0; i < 4; i++) {
    assert_code(arbor_task_done(p[i].node), 0);
    arbor_test_run_until(&loop, p[i].finishes > 0);
  }
  arbor_test_spin(&loop, 5);
  for (i = 4; i < 20; i++)
    assert_ptr_equal(arbor_node_find(rt, p[i].id), p[i].node);
  assert_ptr_equal(arbor_node_find(rt, arbor_node_id(g)), g);
  assert_non_null(arbor_node_find(rt, p[3].id));
  for (i = 0; i < 3; i++)
    assert_null(arbor_node_find(rt, p[i].id));
  arbor_test_close(rt, &loop);
}

/* A reference keeps an evicted node's memory valid; the last unref frees it. */
static void retention_ref_keeps_evicted_node(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_runtime_opts_t opts = {0};
  arbor_probe_t p[4] = {{0}};
  arbor_node_t *kept, *kept2;
  int i;
  (void)state;
  opts.retain_finished = 1;
  arbor_test_open(&loop, &rt, &opts);

  for (i = 0; i < 4; i++)
    arbor_test_spawn(arbor_root(rt), &p[i], "t", 0);
  kept = arbor_node_ref(p[0].node);
  kept2 = arbor_node_ref(p[1].node);
  assert_ptr_equal(kept, p[0].node);
  arbor_test_run_until(&loop, p[3].starts > 0);
  assert_code(arbor_task_fail(p[0].node, -EIO, "kept error"), 0);
  arbor_test_run_until(&loop, p[0].finishes > 0);
  for (i = 1; i < 4; i++) {
    assert_code(arbor_task_done(p[i].node), 0);
    arbor_test_run_until(&loop, p[i].finishes > 0);
  }
  arbor_test_spin(&loop, 5);
  assert_null(arbor_node_find(rt, p[0].id));
  /* still readable through the reference */
  assert_uint_eq(arbor_node_id(kept), p[0].id);
  assert_state(kept, FINISHED);
  assert_outcome(kept, FAILED);
  assert_string_equal(arbor_node_name(kept), "t");
  assert_string_equal(arbor_error_message(arbor_node_error(kept)), "kept error");
  /* evicted nodes are out of the tree: no sibling leads anywhere */
  assert_null(arbor_node_find(rt, arbor_node_id(kept2)));
  assert_null(arbor_node_next_sibling(kept));
  assert_null(arbor_node_next_sibling(kept2));
  arbor_node_unref(kept2);
  arbor_node_unref(kept); /* frees it: ASan checks */
  arbor_test_close(rt, &loop);
}

/* -------------------------------------------------------- subscriptions */

struct sub_count {
  int fired;
};
static void count_fire(void *arg) { ((struct sub_count *)arg)->fired++; }

/* Any number of modules learn of the next event (two admin servers, the OTLP
 * exporter): each armed subscription fires once, at the next event; a disarmed
 * or removed one does not. */
static void events_subscriptions_each_fire_once_per_arm(void **state) {
  uv_loop_t loop;
  arbor_runtime_t *rt;
  arbor_probe_t pa = {0};
  (void)state;
  arbor_test_open(&loop, &rt, NULL);
  struct sub_count ca = {0}, cb = {0}, cc = {0};
  struct arbor__events_sub a = {.fn = count_fire, .arg = &ca};
  struct arbor__events_sub b = {.fn = count_fire, .arg = &cb};
  struct arbor__events_sub c = {.fn = count_fire, .arg = &cc};
  arbor__events_subscribe(rt, &a);
  arbor__events_subscribe(rt, &b);
  arbor__events_subscribe(rt, &c);
  arbor__events_arm(rt, &a);
  arbor__events_arm(rt, &b);
  arbor__events_arm(rt, &b);     /* arming twice is one arm */
  arbor__events_arm(rt, &c);
  arbor__events_unsubscribe(rt, &c);   /* removed while armed: never fires */
  arbor_node_t *t = arbor_test_spawn(arbor_root(rt), &pa, "a", 0);   /* CREATED: one event */
  assert_int_eq(ca.fired, 1);
  assert_int_eq(cb.fired, 1);
  assert_int_eq(cc.fired, 0);
  arbor_test_run_until(&loop, pa.starts > 0);   /* more events: one-shot, no more calls */
  assert_int_eq(ca.fired, 1);
  assert_int_eq(cb.fired, 1);
  arbor__events_arm(rt, &b);
  assert_code(arbor_task_done(t), 0);
  arbor_test_run_until(&loop, pa.finishes > 0);
  assert_int_eq(ca.fired, 1);
  assert_int_eq(cb.fired, 2);
  arbor__events_unsubscribe(rt, &a);
  arbor__events_unsubscribe(rt, &b);
  arbor_test_close(rt, &loop);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(events_subscriptions_each_fire_once_per_arm),
    cmocka_unit_test(rule9_event_per_transition),
    cmocka_unit_test(rule9_event_recorded_at_transition),
    cmocka_unit_test(events_ring_overflow_counts_drops),
    cmocka_unit_test(events_reader_learns_it_fell_behind),
    cmocka_unit_test(events_capacity_rounded_to_power_of_two),
    cmocka_unit_test(events_read_in_pages),
    cmocka_unit_test(events_failed_error_ref_survives_overwrite),
    cmocka_unit_test(retention_bound_keeps_newest),
    cmocka_unit_test(retention_keeps_most_recently_finished),
    cmocka_unit_test(retention_live_nodes_never_evicted),
    cmocka_unit_test(retention_ref_keeps_evicted_node),
};

ARBOR_TEST_MAIN(tests)
