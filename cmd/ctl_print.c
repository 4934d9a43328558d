/* cmd/ctl_print.c - how `arbor ctl` prints the admin API's JSON for a person:
 * the tree like pstree, a node's every detail, an event on one line, error
 * chains as arbor_error_format prints them. Pure functions of the JSON (tested on
 * canned answers in tests/cmd/test_ctl.c); no I/O but the FILE they are given.
 */
#include "ctl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- output */

/* Writes server text with its control characters (ESC above all) shown as '?':
 * names and messages are data, not terminal commands. NULL prints nothing. */
void ctl_put_safe(FILE *f, const char *s) {
  for (; s != NULL && *s != '\0'; s++)
    fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, f);
}

/* The first line of s only, made safe like ctl_put_safe. */
void ctl_put_line(FILE *f, const char *s) {
  for (; s != NULL && *s != '\0' && *s != '\n' && *s != '\r'; s++)
    fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, f);
}

/* Writes text (made safe) in colour sgr when colours are on. */
void ctl_paint(struct ctl *c, const char *sgr, const char *text) {
  if (c->color && sgr != NULL)
    fprintf(c->out, "\033[%sm", sgr);
  ctl_put_safe(c->out, text);
  if (c->color && sgr != NULL)
    fputs("\033[0m", c->out);
}

const char *ctl_state_color(const char *state) {
  if (state == NULL)
    return NULL;
  if (strcmp(state, "STARTED") == 0)
    return C_GREEN;
  if (strcmp(state, "STARTING") == 0 || strcmp(state, "STOPPING") == 0)
    return C_YELLOW;
  if (strcmp(state, "CREATED") == 0)
    return C_CYAN;
  return C_DIM;                     /* STOPPED, FINISHED: over */
}

const char *ctl_outcome_color(const char *outcome) {
  if (outcome == NULL)
    return NULL;
  if (strcmp(outcome, "OK") == 0)
    return C_GREEN;
  if (strcmp(outcome, "FAILED") == 0)
    return C_BOLD_RED;
  if (strcmp(outcome, "CANCELLED") == 0)
    return C_MAGENTA;
  return NULL;
}

/* -------------------------------------------------------------- JSON */

const char *ctl_jstr(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A number field; cJSON keeps doubles, exact up to 2^53 (ids, counts, and the
 * monotonic clock for about 104 days of uptime). dflt when absent. */
double ctl_jnum(const cJSON *obj, const char *key, double dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

unsigned long long ctl_ju64(const cJSON *obj, const char *key) {
  double d = ctl_jnum(obj, key, 0);
  return d > 0 ? (unsigned long long)d : 0;
}

int ctl_jtrue(const cJSON *obj, const char *key) {
  return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

const cJSON *ctl_jget(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* ------------------------------------------------------------- errors */

/* One error on one line, as arbor_error_format writes it:
 * "NAME: message [node N] at file:line (func)". */
static void print_error_one(FILE *f, const cJSON *e) {
  const char *name = ctl_jstr(e, "name"), *file = ctl_jstr(e, "file"), *fn = ctl_jstr(e, "function");
  if (name != NULL)
    ctl_put_safe(f, name);
  else
    fprintf(f, "%d", (int)ctl_jnum(e, "code", 0));
  fputs(": ", f);
  ctl_put_line(f, ctl_jstr(e, "message"));
  if (ctl_ju64(e, "node_id") != 0)
    fprintf(f, " [node %llu]", ctl_ju64(e, "node_id"));
  if (file != NULL && file[0] != '\0') {
    fputs(" at ", f);
    ctl_put_safe(f, file);
    fprintf(f, ":%d", (int)ctl_jnum(e, "line", 0));
  }
  if (fn != NULL && fn[0] != '\0') {
    fputs(" (", f);
    ctl_put_safe(f, fn);
    fputc(')', f);
  }
  fputc('\n', f);
}

/* An error chain as arbor_error_format prints one: outermost first, each cause
 * two columns further in under "caused by: ", a group's errors under "child i of
 * n: ". Depth is bounded by what cJSON parsed (its own nesting limit). */
static void print_error_chain(FILE *f, const cJSON *e, int indent, const char *label) {
  for (; cJSON_IsObject(e); e = ctl_jget(e, "cause")) {
    fprintf(f, "%*s%s", indent, "", label);
    print_error_one(f, e);
    const cJSON *errors = ctl_jget(e, "errors");
    unsigned long long omitted = ctl_ju64(e, "errors_omitted");
    int n = cJSON_GetArraySize(errors) + (int)(omitted < 100000 ? omitted : 100000), i = 0;
    const cJSON *child;
    cJSON_ArrayForEach(child, errors) {
      char child_label[64];
      snprintf(child_label, sizeof child_label, "child %d of %d: ", ++i, n);
      print_error_chain(f, child, indent + 2, child_label);
    }
    /* The server renders a chain within a budget and says what it left out. */
    if (omitted > 0)
      fprintf(f, "%*s… %llu more left out by the server\n", indent + 2, "", omitted);
    if (ctl_jtrue(e, "truncated"))
      fprintf(f, "%*scaused by: … (left out by the server)\n", indent + 2, "");
    indent += 2;
    label = "caused by: ";
  }
}

/* --------------------------------------------------------------- tree */

/* "service web #12 STARTED restarts=2 stuck error: EIO: disk full" */
static void print_node_line(struct ctl *c, const cJSON *node) {
  const char *kind = ctl_jstr(node, "kind"), *name = ctl_jstr(node, "name");
  const char *state = ctl_jstr(node, "state"), *outcome = ctl_jstr(node, "outcome");
  const cJSON *err = ctl_jget(node, "error");

  ctl_put_safe(c->out, kind != NULL ? kind : "node");
  if (name != NULL && name[0] != '\0') {
    fputc(' ', c->out);
    ctl_put_safe(c->out, name);
  }
  fprintf(c->out, " #%llu ", ctl_ju64(node, "id"));
  ctl_paint(c, ctl_state_color(state), state != NULL ? state : "?");
  if (outcome != NULL && strcmp(outcome, "NONE") != 0) {
    fputc(' ', c->out);
    ctl_paint(c, ctl_outcome_color(outcome), outcome);
  }
  if (kind != NULL && (strcmp(kind, "service") == 0 || strcmp(kind, "supervisor") == 0))
    fprintf(c->out, " restarts=%llu", ctl_ju64(node, "restarts"));
  if (ctl_jtrue(node, "cancel_requested") && (state == NULL || strcmp(state, "FINISHED") != 0))
    fputs(" cancel-requested", c->out);
  if (ctl_jtrue(node, "stuck")) {
    fputc(' ', c->out);
    ctl_paint(c, C_BOLD_RED, "STUCK");
  }
  const cJSON *wf = ctl_jget(node, "waiting_for");
  if (cJSON_IsObject(wf)) {      /* not started: an earlier sibling is not STARTED */
    fputs(" waiting for ", c->out);
    ctl_put_safe(c->out, ctl_jstr(wf, "name") ? ctl_jstr(wf, "name") : "?");
    fputs(": ", c->out);
    ctl_put_safe(c->out, ctl_jstr(wf, "state") ? ctl_jstr(wf, "state") : "?");
  }
  if (cJSON_IsObject(err)) {
    const char *ename = ctl_jstr(err, "name");
    if (c->color)
      fputs(" \033[" C_RED "m", c->out);
    else
      fputc(' ', c->out);
    fputs("error: ", c->out);
    ctl_put_safe(c->out, ename != NULL ? ename : "?");
    fputs(": ", c->out);
    ctl_put_line(c->out, ctl_jstr(err, "message"));
    if (c->color)
      fputs("\033[0m", c->out);
  }
  fputc('\n', c->out);
}

/* The children of node below prefix, pstree-style. prefix has room for
 * CTL_MAX_TREE_DEPTH levels of 6 bytes ("│  " is 5 in UTF-8). The server leaves
 * "nodes" out at the depth asked for, and says in "more" how many children it
 * did not include, whether for the depth, the per-node limit or its node budget. */
static void print_tree_children(struct ctl *c, const cJSON *node, char *prefix, size_t plen) {
  const cJSON *kids = ctl_jget(node, "nodes");
  unsigned long long more = ctl_ju64(node, "more");
  int n = cJSON_GetArraySize(kids), i = 0;
  const cJSON *kid;

  if (!cJSON_IsArray(kids)) {
    unsigned long long hidden = more ? more : ctl_ju64(node, "children");
    if (hidden > 0)
      fprintf(c->out, "%s└─ … %llu %s below --depth\n", prefix, hidden,
              hidden == 1 ? "child" : "children");
    return;
  }
  cJSON_ArrayForEach(kid, kids) {
    int last = ++i == n && more == 0;
    fputs(prefix, c->out);
    fputs(last ? "└─ " : "├─ ", c->out);
    print_node_line(c, kid);
    if (plen + 6 < (CTL_MAX_TREE_DEPTH + 2) * 6) {
      strcpy(prefix + plen, last ? "   " : "│  ");
      print_tree_children(c, kid, prefix, plen + strlen(prefix + plen));
      prefix[plen] = '\0';
    }
  }
  if (more > 0)
    fprintf(c->out, "%s└─ … %llu more\n", prefix, more);
}

int ctl_print_tree(struct ctl *c, const cJSON *answer) {
  const cJSON *root = ctl_jget(answer, "root");
  char prefix[(CTL_MAX_TREE_DEPTH + 2) * 6] = "";
  if (!cJSON_IsObject(root))
    return -1;
  print_node_line(c, root);
  print_tree_children(c, root, prefix, 0);
  if (ctl_jtrue(answer, "truncated"))
    fprintf(c->out, "… the server stopped at %llu nodes: ask for less (--depth, --limit) or "
                    "for a subtree (tree ID)\n",
            ctl_ju64(answer, "count"));
  return 0;
}

/* ------------------------------------------------------------- status */

/* A label padded to one column, the way status lines up. */
static void status_label(struct ctl *c, int indent, const char *label) {
  fprintf(c->out, "%*s%-18s", indent, "", label);
}

/* Any field of obj not in known[] (a server newer than this ctl): "key: value",
 * so status shows every field whatever the version. */
static void print_other_fields(struct ctl *c, const cJSON *obj, const char *const *known,
                               int indent) {
  const cJSON *f;
  cJSON_ArrayForEach(f, obj) {
    int seen = 0;
    for (const char *const *k = known; *k != NULL && !seen; k++)
      seen = strcmp(*k, f->string) == 0;
    if (seen)
      continue;
    char label[80];
    snprintf(label, sizeof label, "%s:", f->string);
    for (char *p = label; *p; p++)
      *p = (unsigned char)*p < 0x20 ? '?' : *p;
    status_label(c, indent, label);
    if (cJSON_IsString(f)) {
      ctl_put_safe(c->out, f->valuestring);
    } else {
      char *text = cJSON_PrintUnformatted(f);
      ctl_put_safe(c->out, text);
      free(text);
    }
    fputc('\n', c->out);
  }
}

/* "created: 2026-...Z (12345 ns)" when the pair is there. */
static void print_time(struct ctl *c, const cJSON *obj, const char *name, const char *label) {
  char key[32];
  snprintf(key, sizeof key, "%s_ns", name);
  if (ctl_jget(obj, key) == NULL && ctl_jget(obj, name) == NULL)
    return;
  status_label(c, 2, label);
  ctl_put_safe(c->out, ctl_jstr(obj, name) ? ctl_jstr(obj, name) : "?");
  fprintf(c->out, " (monotonic %llu ns)\n", ctl_ju64(obj, key));
}

static const char *yes_no(int b) { return b ? "yes" : "no"; }

static void print_status_fiber(struct ctl *c, const cJSON *fiber) {
  static const char *const known[] = {"wait", "file", "line", "since_ns", "stack_size",
                                      "stack_high_water", NULL};
  const char *wait = ctl_jstr(fiber, "wait"), *file = ctl_jstr(fiber, "file");
  fputs("fiber:\n", c->out);
  status_label(c, 2, "wait:");
  if (wait == NULL) {
    fputs("running or runnable\n", c->out);
  } else {
    ctl_put_safe(c->out, wait);
    if (file != NULL) {
      fputs(" at ", c->out);
      ctl_put_safe(c->out, file);
      fprintf(c->out, ":%d", (int)ctl_jnum(fiber, "line", 0));
    }
    fprintf(c->out, " since monotonic %llu ns\n", ctl_ju64(fiber, "since_ns"));
  }
  if (ctl_ju64(fiber, "stack_size") > 0) {   /* none for a process node */
    status_label(c, 2, "stack:");
    fprintf(c->out, "%llu bytes, at most %llu used\n", ctl_ju64(fiber, "stack_size"),
            ctl_ju64(fiber, "stack_high_water"));
  }
  print_other_fields(c, fiber, known, 2);
}

/* "liveness probe: http http://127.0.0.1:8080/healthz every 1000 ms: failing, 2
 * failures in a row (of 3); last error: HTTP GET ...: status 503". */
static void print_status_probe(struct ctl *c, const char *role, const cJSON *p) {
  if (!cJSON_IsObject(p))
    return;
  char label[32];
  snprintf(label, sizeof label, "%s probe:", role);
  status_label(c, 2, label);
  ctl_put_safe(c->out, ctl_jstr(p, "kind") ? ctl_jstr(p, "kind") : "?");
  fputc(' ', c->out);
  ctl_put_safe(c->out, ctl_jstr(p, "target") ? ctl_jstr(p, "target") : "?");
  int readiness = strcmp(role, "readiness") == 0;
  const char *verdict = !ctl_jtrue(p, "active")   ? "not running"
                        : ctl_jtrue(p, "passing") ? (readiness ? "ready" : "passing")
                                                  : (readiness ? "not ready" : "failing");
  fprintf(c->out, " every %llu ms: %s, %llu failures in a row (of %llu), %llu passed, %llu failed",
          ctl_ju64(p, "interval_ms"), verdict, ctl_ju64(p, "failures_in_row"),
          ctl_ju64(p, "failure_threshold"), ctl_ju64(p, "successes"), ctl_ju64(p, "failures"));
  const cJSON *le = ctl_jget(p, "last_error");
  if (cJSON_IsObject(le) && ctl_jstr(le, "message") != NULL) {
    fputs("; last error: ", c->out);
    ctl_put_safe(c->out, ctl_jstr(le, "message"));
  }
  fputc('\n', c->out);
}

/* "38.3 MiB": bytes in the largest binary unit under which they are >= 1. */
static void put_bytes(FILE *out, double bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4)
    bytes /= 1024, u++;
  fprintf(out, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

/* "usage:  38.3 MiB RSS, CPU 1.52 s (3.1 %), 8 fds, 3 threads, 2 processes":
 * what the program and its descendants use (read from /proc when asked). */
static void print_status_usage(struct ctl *c, const cJSON *u) {
  if (!cJSON_IsObject(u))
    return;                      /* null: not a process service, or nothing runs */
  status_label(c, 2, "usage:");
  put_bytes(c->out, ctl_jnum(u, "rss_bytes", 0));
  fprintf(c->out, " RSS, CPU %.2f s (%.1f %%), %llu fds, %llu threads, %llu process%s%s\n",
          ctl_jnum(u, "cpu_seconds", 0), ctl_jnum(u, "cpu_percent", 0), ctl_ju64(u, "open_fds"),
          ctl_ju64(u, "threads"), ctl_ju64(u, "processes"),
          ctl_ju64(u, "processes") == 1 ? "" : "es",
          ctl_jtrue(u, "partial") ? " (partial: /proc too large)" : "");
}

/* "memory limit:  16.0 MiB (over it for 500 ms restarts): last reading 12.1 MiB
 * of 2 processes, 45 readings every 100 ms; ended 2 runs". */
static void print_status_memory_limit(struct ctl *c, const cJSON *m) {
  if (!cJSON_IsObject(m))
    return;
  status_label(c, 2, "memory limit:");
  put_bytes(c->out, ctl_jnum(m, "max_memory", 0));
  if (ctl_ju64(m, "max_memory_for_ms") > 0)
    fprintf(c->out, " for %llu ms", ctl_ju64(m, "max_memory_for_ms"));
  if (ctl_ju64(m, "readings") > 0) {
    fputs(": last reading ", c->out);
    put_bytes(c->out, ctl_jnum(m, "rss_bytes", 0));
    fprintf(c->out, " of %llu process%s, %llu readings", ctl_ju64(m, "processes"),
            ctl_ju64(m, "processes") == 1 ? "" : "es", ctl_ju64(m, "readings"));
    if (ctl_ju64(m, "check_ms") > 0)
      fprintf(c->out, " every %llu ms", ctl_ju64(m, "check_ms"));
    if (ctl_ju64(m, "over_ms") > 0)
      fprintf(c->out, ", over it for %llu ms", ctl_ju64(m, "over_ms"));
  } else {
    fputs(": no reading yet", c->out);
  }
  fprintf(c->out, "; runs ended by it: %llu\n", ctl_ju64(m, "exceeded"));
}

static void print_status_service(struct ctl *c, const cJSON *svc) {
  static const char *const known[] = {"restart", "phase", "is_process", "daemon",
                                      "incarnation_id", "next_restart_ns", "last_backoff_ms",
                                      "tasks_total", "tasks_finished", "pid", "strategy",
                                      "intensity", "period_ms", "waiting_for", "ready",
                                      "probes", "usage", "memory_limit", NULL};
  fputs("service:\n", c->out);
  status_label(c, 2, "restart:");
  ctl_put_safe(c->out, ctl_jstr(svc, "restart"));
  fputc('\n', c->out);
  status_label(c, 2, "phase:");
  ctl_put_safe(c->out, ctl_jstr(svc, "phase"));
  fputc('\n', c->out);
  const cJSON *wf = ctl_jget(svc, "waiting_for");
  if (cJSON_IsObject(wf)) {      /* held back by an earlier sibling: "db: STARTING" */
    status_label(c, 2, "waiting for:");
    ctl_put_safe(c->out, ctl_jstr(wf, "name") ? ctl_jstr(wf, "name") : "?");
    fputs(": ", c->out);
    ctl_put_safe(c->out, ctl_jstr(wf, "state") ? ctl_jstr(wf, "state") : "?");
    fprintf(c->out, " (id %llu)\n", ctl_ju64(wf, "id"));
  }
  status_label(c, 2, "process:");
  fprintf(c->out, "%s", yes_no(ctl_jtrue(svc, "is_process")));
  if (ctl_ju64(svc, "pid") != 0)
    fprintf(c->out, " (pid %llu)", ctl_ju64(svc, "pid"));
  fputc('\n', c->out);
  print_status_usage(c, ctl_jget(svc, "usage"));
  print_status_memory_limit(c, ctl_jget(svc, "memory_limit"));
  status_label(c, 2, "daemon:");
  fprintf(c->out, "%s\n", yes_no(ctl_jtrue(svc, "daemon")));
  status_label(c, 2, "incarnation:");
  fprintf(c->out, "%llu\n", ctl_ju64(svc, "incarnation_id"));
  status_label(c, 2, "tasks:");
  fprintf(c->out, "%llu started, %llu finished\n", ctl_ju64(svc, "tasks_total"),
          ctl_ju64(svc, "tasks_finished"));
  status_label(c, 2, "backoff:");
  fprintf(c->out, "last %llu ms", ctl_ju64(svc, "last_backoff_ms"));
  if (ctl_ju64(svc, "next_restart_ns") != 0)
    fprintf(c->out, ", next restart at monotonic %llu ns", ctl_ju64(svc, "next_restart_ns"));
  fputc('\n', c->out);
  const cJSON *probes = ctl_jget(svc, "probes");
  print_status_probe(c, "liveness", ctl_jget(probes, "liveness"));
  print_status_probe(c, "readiness", ctl_jget(probes, "readiness"));
  if (cJSON_IsObject(ctl_jget(probes, "readiness"))) {
    status_label(c, 2, "ready:");
    fprintf(c->out, "%s\n", yes_no(ctl_jtrue(svc, "ready")));
  }
  if (ctl_jstr(svc, "strategy") != NULL) {
    status_label(c, 2, "strategy:");
    ctl_put_safe(c->out, ctl_jstr(svc, "strategy"));
    fprintf(c->out, ", at most %llu restarts in %llu ms\n", ctl_ju64(svc, "intensity"),
            ctl_ju64(svc, "period_ms"));
  }
  print_other_fields(c, svc, known, 2);
}

static void print_status_history(struct ctl *c, const cJSON *history) {
  const cJSON *h;
  fprintf(c->out, "history (newest first, %d):\n", cJSON_GetArraySize(history));
  cJSON_ArrayForEach(h, history) {
    fprintf(c->out, "  incarnation %llu at ", ctl_ju64(h, "incarnation_id"));
    ctl_put_safe(c->out, ctl_jstr(h, "time") ? ctl_jstr(h, "time") : "?");
    if (ctl_jtrue(h, "restarted"))
      fprintf(c->out, ": restarted after %llu ms\n", ctl_ju64(h, "backoff_ms"));
    else
      fputs(": not restarted\n", c->out);
    print_error_chain(c->out, ctl_jget(h, "error"), 4, "");
  }
}

void ctl_print_status(struct ctl *c, const cJSON *node) {
  static const char *const known[] = {
      "id", "parent_id", "name", "kind", "state", "outcome", "cancel_requested", "stuck",
      "created_ns", "created", "started_ns", "started", "stop_requested_ns",
      "stop_requested", "finished_ns", "finished", "children", "live_children",
      "children_total", "restarts", "attributes", "error", "fiber", "service", "history",
      NULL};
  const char *state = ctl_jstr(node, "state"), *outcome = ctl_jstr(node, "outcome");
  const cJSON *attrs = ctl_jget(node, "attributes"), *a;

  fprintf(c->out, "node %llu: ", ctl_ju64(node, "id"));
  ctl_put_safe(c->out, ctl_jstr(node, "kind"));
  if (ctl_jstr(node, "name") != NULL && ctl_jstr(node, "name")[0] != '\0') {
    fputc(' ', c->out);
    ctl_put_safe(c->out, ctl_jstr(node, "name"));
  }
  fputc('\n', c->out);
  status_label(c, 2, "parent:");
  fprintf(c->out, "%llu\n", ctl_ju64(node, "parent_id"));
  status_label(c, 2, "state:");
  ctl_paint(c, ctl_state_color(state), state != NULL ? state : "?");
  fputc('\n', c->out);
  status_label(c, 2, "outcome:");
  ctl_paint(c, ctl_outcome_color(outcome), outcome != NULL ? outcome : "?");
  fputc('\n', c->out);
  status_label(c, 2, "cancel requested:");
  fprintf(c->out, "%s\n", yes_no(ctl_jtrue(node, "cancel_requested")));
  status_label(c, 2, "stuck:");
  if (ctl_jtrue(node, "stuck"))
    ctl_paint(c, C_BOLD_RED, "yes");
  else
    fputs("no", c->out);
  fputc('\n', c->out);
  print_time(c, node, "created", "created:");
  print_time(c, node, "started", "started:");
  print_time(c, node, "stop_requested", "stop requested:");
  print_time(c, node, "finished", "finished:");
  status_label(c, 2, "children:");
  fprintf(c->out, "%llu (%llu live, %llu ever)\n", ctl_ju64(node, "children"),
          ctl_ju64(node, "live_children"), ctl_ju64(node, "children_total"));
  status_label(c, 2, "restarts:");
  fprintf(c->out, "%llu\n", ctl_ju64(node, "restarts"));
  print_other_fields(c, node, known, 2);
  if (cJSON_GetArraySize(attrs) > 0) {
    fputs("attributes:\n", c->out);
    cJSON_ArrayForEach(a, attrs) {
      fputs("  ", c->out);
      ctl_put_safe(c->out, a->string);
      fputs(" = ", c->out);
      ctl_put_safe(c->out, cJSON_IsString(a) ? a->valuestring : "?");
      fputc('\n', c->out);
    }
  }
  if (cJSON_IsObject(ctl_jget(node, "error"))) {
    fputs("error:\n", c->out);
    print_error_chain(c->out, ctl_jget(node, "error"), 2, "");
  }
  if (cJSON_IsObject(ctl_jget(node, "fiber")))
    print_status_fiber(c, ctl_jget(node, "fiber"));
  if (cJSON_IsObject(ctl_jget(node, "service")))
    print_status_service(c, ctl_jget(node, "service"));
  if (cJSON_IsArray(ctl_jget(node, "history")))
    print_status_history(c, ctl_jget(node, "history"));
}

/* ------------------------------------------------------------- events */

void ctl_print_event(struct ctl *c, const cJSON *ev) {
  const char *type = ctl_jstr(ev, "type"), *to = ctl_jstr(ev, "to"), *from = ctl_jstr(ev, "from");
  const cJSON *err = ctl_jget(ev, "error");

  if (ctl_jstr(ev, "time") != NULL)
    ctl_put_safe(c->out, ctl_jstr(ev, "time"));
  else
    fprintf(c->out, "%llu", ctl_ju64(ev, "time_ns"));
  fprintf(c->out, " #%llu ", ctl_ju64(ev, "seq"));
  ctl_put_safe(c->out, type != NULL ? type : "?");
  fputc(' ', c->out);
  ctl_put_safe(c->out, ctl_jstr(ev, "kind") ? ctl_jstr(ev, "kind") : "node");
  fprintf(c->out, " #%llu", ctl_ju64(ev, "node_id"));
  if (ctl_ju64(ev, "parent_id") != 0)
    fprintf(c->out, " (parent #%llu)", ctl_ju64(ev, "parent_id"));
  if (type != NULL && strcmp(type, "state") == 0 && to != NULL) {
    fputc(' ', c->out);
    ctl_paint(c, ctl_state_color(from), from != NULL ? from : "?");
    fputs(" -> ", c->out);
    ctl_paint(c, ctl_state_color(to), to);
  }
  if (cJSON_IsObject(err)) {
    fputs(" error: ", c->out);
    ctl_put_safe(c->out, ctl_jstr(err, "name") ? ctl_jstr(err, "name") : "?");
    fputs(": ", c->out);
    ctl_put_line(c->out, ctl_jstr(err, "message"));
  }
  fputc('\n', c->out);
}

/* One complete event: prints it. Returns non-zero once enough were printed. */
