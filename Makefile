# arbor Makefile (GNU make). `make help` lists the targets.
#
# Every build variant lives in its own directory, build/<compiler>-<mode>/, where
# mode is "opt" (SANITIZE empty) or "asan" (SANITIZE=address,undefined). So
#   make                                        -> build/gcc-opt/
#   make CC=clang SANITIZE=address,undefined    -> build/clang-asan/
# never share an object file, and switching between them rebuilds nothing.
#
#   make V=1        show the full command lines
#   make OPT=-O0    another optimisation level (the variant rebuilds: see FLAGS_STAMP)

# make's built-in default CC is "cc"; call it gcc so the variant is named after the
# compiler it really is (an explicit CC=cc still works and gets build/cc-*).
ifeq ($(origin CC),default)
CC = gcc
endif
AR ?= ar
PKG_CONFIG ?= pkg-config

# --------------------------------------------------------------- variant

comma := ,
SAN_ALL := address$(comma)undefined
SANITIZE ?=

# Sanitized builds use -O1: fast enough to run every test, yet the reports point at
# the right line. -O2 otherwise. OPT on the command line wins in both modes.
ifeq ($(SANITIZE),)
  MODE := opt
  OPT ?= -O2
else ifeq ($(SANITIZE),$(SAN_ALL))
  MODE := asan
  OPT ?= -O1
  SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
else
  $(error SANITIZE must be empty or "$(SAN_ALL)", not "$(SANITIZE)")
endif

# The compiler's own name, skipping a launcher: "ccache clang" -> clang.
CC_NAME := $(notdir $(firstword $(filter-out ccache distcc,$(CC))))
VARIANT := $(CC_NAME)-$(MODE)
BUILD := build/$(VARIANT)
OBJ := $(BUILD)/obj

# ----------------------------------------------------------------- version

# The version lives in include/arbor.h only; the soname follows its major number.
version_part = $(shell sed -n 's/^\#define ARBOR_VERSION_$(1)[[:space:]]*\([0-9]*\).*/\1/p' include/arbor.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)

STATIC_LIB := $(BUILD)/libarbor.a
SO_LINK := libarbor.so
SONAME := libarbor.so.$(VERSION_MAJOR)
SO_REAL := libarbor.so.$(VERSION)
SHARED_LIB := $(BUILD)/$(SO_REAL)

# ------------------------------------------------------------ dependencies

# pkg-config when it knows the package; the plain -l flag otherwise.
pkg_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pkg_libs = $(or $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null),$(2))

UV_CFLAGS := $(call pkg_cflags,libuv)
UV_LIBS := $(call pkg_libs,libuv,-luv)
CMOCKA_CFLAGS := $(call pkg_cflags,cmocka)
CMOCKA_LIBS := $(call pkg_libs,cmocka,-lcmocka)
MHD_CFLAGS := $(call pkg_cflags,libmicrohttpd)
MHD_LIBS := $(call pkg_libs,libmicrohttpd,-lmicrohttpd)
CJSON_CFLAGS := $(call pkg_cflags,libcjson)
CJSON_LIBS := $(call pkg_libs,libcjson,-lcjson)
CURL_CFLAGS := $(call pkg_cflags,libcurl)
CURL_LIBS := $(call pkg_libs,libcurl,-lcurl)

# What libarbor itself links against: libuv for the core, libmicrohttpd and cJSON
# for the admin server (http/), libcurl for the OTLP push exporter
# (tracing/otlp_push.c). -lm is cheap insurance for backoff maths; the
# shared library is linked with --as-needed, so it is recorded only if used.
LIBS := $(UV_LIBS) $(MHD_LIBS) $(CJSON_LIBS) $(CURL_LIBS) -lm
# Programs that talk HTTP as clients themselves: the daemon's `arbor ctl`, and the
# tests. (libarbor brings libcurl too, but a program calling it names it.)
CLIENT_LIBS := $(CURL_LIBS)

# ------------------------------------------------------------------ flags

STD := -std=c11 -D_GNU_SOURCE
WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith
DEBUG := -g
INCLUDES := -Iinclude -Isupervisor -Itracing
DEPFLAGS = -MMD -MP

# Fibers: supervisor/switch_<cpu>.S holds the context switch for one CPU. Only the
# one for the target CPU is assembled; when there is none (or with FIBER=ucontext)
# the C code is told to use ucontext instead, through ARBOR_FIBER_UCONTEXT.
FIBER ?= auto
ARCH := $(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1)
KNOWN_ARCHES := x86_64 aarch64 arm i386 i686 riscv64 ppc64le s390x
ASM_ALL := $(sort $(wildcard supervisor/*.S))
ASM_OTHER_CPUS := $(filter $(foreach a,$(filter-out $(ARCH),$(KNOWN_ARCHES)),%_$(a).S),$(ASM_ALL))
ASM_THIS_CPU := $(filter %_$(ARCH).S,$(ASM_ALL))
ifeq ($(FIBER),ucontext)
  ASM_SRCS := $(filter-out $(ASM_OTHER_CPUS) $(ASM_THIS_CPU),$(ASM_ALL))
  FIBER_FLAGS := -DARBOR_FIBER_UCONTEXT=1
else ifeq ($(FIBER),auto)
  ASM_SRCS := $(filter-out $(ASM_OTHER_CPUS),$(ASM_ALL))
  FIBER_FLAGS := $(if $(ASM_THIS_CPU),,-DARBOR_FIBER_UCONTEXT=1)
else
  $(error FIBER must be auto or ucontext, not "$(FIBER)")
endif

# User CFLAGS / CPPFLAGS / LDFLAGS come last so they can override ours.
# FIBER_FLAGS goes everywhere: tests include internal headers, whose layout may
# depend on it.
BASE_CFLAGS = $(STD) $(OPT) $(DEBUG) $(WARN) $(SAN_FLAGS) $(FIBER_FLAGS) $(INCLUDES) $(UV_CFLAGS) $(MHD_CFLAGS) $(CJSON_CFLAGS) $(CURL_CFLAGS) $(CPPFLAGS) $(CFLAGS)
# Library objects go into both the .a and the .so, so they are all PIC. Symbols are
# hidden unless arbor.h marks them ARBOR_EXTERN: the .so exports the API and nothing
# else (make check-symbols).
LIB_CFLAGS = $(BASE_CFLAGS) -fPIC -fvisibility=hidden
# Hand-written assembly: no C flags, and no executable stack if a file forgets its
# .note.GNU-stack section.
ASFLAGS_ALL = $(DEBUG) $(INCLUDES) $(FIBER_FLAGS) -fPIC -Wa,--noexecstack $(CPPFLAGS) $(ASFLAGS)
# cmocka test functions all take `void **state` and most ignore it.
TEST_CFLAGS = $(BASE_CFLAGS) -Itests $(CMOCKA_CFLAGS) -Wno-unused-parameter
LINK_FLAGS = $(SAN_FLAGS) $(LDFLAGS)

# -z defs: the .so must name every library it needs (a missing -luv fails here, not
# in a user's program). Not under sanitizers: clang leaves their runtime out of
# shared objects on purpose; the executable brings it.
SO_LDFLAGS = -shared -Wl,-soname,$(SONAME) -Wl,--as-needed $(if $(SAN_FLAGS),,-Wl$(comma)-z$(comma)defs)

# --------------------------------------------------------------- sources

# The library: the core (supervisor/, tracing/) and the admin server (http/). The
# daemon (cmd/) is a program on top of it.
LIB_SRCS := $(sort $(wildcard supervisor/*.c tracing/*.c http/*.c))
# The dashboard (web/) is in the library too, as a generated C file: see "The
# dashboard" below.
WEB_ASSETS_C := $(BUILD)/gen/web_assets.c
WEB_ASSETS_O := $(OBJ)/gen/web_assets.o
LIB_OBJS := $(LIB_SRCS:%.c=$(OBJ)/%.o) $(ASM_SRCS:%.S=$(OBJ)/%.o) $(WEB_ASSETS_O)

EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLES := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

# The daemon and its client: one program, build/<v>/arbor.
CMD_SRCS := $(sort $(wildcard cmd/*.c))
CMD_OBJS := $(CMD_SRCS:%.c=$(OBJ)/%.o)
ARBOR_BIN := $(if $(CMD_SRCS),$(BUILD)/arbor)

# arbor-exec, the helper that runs a process service's program as another user,
# with a umask or rlimits (exec/arbor_exec.c; why: supervisor/runas.c). libc only.
# libarbor runs the installed one, $(LIBEXECDIR)/arbor/arbor-exec, unless told
# otherwise (arbor_runtime_opts_t.exec_helper; the daemon takes the one beside it).
EXEC_HELPER := $(BUILD)/arbor-exec
EXEC_HELPER_OBJS := $(OBJ)/exec/arbor_exec.o

BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCHES := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

# Tests: every tests/**/test_*.c is one program, build/<v>/tests/<dir>/test_<name>.
# Any other .c under tests/ is shared test support, archived into libtestsupport.a:
# a test pulls in only the members it uses, so a helper program with its own main()
# may live there too. tests/install/ is the install smoke test, built on its own.
find_tests_c = $(sort $(shell find tests -name '$(1)' -not -path 'tests/install/*' -not -path '*/node_modules/*' 2>/dev/null))
TEST_SRCS := $(call find_tests_c,test_*.c)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_SRCS),$(call find_tests_c,*.c))
TESTS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_SUPPORT_LIB := $(if $(TEST_SUPPORT_SRCS),$(BUILD)/tests/libtestsupport.a)

ALL_OBJS := $(LIB_OBJS) $(CMD_OBJS) $(EXEC_HELPER_OBJS) $(EXAMPLE_SRCS:%.c=$(OBJ)/%.o) $(BENCH_SRCS:%.c=$(OBJ)/%.o) \
            $(TEST_SRCS:%.c=$(OBJ)/%.o) $(TEST_SUPPORT_SRCS:%.c=$(OBJ)/%.o)

# ------------------------------------------------------------ quiet output

ifeq ($(V),1)
  Q :=
  say :=
else
  Q := @
  say = @printf '  %-5s %s\n' $(1) $(2);
endif

# ------------------------------------------------------------------ build

.DEFAULT_GOAL := all
# A recipe that fails must not leave a half-written target that looks up to date.
.DELETE_ON_ERROR:
.PHONY: all lib examples tests check bench run deps clean help FORCE

all: lib examples $(ARBOR_BIN) $(EXEC_HELPER)

lib: $(STATIC_LIB) $(SHARED_LIB)

examples: $(EXAMPLES)

tests: $(TESTS)

# Changing flags (OPT=..., CFLAGS=..., another compiler of the same name) must
# rebuild the variant, yet make only sees timestamps. This file holds the flags of
# the last build and is rewritten only when they change; every object depends on it.
FLAGS_STAMP := $(BUILD)/flags
FLAGS_NOW = $(CC) | $(LIB_CFLAGS) | $(ASFLAGS_ALL) | $(TEST_CFLAGS) | $(LINK_FLAGS) | $(LIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(FLAGS_NOW))' | cmp -s - $@ || \
	  printf '%s\n' '$(subst ','\'',$(FLAGS_NOW))' > $@

# One compile rule; the flags depend on where the object goes.
$(OBJ)/%.o: OBJ_CFLAGS = $(BASE_CFLAGS)
$(OBJ)/supervisor/%.o $(OBJ)/tracing/%.o $(OBJ)/http/%.o: OBJ_CFLAGS = $(LIB_CFLAGS)
$(OBJ)/tests/%.o: OBJ_CFLAGS = $(TEST_CFLAGS)

$(OBJ)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(OBJ_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(OBJ)/%.o: %.S $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call say,AS,$@)$(CC) $(ASFLAGS_ALL) $(DEPFLAGS) -c $< -o $@

# The libraries also depend on the list of their objects: make cannot see a deleted
# source, and a stale object left in the archive could win a static link (a weak
# placeholder over the real function). This file changes only when the list does.
LIB_OBJS_STAMP := $(BUILD)/lib-objs
$(LIB_OBJS_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' $(LIB_OBJS) | cmp -s - $@ || printf '%s\n' $(LIB_OBJS) > $@

# The dashboard. Every file of web/ (flat: no subdirectories; no dot files or
# editor backups) becomes bytes in $(WEB_ASSETS_C), with its content type and
# ETag, written by mk/embed.c, a host program built here; http/static.c serves
# that table, so the binary needs nothing from the file system at run time. The
# file is rewritten when any web file changes, or when one is added or removed
# (the list is a stamp, as for the objects above). embed refuses a file the
# server could not label (an extension it has no content type for).
WEB_FILES := $(sort $(shell find web -maxdepth 1 -type f -not -name '.*' -not -name '*~' 2>/dev/null))
WEB_FILES_STAMP := $(BUILD)/web-files
EMBED := $(BUILD)/mk/embed
# The build machine's compiler, without sanitizers or the library's flags.
HOST_CC ?= $(CC)
$(WEB_FILES_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' $(WEB_FILES) | cmp -s - $@ || printf '%s\n' $(WEB_FILES) > $@

$(EMBED): mk/embed.c
	@mkdir -p $(@D)
	$(call say,CC,$@)$(HOST_CC) $(STD) -O2 $(WARN) -o $@ $<

$(WEB_ASSETS_C): $(EMBED) $(WEB_FILES) $(WEB_FILES_STAMP)
	@mkdir -p $(@D)
	$(call say,GEN,$@)$(EMBED) $@ $(WEB_FILES)

# Compiled like http/*.c (it includes http/http.h for struct http_asset).
$(WEB_ASSETS_O): $(WEB_ASSETS_C) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(LIB_CFLAGS) -Ihttp $(DEPFLAGS) -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS) $(LIB_OBJS_STAMP)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $(LIB_OBJS)

# The real file carries the full version; libarbor.so.0 (the soname, what programs
# load) and libarbor.so (what -larbor finds) point at it, as Debian lays them out.
$(SHARED_LIB): $(LIB_OBJS) $(LIB_OBJS_STAMP)
	$(call say,LINK,$@)$(CC) $(SO_LDFLAGS) $(LINK_FLAGS) -o $@ $(LIB_OBJS) $(LIBS)
	$(Q)ln -sf $(SO_REAL) $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SO_REAL) $(BUILD)/$(SO_LINK)

# Programs link the static library: they run from the build tree without
# LD_LIBRARY_PATH, and tests may call internal (hidden) arbor__ functions.
$(EXAMPLES): $(BUILD)/examples/%: $(OBJ)/examples/%.o $(STATIC_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(LINK_FLAGS) -o $@ $^ $(LIBS)

$(ARBOR_BIN): $(CMD_OBJS) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(LINK_FLAGS) -o $@ $^ $(CLIENT_LIBS) $(LIBS)

# Static (but under sanitizers, whose runtimes are shared): it runs before every
# start of such a service, and not loading libc.so saves a third of its cost
# (bench/bench_exec.c). It uses no NSS (ids are numbers), so static glibc is safe.
$(EXEC_HELPER): $(EXEC_HELPER_OBJS)
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(LINK_FLAGS) $(if $(SAN_FLAGS),,-static) -o $@ $^

# The helper's installed path is compiled into runas.o alone; this stamp changes
# (and rebuilds it) only when the path does, e.g. make install PREFIX=/opt/arbor.
PREFIX ?= /usr/local
LIBEXECDIR ?= $(PREFIX)/libexec
EXEC_HELPER_PATH = $(LIBEXECDIR)/arbor/arbor-exec
EXEC_PATH_STAMP := $(BUILD)/exec-helper-path
$(EXEC_PATH_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(EXEC_HELPER_PATH)' | cmp -s - $@ || printf '%s\n' '$(EXEC_HELPER_PATH)' > $@
$(OBJ)/supervisor/runas.o: $(EXEC_PATH_STAMP)
$(OBJ)/supervisor/runas.o: OBJ_CFLAGS = $(LIB_CFLAGS) -DARBOR_EXEC_HELPER_PATH='"$(EXEC_HELPER_PATH)"'

$(BENCHES): $(BUILD)/bench/%: $(OBJ)/bench/%.o $(STATIC_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(LINK_FLAGS) -o $@ $^ $(LIBS)

$(TEST_SUPPORT_LIB): $(TEST_SUPPORT_SRCS:%.c=$(OBJ)/%.o)
	@mkdir -p $(@D)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

$(TESTS): $(BUILD)/tests/%: $(OBJ)/tests/%.o $(TEST_SUPPORT_LIB) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(LINK_FLAGS) -o $@ $^ $(CMOCKA_LIBS) $(CLIENT_LIBS) $(LIBS)

# tests/exhaust/test_alloc_fail fails arbor's allocations one at a time: its own
# link routes every malloc, calloc, realloc and strdup of libarbor's objects
# through wrappers in the test (--wrap), so the library has no hook at all.
# private: not inherited by the prerequisites (arbor-exec links without them).
$(BUILD)/tests/exhaust/test_alloc_fail: private LINK_FLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup

# The daemon's tests run the binary; process services' tests run arbor-exec.
$(filter $(BUILD)/tests/cmd/%,$(TESTS)): | $(ARBOR_BIN)
$(TESTS): | $(EXEC_HELPER)

-include $(ALL_OBJS:.o=.d)

# ------------------------------------------------------------------ tests

TEST_TIMEOUT ?= 60
TEST_JOBS ?= 2
# Only used by sanitized runs: leaks fail a test, and the first report stops it.
ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1
UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
TEST_ENV = TEST_JOBS=$(TEST_JOBS) $(if $(SAN_FLAGS),ASAN_OPTIONS=$(ASAN_OPTIONS) UBSAN_OPTIONS=$(UBSAN_OPTIONS))

# make check: build this variant and run its tests, each test in its own process.
check: all tests
	$(Q)$(TEST_ENV) tests/run-tests.sh $(BUILD) $(TEST_TIMEOUT)

# The two runs `make test` does, and the builds it only compiles. Each is a make
# of its own variant, so they can also be run one by one.
OPT_CC ?= gcc
ASAN_CC ?= clang
.PHONY: test test-opt test-asan test-builds test-install test-valgrind check-symbols test-web

test-opt:
	$(Q)$(MAKE) --no-print-directory CC=$(OPT_CC) SANITIZE= check

test-asan:
	$(Q)$(MAKE) --no-print-directory CC=$(ASAN_CC) SANITIZE=$(SAN_ALL) check

# Both compilers in both modes, warning-free: the two variants no test run covers.
test-builds:
	$(Q)$(MAKE) --no-print-directory CC=$(ASAN_CC) SANITIZE= all tests
	$(Q)$(MAKE) --no-print-directory CC=$(OPT_CC) SANITIZE=$(SAN_ALL) all tests

# The exported symbols of the .so are exactly the ARBOR_EXTERN declarations.
check-symbols: $(SHARED_LIB)
	$(Q)mk/check-symbols.sh $(SHARED_LIB) include/arbor.h $(wildcard include/arbor/*.h)

# Installs into a temporary prefix and builds a program against it with pkg-config.
test-install:
	$(Q)MAKE='$(MAKE)' CC='$(CC)' tests/install/run.sh

# The optimised tests under valgrind's memcheck: the last stage of `make test`
# (about 35 s), so the fiber switches' ASan and valgrind annotations stay honest.
VALGRIND ?= valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
test-valgrind:
	$(Q)$(MAKE) --no-print-directory CC=$(OPT_CC) SANITIZE= tests
	$(Q)RT_LOGDIR=build/$(OPT_CC)-opt/test-logs-valgrind TEST_JOBS=$(TEST_JOBS) \
	  TEST_WRAPPER='$(VALGRIND)' tests/run-tests.sh build/$(OPT_CC)-opt $$(( $(TEST_TIMEOUT) * 5 ))

# The dashboard in headless Chromium against the optimised daemon (tests/web/run.sh).
# Without Node, Chromium or tests/web/node_modules its tests count as skipped
# (exit 77), never as passed, and the stage does not fail.
test-web:
	$(Q)$(MAKE) --no-print-directory CC=$(OPT_CC) SANITIZE= all
	$(Q)bash tests/web/run.sh build/$(OPT_CC)-opt; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 77 ]

# The chaos test (tests/chaos/run.sh): one `arbor run --demo` daemon, thousands of
# random actions (API cancels and restarts, kill -9, SIGHUP reloads, live changes)
# while SSE clients follow, then the tree's invariants, no zombie, no leftover
# process, fds back to the baseline, RSS flat. gcc -O2 with CHAOS_ACTIONS actions
# after a warm-up (about 70 s), then the ASan build without the warm-up and the RSS
# check (ASan's quarantine keeps freed memory on purpose), for memory errors and,
# at its exit, leaks in arbor under the same storm (about 30 s). Skipped without Node.
CHAOS_ACTIONS ?= 2000
CHAOS_ASAN_ACTIONS ?= 2000
.PHONY: test-chaos soak
test-chaos:
	$(Q)$(MAKE) --no-print-directory CC=$(OPT_CC) SANITIZE= all
	$(Q)$(MAKE) --no-print-directory CC=$(ASAN_CC) SANITIZE=$(SAN_ALL) all
	$(Q)failed=; \
	bash tests/chaos/run.sh build/$(OPT_CC)-opt --actions $(CHAOS_ACTIONS); rc=$$?; \
	[ $$rc -eq 0 ] || [ $$rc -eq 77 ] || failed=1; \
	ASAN_OPTIONS=$(ASAN_OPTIONS) UBSAN_OPTIONS=$(UBSAN_OPTIONS) \
	  bash tests/chaos/run.sh build/$(ASAN_CC)-asan --actions $(CHAOS_ASAN_ACTIONS) --no-warmup; rc=$$?; \
	[ $$rc -eq 0 ] || [ $$rc -eq 77 ] || failed=1; \
	[ -z "$$failed" ]

# The soak (not in make test): SOAK_SECONDS (default 600) of the chaos driver at a
# gentle SOAK_RATE actions/s against `arbor run --demo` (gcc -O2; from the start: no
# full-speed warm-up, the figure shows memory fill up), the invariants checked each
# minute, a /metrics scrape every 5 s into build/<v>/soak/soak.csv, plotted to soak.png
# (tests/chaos/plot.mjs, headless Chromium). One core: run it on a quiet machine.
SOAK_SECONDS ?= 600
SOAK_RATE ?= 5
soak:
	$(Q)$(MAKE) --no-print-directory CC=$(OPT_CC) SANITIZE= all
	$(Q)mkdir -p build/$(OPT_CC)-opt/soak
	$(Q)CHAOS_TIMEOUT=$$(( $(SOAK_SECONDS) + 300 )) bash tests/chaos/run.sh build/$(OPT_CC)-opt \
	  --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE) --no-warmup --csv build/$(OPT_CC)-opt/soak/soak.csv
	$(Q)node tests/chaos/plot.mjs build/$(OPT_CC)-opt/soak/soak.csv build/$(OPT_CC)-opt/soak/soak.png \
	  "arbor soak: $(SOAK_SECONDS) s of chaos at $(SOAK_RATE) actions/s, arbor run --demo"

# make test: everything CI checks. A failing stage does not stop the later ones (a
# failure under gcc says little about clang, and the totals should count every
# test), but make test fails if any stage failed. The last line totals the test
# cases of both runs, from the summary file run-tests.sh leaves in each build dir.
TEST_STAGES := test-opt check-symbols test-web test-chaos test-asan test-builds test-install test-valgrind fuzz-replay
test:
	$(Q)rm -f build/*/test-logs*/summary
	$(Q)failed=; \
	for stage in $(TEST_STAGES); do \
	  echo "==> make $$stage"; \
	  case $$stage in \
	    check-symbols|test-install) set -- CC=$(OPT_CC) SANITIZE= ;; \
	    *) set -- ;; \
	  esac; \
	  $(MAKE) --no-print-directory "$$@" $$stage || failed="$$failed $$stage"; \
	done; \
	[ -z "$$failed" ] || echo "make test: FAILED:$$failed"; \
	cat build/*/test-logs*/summary 2>/dev/null | \
	  awk '{ p += $$1; f += $$3; s += $$5 } \
	       END { printf "%d passed, %d failed", p, f; if (s) printf ", %d skipped", s; print "" }'; \
	[ -z "$$failed" ]

# ------------------------------------------------------------ bench, run

# Benchmarks are built like everything else (-O2, asserts stay on) and run by
# bench/run.sh, which gets the build directory. Nothing to do without bench/.
bench: $(BENCHES)
	$(Q)if [ -f bench/run.sh ]; then bash bench/run.sh $(BUILD); \
	else echo "bench: no bench/run.sh; built $(words $(BENCHES)) benchmark(s) in $(BUILD)/bench"; fi

# What `make run` starts, after installing missing packages and building.
RUN_CMD ?= $(BUILD)/arbor demo
run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(RUN_CMD)

deps:
	$(Q)scripts/deps.sh

# ------------------------------------------------------------------ fuzz

# libFuzzer drivers (fuzz/): make fuzz-build, make fuzz (not part of make test);
# make fuzz-replay (every committed input once) is make test's last stage.
include fuzz/fuzz.mk

# --------------------------------------------------------------- install

LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
INSTALL ?= install
# Libraries a static link of libarbor needs besides libuv (which Requires: brings).
# libcurl is named here, not in Requires.private: pkg-config --static would then
# add libcurl's own private libraries (-lldap, -lzstd ...), whose development
# files a Debian system with libcurl4-openssl-dev does not have; -lcurl takes
# the shared libcurl, which brings them itself.
PC_LIBS_PRIVATE := $(MHD_LIBS) $(CJSON_LIBS) $(CURL_LIBS) -lm

.PHONY: install uninstall
ifneq ($(SAN_FLAGS),)
ifneq ($(filter install,$(MAKECMDGOALS)),)
  $(error refusing to install a sanitized build; use SANITIZE= (the default))
endif
endif
install: lib $(ARBOR_BIN) $(EXEC_HELPER)
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR)/arbor $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/arbor
	$(INSTALL) -m 755 $(ARBOR_BIN) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 755 $(EXEC_HELPER) $(DESTDIR)$(LIBEXECDIR)/arbor/
	$(INSTALL) -m 644 include/arbor.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 644 $(wildcard include/arbor/*.h) $(DESTDIR)$(INCLUDEDIR)/arbor/
	$(INSTALL) -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_LINK)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(PC_LIBS_PRIVATE)|g' arbor.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/arbor.pc
# A system-wide install must refresh the loader's cache, or programs cannot find
# libarbor.so.0 until someone runs ldconfig. Staged installs (DESTDIR) must not.
ifeq ($(DESTDIR),)
ifneq ($(filter /usr /usr/local,$(PREFIX)),)
	-ldconfig
endif
endif

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/arbor.h $(patsubst include/%,$(DESTDIR)$(INCLUDEDIR)/%,$(wildcard include/arbor/*.h))
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,libarbor.a $(SO_REAL) $(SONAME) $(SO_LINK))
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/arbor.pc $(DESTDIR)$(BINDIR)/arbor
	rm -f $(DESTDIR)$(LIBEXECDIR)/arbor/arbor-exec
	rmdir $(DESTDIR)$(INCLUDEDIR)/arbor 2>/dev/null || true
	rmdir $(DESTDIR)$(LIBEXECDIR)/arbor 2>/dev/null || true

# ----------------------------------------------------------------- misc

clean:
	rm -rf build

help:
	@echo 'make                 libarbor.a, libarbor.so and examples in $(BUILD)/'
	@echo 'make check           build this variant and run its tests'
	@echo 'make test            everything CI checks: $(TEST_STAGES)'
	@echo '  make test-opt        tests, $(OPT_CC) -O2'
	@echo '  make test-asan       tests, $(ASAN_CC) -O1 with ASan + UBSan'
	@echo '  make test-builds     the other two variants, build only'
	@echo '  make check-symbols   the .so exports exactly the ARBOR_EXTERN API'
	@echo '  make test-install    install to a temp prefix, build a pkg-config consumer'
	@echo '  make test-web        the dashboard in headless Chromium (tests/web; skipped without it)'
	@echo '  make test-chaos      the chaos test (tests/chaos; skipped without Node)'
	@echo '  make fuzz-replay     the fuzz drivers (clang) on every committed input, once'
	@echo 'make test-valgrind   the tests under valgrind (slow; not part of make test)'
	@echo 'make soak            SOAK_SECONDS=600 of chaos with a /metrics scrape, plotted (not in make test)'
	@echo 'make bench           build bench/*.c and run bench/run.sh'
	@echo 'make fuzz            libFuzzer drivers (fuzz/), each for FUZZ_SECONDS=$(FUZZ_SECONDS); make fuzz-build'
	@echo 'make run             install missing packages, build, run $(RUN_CMD)'
	@echo 'make install         PREFIX=$(PREFIX) DESTDIR=; make uninstall'
	@echo 'make clean           remove build/'
	@echo 'Variables: CC=gcc|clang  SANITIZE=|$(SAN_ALL)  OPT=-O2  V=1  FIBER=auto|ucontext'
