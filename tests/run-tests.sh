#!/usr/bin/env bash
# tests/run-tests.sh BUILD_DIR [TIMEOUT]
#
# Runs every test of one build variant, each in its own process, as libuv's runner
# does: a crash or a hang fails that one test, not the run.
#
#  - Test programs are the executables named test_* under BUILD_DIR/tests.
#  - `PROG --list` prints its test names, one a line; `PROG --run NAME` runs one
#    (tests/harness.h). Exit 0 passes, 77 skips, anything else fails.
#  - Each test gets TIMEOUT seconds (default 60), then SIGTERM, then SIGKILL 5 s
#    later. timeout(1) signals the whole process group, so children the test
#    spawned go too.
#  - TEST_JOBS (default 2) tests run at once. Each result is printed in one piece
#    under a lock, so lines never interleave.
#  - TEST_WRAPPER, if set, is put in front of every test (e.g. valgrind ...).
#  - Every test's output is kept in BUILD_DIR/test-logs/<prog>/<name>.log; on a
#    failure its first 12 and last 28 lines are printed (the assertion, then the
#    sanitizer report or crash).
#  - The last line is the summary, "N passed, N failed[, N skipped]", also written
#    to BUILD_DIR/test-logs/summary (make test adds up those files).
#
# Exits 0 when nothing failed, 1 when a test failed, 2 on a usage error.
set -u

# ---------------------------------------------------------------- one test
# Called back through xargs as: run-tests.sh --one "PROG<TAB>NAME". The run's
# settings come from the environment the main part exported.
if [ "${1:-}" = "--one" ]; then
  prog=${2%%$'\t'*}
  name=${2#*$'\t'}
  rel=${prog#"$RT_TESTDIR"/}
  log="$RT_LOGDIR/$rel/${name//\//_}.log"
  mkdir -p "${log%/*}"

  start=$(date +%s)
  # The outer 2>/dev/null only silences bash's own "Killed" notice for a test
  # that needed SIGKILL; the test's output goes to its log.
  # shellcheck disable=SC2086 # TEST_WRAPPER is a command line, split on purpose
  { timeout -k 5 "$RT_TIMEOUT" ${TEST_WRAPPER:-} "$prog" --run "$name" >"$log" 2>&1 </dev/null; } 2>/dev/null
  rc=$?
  elapsed=$(($(date +%s) - start))

  # timeout(1) exits 124 when it sent SIGTERM, and 137 (128+KILL) when it had to
  # follow up with SIGKILL, which a test killed by SIGKILL also gives: tell them
  # apart by the time taken.
  detail=
  if [ "$rc" -eq 0 ]; then
    status=ok
  elif [ "$rc" -eq 77 ]; then
    status=skip
  elif [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ "$elapsed" -ge "$RT_TIMEOUT" ]; }; then
    status=TIMEOUT detail=" (no result after ${RT_TIMEOUT}s)"
  elif [ "$rc" -gt 128 ]; then
    status=FAIL detail=" (killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
  else
    status=FAIL detail=" (exit $rc)"
  fi

  # One block per test, written under the lock so parallel tests never interleave.
  {
    flock 9
    printf '%-4s %s: %s%s\n' "$status" "$rel" "$name" "$detail"
    if [ "$status" = FAIL ] || [ "$status" = TIMEOUT ]; then
      # The first lines hold the failed assertion, the last ones a sanitizer's
      # report or the crash; show both ends of a long log.
      lines=$(wc -l <"$log")
      if [ "$lines" -le 40 ]; then
        sed 's/^/     | /' "$log"
      else
        head -n 12 "$log" | sed 's/^/     | /'
        printf '     | ... %d lines ...\n' $((lines - 40))
        tail -n 28 "$log" | sed 's/^/     | /'
      fi
      printf '     (full output: %s)\n' "$log"
    fi
    printf '%s %s: %s\n' "$status" "$rel" "$name" >>"$RT_RESULTS"
  } 9>>"$RT_LOCK"
  exit 0
fi

# --------------------------------------------------------------- main part
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR [TIMEOUT]   (BUILD_DIR as build/gcc-opt)" >&2
  exit 2
fi
build=${1%/}
export RT_TIMEOUT=${2:-60}
export RT_TESTDIR="$build/tests"
export RT_LOGDIR="${RT_LOGDIR:-$build/test-logs}"   # test-valgrind keeps its own
export RT_RESULTS="$RT_LOGDIR/results"
export RT_LOCK="$RT_LOGDIR/.lock"
jobs=${TEST_JOBS:-2}

rm -rf "$RT_LOGDIR"
mkdir -p "$RT_LOGDIR"
: >"$RT_RESULTS"
queue="$RT_LOGDIR/queue"
: >"$queue"

# Ask every program for its tests; a program that cannot list them fails once.
programs=$(find "$RT_TESTDIR" -type f -name 'test_*' -perm -u+x 2>/dev/null | sort)
if [ -z "$programs" ]; then
  echo "run-tests: warning: no test programs under $RT_TESTDIR"
fi
for prog in $programs; do
  rel=${prog#"$RT_TESTDIR"/}
  if ! names=$(timeout 30 "$prog" --list 2>"$RT_LOGDIR/list.err"); then
    printf 'FAIL %s: --list failed\n' "$rel"
    sed 's/^/     | /' "$RT_LOGDIR/list.err" | tail -n 30
    printf 'FAIL %s: --list\n' "$rel" >>"$RT_RESULTS"
    continue
  fi
  names=$(printf '%s\n' "$names" | tr -d '\r' | grep -v '^[[:space:]]*$' || true)
  if [ -z "$names" ]; then
    printf 'FAIL %s: --list printed no test\n' "$rel"
    printf 'FAIL %s: --list\n' "$rel" >>"$RT_RESULTS"
    continue
  fi
  printf '%s\n' "$names" | while IFS= read -r name; do
    printf '%s\t%s\n' "$prog" "$name"
  done >>"$queue"
done
rm -f "$RT_LOGDIR/list.err"

# Workers always exit 0 (their verdict is in the results file), so xargs runs the
# whole queue.
xargs -d '\n' -n 1 -P "$jobs" -r "$BASH" "$0" --one <"$queue"
rm -f "$queue" "$RT_LOCK"

passed=$(grep -c '^ok ' "$RT_RESULTS")
skipped=$(grep -c '^skip ' "$RT_RESULTS")
failed=$(grep -Ec '^(FAIL|TIMEOUT) ' "$RT_RESULTS")

if [ "$failed" -gt 0 ]; then
  echo
  echo "failed ($build):"
  grep -E '^(FAIL|TIMEOUT) ' "$RT_RESULTS" | sort | sed 's/^/  /'
fi
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary" >"$RT_LOGDIR/summary"
echo "$summary"
[ "$failed" -eq 0 ]
