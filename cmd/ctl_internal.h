/* cmd/ctl_internal.h - what ctl.c and ctl_print.c share. Not installed. */
#ifndef ARBOR_CMD_CTL_INTERNAL_H
#define ARBOR_CMD_CTL_INTERNAL_H

#include <signal.h>
#include <stdio.h>

#include <cJSON.h>
#include <curl/curl.h>

#include "ctl.h"

#define CTL_MAX_TREE_DEPTH 64        /* the server's own maximum */

/* Where a run writes and how its follow loops behave. arbor_ctl_main() fills it
 * for a real process; tests fill it with their own files and short delays. */
struct ctl_io {
  FILE *out, *err;
  int color;                        /* -1: decide (a terminal, NO_COLOR unset); 0; 1 */
  const volatile sig_atomic_t *stop;/* set: the follow commands end (status 0) */
  int catch_signals;                /* 1: SIGINT/SIGTERM set *stop while following */
  unsigned poll_ms;                 /* log -f: between two polls (200) */
  unsigned reconnect_ms;            /* events: first pause before a reconnect (500) */
  unsigned reconnect_max_ms;        /* events: the pause doubles up to this (5000) */
  unsigned reconnect_tries;         /* events: failed attempts in a row before
                                       giving up with status 3 (20) */
};

/* One run of ctl. */
struct ctl {
  const struct ctl_io *io;
  FILE *out, *err;
  int color;                        /* ANSI colours on out */
  char *base;                       /* "http://host:port", no trailing slash */
  char *token;                      /* NULL: no Authorization header */
  const char *token_from;           /* where it came from, for the 401 message */
  CURL *curl;
  char errbuf[CURL_ERROR_SIZE];
  const char *req_body;             /* the next request's JSON body; NULL: none */
  size_t req_body_len;
};

/* ---------------------------------------------------- output (ctl_print.c) */

/* ANSI SGR colours, used only when c->color. */
#define C_RED "31"
#define C_BOLD_RED "1;31"
#define C_GREEN "32"
#define C_YELLOW "33"
#define C_MAGENTA "35"
#define C_CYAN "36"
#define C_DIM "2"

/* Writes server text with its control characters (ESC above all) shown as '?':
 * names and messages are data, not terminal commands. NULL prints nothing. */
void ctl_put_safe(FILE *f, const char *s);
/* The first line of s only, made safe like ctl_put_safe. */
void ctl_put_line(FILE *f, const char *s);
/* text (made safe) in colour sgr when colours are on. */
void ctl_paint(struct ctl *c, const char *sgr, const char *text);
/* The colour of a state or outcome name; NULL: none. */
const char *ctl_state_color(const char *state);
const char *ctl_outcome_color(const char *outcome);

/* Fields of a JSON object; NULL, 0 or dflt when absent or of another type. */
const char *ctl_jstr(const cJSON *obj, const char *key);
double ctl_jnum(const cJSON *obj, const char *key, double dflt);
unsigned long long ctl_ju64(const cJSON *obj, const char *key);
int ctl_jtrue(const cJSON *obj, const char *key);
const cJSON *ctl_jget(const cJSON *obj, const char *key);

/* A /api/v1/tree answer ({"root": TREE_NODE, "depth": D}) drawn like pstree.
 * Returns -1 (printing nothing) when it has no root. */
int ctl_print_tree(struct ctl *c, const cJSON *answer);
/* A node detail answer: every field, the error chain, the fiber and service
 * parts and the restart history. */
void ctl_print_status(struct ctl *c, const cJSON *node);
/* One event on one line: "TIME #SEQ TYPE KIND #ID (parent #P) FROM -> TO
 * error: NAME: message". */
void ctl_print_event(struct ctl *c, const cJSON *ev);

#endif /* ARBOR_CMD_CTL_INTERNAL_H */
