#!/bin/sh
# fuzz/run.sh BUILD DRIVER... - what `make fuzz` (and, with FUZZ_SECONDS=0,
# `make fuzz-replay`) runs (docs/RELIABILITY.md, "Fuzzing").
#
# For each driver, one after the other (one core): first every reproducer of
# fuzz/regressions/<driver>/ (a crash found once must stay fixed), then the
# fuzzer for FUZZ_SECONDS from fuzz/corpus/<driver>/ (read only) plus
# BUILD/corpus/<driver>/ (where new inputs go), with fuzz/dict/<driver>.dict
# when there is one. Fails at the first crash, leak, hang or broken invariant;
# libFuzzer leaves the input as BUILD/crashes/<driver>/crash-* (or leak-*,
# timeout-*). Each run's log: BUILD/logs/<driver>.log.
set -u
# Drivers write their inputs to files (config, env file): a tmpfs makes that
# cheap (twice the executions a second of a disk-backed /tmp).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
build=$1
shift
seconds=${FUZZ_SECONDS:-60}
flags=${FUZZ_FLAGS:--timeout=10 -rss_limit_mb=2048 -print_final_stats=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=
for d in "$@"; do
  bin=$build/fuzz/fuzz_$d
  regs=fuzz/regressions/$d
  if [ -d "$regs" ] && [ -n "$(ls -A "$regs" 2>/dev/null)" ]; then
    echo "==> fuzz_$d: replaying $regs"
    if ! "$bin" $flags -runs=1 "$regs"/* >"$build/replay-$d.log" 2>&1; then
      echo "fuzz_$d: a regression input fails again (log: $build/replay-$d.log)"
      failed="$failed $d"
      continue
    fi
  fi
  mkdir -p "$build/corpus/$d" "$build/crashes/$d" "$build/logs"
  if [ "$seconds" = 0 ]; then
    # Replay only (make fuzz-replay, in make test): every committed seed once.
    echo "==> fuzz_$d: replaying fuzz/corpus/$d"
    # shellcheck disable=SC2086
    if ! "$bin" $flags -runs=0 -artifact_prefix="$build/crashes/$d/" "fuzz/corpus/$d" \
        >"$build/logs/$d-replay.log" 2>&1; then
      tail -n 30 "$build/logs/$d-replay.log"
      echo "fuzz_$d: a seed fails (input in $build/crashes/$d/)"
      failed="$failed $d"
    fi
    continue
  fi
  dict=
  [ -f "fuzz/dict/$d.dict" ] && dict=-dict=fuzz/dict/$d.dict
  echo "==> fuzz_$d: ${seconds}s (log: $build/logs/$d.log)"
  # shellcheck disable=SC2086
  if nice -n 10 "$bin" $flags $dict -max_total_time="$seconds" \
      -artifact_prefix="$build/crashes/$d/" "$build/corpus/$d" "fuzz/corpus/$d" \
      >"$build/logs/$d.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$build/logs/$d.log" |
      tr '\n' ' '
    echo
  else
    tail -n 30 "$build/logs/$d.log"
    echo "fuzz_$d: FAILED (input in $build/crashes/$d/)"
    failed="$failed $d"
  fi
done
[ -z "$failed" ] || { echo "make fuzz: FAILED:$failed"; exit 1; }
