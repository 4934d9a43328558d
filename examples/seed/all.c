/* examples/seed/all.c - every seed service in one translation unit.
 *
 * The Makefile builds each program from its own .c file and the arbor library,
 * nothing else, so the programs that use the seed services (cmd/demo.c, which
 * the arbor binary and tests/demo/test_seed.c compile, and examples/seed_*.c)
 * include this file once: each gets its own copy, and no build rule has to know
 * about examples/seed/. The services keep their own files for reading; their
 * static names do not clash. */
#include "common.c"
#include "heartbeat.c"
#include "dbsync.c"
#include "peers.c"
#include "flaky.c"
#include "retry.c"
#include "breaker.c"
#include "crasher.c"
#include "example.c"
