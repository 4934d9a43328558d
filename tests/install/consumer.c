/* consumer.c - a program that uses an installed libarbor, built only with
 * `pkg-config --cflags --libs arbor` (tests/install/run.sh). It checks that the
 * installed header compiles cleanly, that the library links and loads, and that a
 * runtime opened on a caller's loop closes without leaving a handle behind. */
#include <arbor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Always on, whatever NDEBUG says. */
#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "consumer: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

static void on_close(arbor_runtime_t *rt, void *arg) {
  (void)rt;
  *(int *)arg += 1;
}

int main(void) {
  uv_loop_t loop;
  arbor_runtime_t *rt = NULL;
  arbor_node_t *root, *group = NULL;
  int closed = 0;

  CHECK(uv_loop_init(&loop) == 0);
  CHECK(arbor_runtime_new(&rt, &loop, NULL) == 0);
  root = arbor_root(rt);
  CHECK(root != NULL);
  CHECK(arbor_group_new(root, &(arbor_group_opts_t){.name = "consumer"}, &group) == 0);
  CHECK(group != NULL);

  CHECK(arbor_runtime_close(rt, on_close, &closed) == 0);
  CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  CHECK(closed == 1);
  CHECK(uv_loop_close(&loop) == 0);

  const char *msg = arbor_strerror(ARBOR_ECANCELED);
  CHECK(msg != NULL && strlen(msg) > 0);
  printf("consumer: arbor %d.%d.%d ok (ARBOR_ECANCELED: %s)\n", ARBOR_VERSION_MAJOR,
         ARBOR_VERSION_MINOR, ARBOR_VERSION_PATCH, msg);
  return 0;
}
