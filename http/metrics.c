/* http/metrics.c - GET /metrics: the runtime's counters in the Prometheus text
 * exposition format 0.0.4, for operators who scrape it (docs/metrics.md lists
 * every family).
 *
 * Where the numbers come from (DESIGN.md, "Events and traces"): the totals are
 * the runtime's own counters (arbor_runtime_stats, arbor_events_stats), kept as
 * plain increments where the tree changes, so a scrape never walks the tree for
 * them. Only the per-service series need a walk, and it skips every FINISHED
 * subtree (rule 1: all of it has finished too), so it costs the live nodes, not
 * the retained history. The process services' resource series read /proc once
 * per scrape for all of them (arbor_service_usage_many). The admin server's responses by status come from
 * server.c (http_responses_sent), the OTLP push exporter's from arbor_otlp_stats
 * (only while the runtime has one), the process_* family from /proc/self, the way
 * the Prometheus client libraries do it ("Writing client libraries", "Process
 * metrics"), so a dashboard made for any other exporter works here too.
 *
 * The format, as promtool and Prometheus 2.42 read it: every family has # HELP
 * and # TYPE before its samples, and its samples are together; counters end in
 * _total; times are seconds and sizes bytes (base units); a histogram has
 * cumulative _bucket{le="..."} samples ending in le="+Inf" (equal to _count),
 * then _sum and _count. A label value escapes backslash, double quote and
 * newline, and is valid UTF-8 (an invalid byte of a name becomes U+FFFD, as
 * json.c does, or Prometheus would reject the whole scrape).
 *
 * Numbers of seconds are written exactly from integer nanoseconds, in the form
 * Go's strconv.FormatFloat(v, 'g', -1, 64) gives, which is what client_golang
 * writes: "2.5e-06", "0.0001", "1000". So the "le" values are the same text at
 * every scrape and the same as a Go service's, and no double rounding creeps in.
 *
 * The response is built whole in memory: its size is a few KiB plus about 200
 * bytes per live service.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "http.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ------------------------------------------------------------ the text */

/* A growing text buffer. oom sticks: once an allocation failed, later writes do
 * nothing and the handler answers 500. */
struct mbuf {
  char *p;
  size_t len, cap;
  int oom;
};

static int mb_reserve(struct mbuf *b, size_t more) {
  if (b->oom)
    return -1;
  if (b->len + more + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 8192;
  while (cap < b->len + more + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

static void mb_put(struct mbuf *b, const char *s, size_t n) {
  if (mb_reserve(b, n) < 0)
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void mb_puts(struct mbuf *b, const char *s) { mb_put(b, s, strlen(s)); }

/* The length of the valid UTF-8 sequence at s (at most len bytes), or 0 when
 * the byte at s starts none (RFC 3629: no overlongs, no surrogates, nothing
 * past U+10FFFF), as json.c's utf8_seq. */
static size_t utf8_seq(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;   /* the range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if (len < n || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return n;
}

/* A label value, escaped as the text format wants (\\, \", \n) and made valid
 * UTF-8. */
static void mb_label_value(struct mbuf *b, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t len = strlen(s);
  for (size_t i = 0; i < len;) {
    size_t n = utf8_seq(u + i, len - i);
    if (n == 0) {
      mb_put(b, "\xEF\xBF\xBD", 3);      /* U+FFFD */
      i++;
    } else if (u[i] == '\\') {
      mb_put(b, "\\\\", 2), i++;
    } else if (u[i] == '"') {
      mb_put(b, "\\\"", 2), i++;
    } else if (u[i] == '\n') {
      mb_put(b, "\\n", 2), i++;
    } else {
      mb_put(b, s + i, n);
      i += n;
    }
  }
}

/* # HELP and # TYPE: what follows is one family's samples. help is ours (no
 * backslash, no newline), so it needs no escaping. */
static void family(struct mbuf *b, const char *name, const char *type, const char *help) {
  mb_puts(b, "# HELP ");
  mb_puts(b, name);
  mb_puts(b, " ");
  mb_puts(b, help);
  mb_puts(b, "\n# TYPE ");
  mb_puts(b, name);
  mb_puts(b, " ");
  mb_puts(b, type);
  mb_puts(b, "\n");
}

/* One sample: name{k1="v1",...} value. labels: key, value, key, value ...,
 * NULL; NULL for none. */
static void sample(struct mbuf *b, const char *name, const char *const *labels,
                   const char *value) {
  mb_puts(b, name);
  if (labels != NULL && labels[0] != NULL) {
    mb_puts(b, "{");
    for (size_t i = 0; labels[i] != NULL; i += 2) {
      if (i > 0)
        mb_puts(b, ",");
      mb_puts(b, labels[i]);
      mb_puts(b, "=\"");
      mb_label_value(b, labels[i + 1]);
      mb_puts(b, "\"");
    }
    mb_puts(b, "}");
  }
  mb_puts(b, " ");
  mb_puts(b, value);
  mb_puts(b, "\n");
}

static void sample_u64(struct mbuf *b, const char *name, const char *const *labels,
                       uint64_t v) {
  char text[24];
  snprintf(text, sizeof text, "%" PRIu64, v);
  sample(b, name, labels, text);
}

/* A family of one unlabelled sample. */
static void single_u64(struct mbuf *b, const char *name, const char *type, const char *help,
                       uint64_t v) {
  family(b, name, type, help);
  sample_u64(b, name, NULL, v);
}

/* ns nanoseconds as seconds, exactly, in the text Go's FormatFloat(v, 'g', -1,
 * 64) gives for that value: the shortest digits, an exponent (at least two
 * digits) when it is below -4, plain decimals otherwise (a uint64 of ns never
 * reaches 1e21 s, where Go would switch to an exponent again). out holds at
 * least 32 bytes. */
static void fmt_seconds(uint64_t ns, char *out) {
  if (ns == 0) {
    strcpy(out, "0");
    return;
  }
  int k = 0;                     /* trailing zeros taken off */
  while (ns % 10 == 0) {
    ns /= 10;
    k++;
  }
  char d[24];
  int n = snprintf(d, sizeof d, "%" PRIu64, ns);
  int dp = n + k - 9;            /* digits before the decimal point */
  int exp10 = dp - 1;            /* of the first digit */
  char *o = out;
  if (exp10 < -4) {
    *o++ = d[0];
    if (n > 1) {
      *o++ = '.';
      memcpy(o, d + 1, (size_t)(n - 1));
      o += n - 1;
    }
    sprintf(o, "e-%02d", -exp10);
    return;
  }
  if (dp <= 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -dp; i++)
      *o++ = '0';
    memcpy(o, d, (size_t)n);
    o += n;
  } else if (dp >= n) {
    memcpy(o, d, (size_t)n);
    o += n;
    for (int i = 0; i < dp - n; i++)
      *o++ = '0';
  } else {
    memcpy(o, d, (size_t)dp);
    o += dp;
    *o++ = '.';
    memcpy(o, d + dp, (size_t)(n - dp));
    o += n - dp;
  }
  *o = '\0';
}

/* A histogram of the core's (per-bucket counts, ns) as Prometheus wants it:
 * cumulative buckets in seconds, +Inf, _sum in seconds, _count. */
static void histogram(struct mbuf *b, const char *name, const char *help,
                      const arbor_histogram_t *h) {
  char series[128], le[32];
  family(b, name, "histogram", help);
  snprintf(series, sizeof series, "%s_bucket", name);
  uint64_t cum = 0;
  for (size_t i = 0; i < ARBOR_HISTOGRAM_BUCKETS; i++) {
    cum += h->buckets[i];
    fmt_seconds(arbor_histogram_bound_ns(i), le);
    sample_u64(b, series, (const char *const[]){"le", le, NULL}, cum);
  }
  cum += h->buckets[ARBOR_HISTOGRAM_BUCKETS];
  sample_u64(b, series, (const char *const[]){"le", "+Inf", NULL}, cum);
  snprintf(series, sizeof series, "%s_sum", name);
  fmt_seconds(h->sum_ns, le);
  sample(b, series, NULL, le);
  snprintf(series, sizeof series, "%s_count", name);
  sample_u64(b, series, NULL, h->count);
}

/* ------------------------------------------------------------ the core */

static void node_families(struct mbuf *b, const arbor_stats_t *st) {
  family(b, "arbor_nodes", "gauge",
         "Nodes in the tree now (retained FINISHED ones included), by kind and state.");
  for (int k = 0; k < ARBOR_KIND_COUNT; k++)
    for (int s = 0; s < ARBOR_STATE_COUNT; s++)
      sample_u64(b, "arbor_nodes",
                 (const char *const[]){"kind", arbor_kind_name((arbor_kind_t)k), "state",
                                       arbor_state_name((arbor_state_t)s), NULL},
                 st->nodes[k][s]);
  family(b, "arbor_nodes_created_total", "counter", "Nodes ever created, by kind.");
  for (int k = 0; k < ARBOR_KIND_COUNT; k++)
    sample_u64(b, "arbor_nodes_created_total",
               (const char *const[]){"kind", arbor_kind_name((arbor_kind_t)k), NULL},
               st->created[k]);
  family(b, "arbor_nodes_finished_total", "counter",
         "Nodes that reached FINISHED, by kind and outcome.");
  for (int k = 0; k < ARBOR_KIND_COUNT; k++)
    for (int o = ARBOR_OUTCOME_OK; o < ARBOR_OUTCOME_COUNT; o++)
      sample_u64(b, "arbor_nodes_finished_total",
                 (const char *const[]){"kind", arbor_kind_name((arbor_kind_t)k), "outcome",
                                       arbor_outcome_name((arbor_outcome_t)o), NULL},
                 st->finished[k][o]);
  single_u64(b, "arbor_restarts_total", "counter",
             "Restarts of services and supervisors (RESTART events, recorded or not).",
             st->events[ARBOR_EVENT_RESTART]);
  single_u64(b, "arbor_failures_total", "counter",
             "Node failures (FAILED events, recorded or not).", st->events[ARBOR_EVENT_FAILED]);
  single_u64(b, "arbor_cancellations_total", "counter",
             "Nodes cancellation reached, each once (CANCEL events, recorded or not).",
             st->events[ARBOR_EVENT_CANCEL]);
  single_u64(b, "arbor_stuck_nodes", "gauge",
             "Nodes stuck now: STOPPING past their shutdown timeout, not FINISHED.", st->stuck);
  single_u64(b, "arbor_nodes_evicted_total", "counter",
             "FINISHED nodes dropped from retention.", st->evicted);
  single_u64(b, "arbor_fiber_stack_overflows_total", "counter",
             "Fibers ended FAILED by a stack overflow (ESTACK); each stack is quarantined.",
             st->fiber_stack_overflows);
}

static void event_families(struct mbuf *b, const arbor_stats_t *st,
                           const arbor_events_stats_t *es) {
  single_u64(b, "arbor_events_recorded_total", "counter", "Events recorded into the ring.",
             st->events_recorded);
  single_u64(b, "arbor_events_dropped_total", "counter",
             "Events overwritten because the ring was full (oldest first).",
             st->events_dropped);
  single_u64(b, "arbor_event_ring_capacity", "gauge", "Events the ring holds at most.",
             (uint64_t)es->capacity);
}

/* The OTLP push exporter's counters (tracing/otlp_push.c), when the runtime
 * has one: a family that is there only with the exporter, like the exporter
 * itself. */
static void otlp_families(struct mbuf *b, arbor_runtime_t *rt) {
  arbor_otlp_t *otlp = arbor__runtime_otlp(rt);
  if (otlp == NULL)
    return;
  arbor_otlp_stats_t s;
  arbor_otlp_stats(otlp, &s);
  single_u64(b, "arbor_otlp_spans_queued_total", "counter",
             "Spans of finished nodes accepted into the OTLP push queue.", s.spans_queued);
  single_u64(b, "arbor_otlp_spans_exported_total", "counter",
             "Spans the collector acknowledged (2xx).", s.spans_exported);
  single_u64(b, "arbor_otlp_spans_dropped_total", "counter",
             "Spans dropped: queue full, node evicted before it was read, or batch rejected.",
             s.spans_dropped);
  single_u64(b, "arbor_otlp_requests_total", "counter", "OTLP/HTTP export requests sent.",
             s.requests);
  single_u64(b, "arbor_otlp_requests_failed_total", "counter",
             "OTLP/HTTP export requests not answered 2xx, or not answered in time.",
             s.requests_failed);
  single_u64(b, "arbor_otlp_events_missed_total", "counter",
             "Events the ring overwrote before the OTLP exporter read them.", s.events_missed);
  single_u64(b, "arbor_otlp_queue_spans", "gauge",
             "Spans waiting in the OTLP push queue, the batch in flight included.",
             (uint64_t)s.queue_len);
  single_u64(b, "arbor_otlp_queue_bytes", "gauge", "JSON bytes of the spans waiting.",
             (uint64_t)s.queue_bytes);
}

/* ------------------------------------------------------------ services */

struct services {
  arbor_node_t **v;
  size_t n, cap;
  int oom;
};

static int collect_service(arbor_node_t *node, int depth, void *arg) {
  (void)depth;
  struct services *s = arg;
  if (arbor_node_state(node) == ARBOR_STATE_FINISHED)
    return 1;                    /* rule 1: its subtree has finished too */
  if (arbor_node_kind(node) != ARBOR_KIND_SERVICE)
    return 0;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    arbor_node_t **v = realloc(s->v, cap * sizeof *v);
    if (v == NULL) {
      s->oom = 1;
      return -1;
    }
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = node;
  return 0;
}

/* Whether the service's current incarnation is STARTED (not starting, not in
 * its backoff, not stopping). */
static int service_up(arbor_runtime_t *rt, arbor_node_t *svc) {
  arbor_service_info_t si;
  if (arbor_service_info(svc, &si) != 0 || si.incarnation_id == 0)
    return 0;
  arbor_node_t *inc = arbor_node_find(rt, si.incarnation_id);
  return inc != NULL && arbor_node_state(inc) == ARBOR_STATE_STARTED;
}

/* The resource families of the live process services with a running program,
 * from one read of /proc for all of them (arbor_service_usage_many), sampled
 * now: nothing samples between scrapes. Returns -1 when out of memory. */
static int usage_families(struct mbuf *b, const struct services *s) {
  /* Declared even with no sample, as the other per-service families are. */
  size_t n = s->n > 0 ? s->n : 1;
  arbor_process_usage_t *u = calloc(n, sizeof *u);
  int *rcs = calloc(n, sizeof *rcs);
  if (u == NULL || rcs == NULL || arbor_service_usage_many(s->v, s->n, u, rcs) == ARBOR_ENOMEM) {
    free(u);
    free(rcs);
    return -1;
  }
  static const struct {
    const char *name, *type, *help;
  } fam[] = {
      {"arbor_service_cpu_seconds_total", "counter",
       "User and system CPU time of a process service's program and its descendants, in "
       "seconds (from 0 at each run)."},
      {"arbor_service_resident_memory_bytes", "gauge",
       "Resident memory of a process service's program and its descendants, summed."},
      {"arbor_service_open_fds", "gauge",
       "Open file descriptors of a process service's program and its descendants."},
      {"arbor_service_threads", "gauge",
       "Threads of a process service's program and its descendants."},
      {"arbor_service_processes", "gauge",
       "Processes of a process service: its program and the descendants found."},
  };
  char id[24], text[32];
  for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
    family(b, fam[f].name, fam[f].type, fam[f].help);
    for (size_t i = 0; i < s->n; i++) {
      if (rcs[i] != 0)
        continue;                /* not a process service, or no program now */
      snprintf(id, sizeof id, "%" PRIu64, arbor_node_id(s->v[i]));
      const char *const labels[] = {"service", arbor_node_name(s->v[i]), "id", id, NULL};
      switch (f) {
      case 0:
        fmt_seconds(u[i].cpu_ns, text);
        sample(b, fam[f].name, labels, text);
        break;
      case 1: sample_u64(b, fam[f].name, labels, u[i].rss_bytes); break;
      case 2: sample_u64(b, fam[f].name, labels, u[i].fds); break;
      case 3: sample_u64(b, fam[f].name, labels, u[i].threads); break;
      default: sample_u64(b, fam[f].name, labels, u[i].processes); break;
      }
    }
  }
  free(u);
  free(rcs);
  return 0;
}

/* The memory limits of the live process services that have one (or had runs
 * ended by one): what arbor_service_memory_limit says, no /proc read. */
static void memory_limit_families(struct mbuf *b, const struct services *s) {
  char id[24];
  arbor_memory_limit_info_t m;
  family(b, "arbor_service_memory_limit_bytes", "gauge",
         "A process service's max_memory: resident memory of its program and descendants "
         "over which a run is restarted.");
  for (size_t i = 0; i < s->n; i++) {
    if (arbor_service_memory_limit(s->v[i], &m) != 0 || m.max_memory == 0)
      continue;
    snprintf(id, sizeof id, "%" PRIu64, arbor_node_id(s->v[i]));
    sample_u64(b, "arbor_service_memory_limit_bytes",
               (const char *const[]){"service", arbor_node_name(s->v[i]), "id", id, NULL},
               m.max_memory);
  }
  family(b, "arbor_service_memory_limit_exceeded_total", "counter",
         "Runs of a process service failed for staying over its max_memory (EMEMLIMIT).");
  for (size_t i = 0; i < s->n; i++) {
    if (arbor_service_memory_limit(s->v[i], &m) != 0 || (m.max_memory == 0 && m.exceeded == 0))
      continue;
    snprintf(id, sizeof id, "%" PRIu64, arbor_node_id(s->v[i]));
    sample_u64(b, "arbor_service_memory_limit_exceeded_total",
               (const char *const[]){"service", arbor_node_name(s->v[i]), "id", id, NULL},
               m.exceeded);
  }
}

/* The health probe families of the live services that have probes (probe.c):
 * counters and the last verdict and duration the loop already keeps, so a
 * scrape costs no probe. */
static void probe_families(struct mbuf *b, const struct services *s) {
  static const char *const results[] = {"success", "failure", "timeout"};
  char id[24], text[32];
  family(b, "arbor_service_ready", "gauge",
         "1 when the live service's run is ready: STARTED and not failed by its readiness "
         "probe.");
  for (size_t i = 0; i < s->n; i++) {
    arbor_service_info_t si;
    if (arbor_node_kind(s->v[i]) != ARBOR_KIND_SERVICE || arbor_service_info(s->v[i], &si) != 0)
      continue;
    snprintf(id, sizeof id, "%" PRIu64, arbor_node_id(s->v[i]));
    sample(b, "arbor_service_ready",
           (const char *const[]){"service", arbor_node_name(s->v[i]), "id", id, NULL},
           si.ready ? "1" : "0");
  }
  for (int f = 0; f < 3; f++) {
    static const struct {
      const char *name, *type, *help;
    } fam[] = {
        {"arbor_probe_results_total", "counter",
         "Attempts of a service's health probe by result (failure excludes timeouts)."},
        {"arbor_probe_up", "gauge",
         "1 while a service's health probe passes (liveness: not failed failure_threshold "
         "times in a row; readiness: ready), else 0."},
        {"arbor_probe_duration_seconds", "gauge",
         "How long a service's health probe's last attempt took, in seconds."},
    };
    family(b, fam[f].name, fam[f].type, fam[f].help);
    for (size_t i = 0; i < s->n; i++) {
      for (int role = ARBOR_PROBE_LIVENESS; role <= ARBOR_PROBE_READINESS; role++) {
        arbor_probe_info_t pi;
        if (arbor_node_kind(s->v[i]) != ARBOR_KIND_SERVICE ||
            arbor_service_probe_info(s->v[i], (arbor_probe_role_t)role, &pi) != 0)
          continue;
        snprintf(id, sizeof id, "%" PRIu64, arbor_node_id(s->v[i]));
        const char *probe = arbor_probe_role_name((arbor_probe_role_t)role);
        if (f == 0) {
          const uint64_t counts[] = {pi.successes, pi.failures - pi.timeouts, pi.timeouts};
          for (int r = 0; r < 3; r++)
            sample_u64(b, fam[f].name,
                       (const char *const[]){"service", arbor_node_name(s->v[i]), "id", id,
                                             "probe", probe, "result", results[r], NULL},
                       counts[r]);
          continue;
        }
        const char *const labels[] = {"service", arbor_node_name(s->v[i]), "id", id,
                                      "probe", probe, NULL};
        if (f == 1) {
          sample(b, fam[f].name, labels, pi.passing ? "1" : "0");
        } else if (pi.last_time_ns != 0) {
          fmt_seconds(pi.last_duration_ns, text);
          sample(b, fam[f].name, labels, text);
        }
      }
    }
  }
}

/* The per-service families, from one walk (their samples must not interleave,
 * hence the list). Returns -1 when out of memory. */
static int service_families(struct mbuf *b, arbor_runtime_t *rt) {
  struct services s = {0};
  arbor_tree_walk(arbor_root(rt), -1, collect_service, &s);
  if (s.oom) {
    free(s.v);
    return -1;
  }
  char id[24];
  family(b, "arbor_service_restarts_total", "counter",
         "Restarts of each live supervised service.");
  for (size_t i = 0; i < s.n; i++) {
    arbor_node_info_t in;
    arbor_node_info(s.v[i], &in);
    snprintf(id, sizeof id, "%" PRIu64, in.id);
    sample_u64(b, "arbor_service_restarts_total",
               (const char *const[]){"service", arbor_node_name(s.v[i]), "id", id, NULL},
               in.restarts);
  }
  family(b, "arbor_service_up", "gauge",
         "1 when the live service's current run is STARTED, else 0.");
  for (size_t i = 0; i < s.n; i++) {
    snprintf(id, sizeof id, "%" PRIu64, arbor_node_id(s.v[i]));
    sample(b, "arbor_service_up",
           (const char *const[]){"service", arbor_node_name(s.v[i]), "id", id, NULL},
           service_up(rt, s.v[i]) ? "1" : "0");
  }
  probe_families(b, &s);
  int rc = usage_families(b, &s);
  memory_limit_families(b, &s);
  free(s.v);
  return rc;
}

/* ------------------------------------------------------- admin server */

static void admin_families(struct mbuf *b, const struct arbor_admin_s *admin) {
  char code[8];
  family(b, "arbor_admin_http_requests_total", "counter",
         "Responses the admin server sent, by HTTP status code.");
  for (unsigned st = HTTP_STATUS_FIRST; st <= HTTP_STATUS_LAST; st++) {
    uint64_t n = http_responses_sent(admin, st);
    if (n == 0)
      continue;
    snprintf(code, sizeof code, "%u", st);
    sample_u64(b, "arbor_admin_http_requests_total", (const char *const[]){"code", code, NULL},
               n);
  }
}

/* ------------------------------------------------------------- process */

/* What /proc/self says, as the client libraries read it. have_*: it could be
 * read (a family is left out when not: no made-up zeros). */
struct proc_stats {
  int have_stat, have_start, have_fds, have_max_fds;
  uint64_t cpu_ns, vsize, rss_bytes, start_ns, fds, max_fds;
  int max_fds_unlimited;
};

/* Reads a small file whole into buf (NUL-terminated). Returns its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, size - 1, f);
  int bad = ferror(f);
  fclose(f);
  if (bad)
    return -1;
  buf[n] = '\0';
  return (ssize_t)n;
}

/* btime from /proc/stat: the boot time, Unix seconds. Its lines can be long
 * (intr), hence getline. */
static int boot_time(uint64_t *out) {
  FILE *f = fopen("/proc/stat", "re");
  if (f == NULL)
    return -1;
  char *line = NULL;
  size_t cap = 0;
  int rc = -1;
  while (getline(&line, &cap, f) >= 0) {
    unsigned long long v;
    if (sscanf(line, "btime %llu", &v) == 1) {
      *out = v;
      rc = 0;
      break;
    }
  }
  free(line);
  fclose(f);
  return rc;
}

static void proc_read(struct proc_stats *p) {
  memset(p, 0, sizeof *p);
  long hz = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  char buf[1024];
  /* /proc/self/stat: pid (comm) state ... The name may hold spaces and
   * parentheses, so the fields are counted from the last ')': state is field
   * 3, utime 14, stime 15, starttime 22, vsize 23, rss 24 (proc(5)). */
  char *close_paren;
  if (hz > 0 && page > 0 && read_small("/proc/self/stat", buf, sizeof buf) > 0 &&
      (close_paren = strrchr(buf, ')')) != NULL) {
    unsigned long long utime, stime, start, vsize;
    long long rss;
    if (sscanf(close_paren + 1,
               " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu %*s %*s %*s %*s %*s"
               " %*s %llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) == 5) {
      p->have_stat = 1;
      p->cpu_ns = (uint64_t)(utime + stime) * 1000000000u / (uint64_t)hz;
      p->vsize = vsize;
      p->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
      uint64_t btime;
      if (boot_time(&btime) == 0) {
        p->have_start = 1;
        p->start_ns = btime * 1000000000u + (uint64_t)start * 1000000000u / (uint64_t)hz;
      }
    }
  }
  /* Open fds: the entries of /proc/self/fd, less the one reading it. */
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    char self[16];
    snprintf(self, sizeof self, "%d", dirfd(d));
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.' && strcmp(e->d_name, self) != 0)
        p->fds++;
    closedir(d);
    p->have_fds = 1;
  }
  /* The soft limit: what /proc/self/limits shows as "Max open files", asked
   * of the kernel directly instead of parsed from that table. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    p->have_max_fds = 1;
    p->max_fds_unlimited = rl.rlim_cur == RLIM_INFINITY;
    p->max_fds = (uint64_t)rl.rlim_cur;
  }
}

static void process_families(struct mbuf *b) {
  struct proc_stats p;
  char text[32];
  proc_read(&p);
  if (p.have_stat) {
    family(b, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.");
    fmt_seconds(p.cpu_ns, text);
    sample(b, "process_cpu_seconds_total", NULL, text);
    single_u64(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               p.rss_bytes);
    single_u64(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               p.vsize);
  }
  if (p.have_start) {
    family(b, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    fmt_seconds(p.start_ns, text);
    sample(b, "process_start_time_seconds", NULL, text);
  }
  if (p.have_fds)
    single_u64(b, "process_open_fds", "gauge", "Number of open file descriptors.", p.fds);
  if (p.have_max_fds) {
    family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    if (p.max_fds_unlimited)
      sample(b, "process_max_fds", NULL, "+Inf");
    else
      sample_u64(b, "process_max_fds", NULL, p.max_fds);
  }
}

/* ------------------------------------------------------------ handler */

enum MHD_Result http_metrics_get(struct http_req *r) {
  struct mbuf b = {0};
  arbor_stats_t st;
  arbor_events_stats_t es;
  arbor_runtime_stats(r->rt, &st);
  arbor_events_stats(r->rt, &es);
  node_families(&b, &st);
  event_families(&b, &st, &es);
  histogram(&b, "arbor_restart_gap_seconds",
            "From a service's previous run FINISHED to its next run STARTED, backoff "
            "included.",
            &st.restart_gap);
  histogram(&b, "arbor_task_lifetime_seconds",
            "From a task's or process's CREATED to its FINISHED.", &st.task_lifetime);
  otlp_families(&b, r->rt);
  int rc = service_families(&b, r->rt);
  admin_families(&b, r->admin);
  process_families(&b);
  if (rc < 0 || b.oom || b.p == NULL) {
    free(b.p);
    return http_error(r, 500, "internal", "out of memory building the response");
  }
  return http_text_take(r, 200, CONTENT_TYPE, b.p, b.len);   /* b.p is malloc's */
}
