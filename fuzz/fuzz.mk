# fuzz/fuzz.mk - the libFuzzer drivers (docs/RELIABILITY.md, "Fuzzing"), included by the Makefile.
#
#   make fuzz-build                 build every driver into build/fuzz/fuzz/
#   make fuzz [FUZZ_SECONDS=60]     replay fuzz/regressions/, then run each driver
#                                   for FUZZ_SECONDS from its corpus, one at a time
#   make fuzz FUZZ_DRIVERS=http     one driver
#   make fuzz-replay                build, then run every committed input once
#                                   (regressions and seed corpora): a stage of
#                                   make test, so the drivers keep compiling
#                                   and a fixed crash stays fixed
#
# The drivers and libarbor are built by a make of their own variant,
# build/fuzz/ (clang, ASan + UBSan, every object also instrumented for
# coverage with -fsanitize=fuzzer-no-link), so fuzzing never rebuilds or
# disturbs build/gcc-opt or build/clang-asan. New corpus entries go to
# build/fuzz/corpus/<driver>/, never into fuzz/corpus/ (committed seeds only).

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_ALL := config service envfile http views
FUZZ_DRIVERS ?= $(FUZZ_ALL)
# libFuzzer options for every run: one process, one core; a hang is an input
# that takes over 10 s.
FUZZ_FLAGS ?= -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

FUZZ_BINS = $(FUZZ_DRIVERS:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_SUPPORT_OBJS = $(OBJ)/fuzz/support.o
# The daemon's config parser, without its main or anything that runs.
FUZZ_CMD_OBJS = $(addprefix $(OBJ)/cmd/,config.o config_read.o config_syntax.o config_exec.o config_probe.o)

.PHONY: fuzz fuzz-build fuzz-replay fuzz-drivers

# From the top-level make: the fuzz variant, then the runs.
fuzz-build:
	$(Q)$(MAKE) --no-print-directory CC=$(FUZZ_CC) SANITIZE=$(SAN_ALL) OPT=-O2 \
	  BUILD=$(FUZZ_BUILD) CFLAGS=-fsanitize=fuzzer-no-link FUZZ_DRIVERS='$(FUZZ_DRIVERS)' fuzz-drivers

fuzz: fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_FLAGS='$(FUZZ_FLAGS)' fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_DRIVERS)

fuzz-replay: fuzz-build
	$(Q)FUZZ_SECONDS=0 FUZZ_FLAGS='$(FUZZ_FLAGS)' fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_DRIVERS)

# Inside the fuzz variant's make.
fuzz-drivers: $(FUZZ_BINS)

# Objects made through the pattern rule below are kept (make would delete them
# as intermediates and rebuild them next time).
.SECONDARY: $(FUZZ_DRIVERS:%=$(OBJ)/fuzz/fuzz_%.o) $(FUZZ_SUPPORT_OBJS) $(FUZZ_CMD_OBJS)

$(OBJ)/fuzz/%.o: OBJ_CFLAGS = $(BASE_CFLAGS) -Ifuzz -Ihttp -Icmd
# The drivers' own checks (a JSON and UTF-8 validator, the HTTP client) are
# not what is fuzzed: without coverage instrumentation they run 3x faster and
# add no features that would make libFuzzer keep inputs for their sake.
$(OBJ)/fuzz/support.o: OBJ_CFLAGS = $(BASE_CFLAGS) -Ifuzz -Ihttp -Icmd -fno-sanitize=fuzzer-no-link

$(BUILD)/fuzz/fuzz_%: $(OBJ)/fuzz/fuzz_%.o $(FUZZ_SUPPORT_OBJS) $(FUZZ_CMD_OBJS) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)$(CC) $(LINK_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

-include $(wildcard $(OBJ)/fuzz/*.d)
