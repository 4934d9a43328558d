#!/usr/bin/env bash
# tests/chaos/run.sh BUILD_DIR [chaos.mjs options]: the chaos test as a stage of
# `make test` (make test-chaos), or by hand.
#
# Needs Node.js (the driver is tests/chaos/chaos.mjs; it needs no npm package).
# Without it the test is SKIPPED (exit 77, "SKIPPED: why"), never passed;
# CHAOS_REQUIRE=1 (CI) makes that a failure. The output is kept in
# BUILD_DIR/test-logs-chaos/chaos.log, and the summary line ("1 passed, 0
# failed") in BUILD_DIR/test-logs-chaos/summary, which make test adds up. The
# whole run is bounded by CHAOS_TIMEOUT seconds (default 300).
#
# Exit: 0 passed, 1 failed, 2 usage, 77 skipped.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-}
if [ -z "$build" ] || [ ! -d "$build" ]; then
  echo "usage: $0 BUILD_DIR [chaos.mjs options]   (BUILD_DIR as build/gcc-opt, built with make all)" >&2
  exit 2
fi
shift
case "$build" in /*) ;; *) build="$root/$build" ;; esac
logdir="$build/test-logs-chaos"
rm -rf "$logdir"
mkdir -p "$logdir"

if ! command -v node >/dev/null 2>&1; then
  if [ "${CHAOS_REQUIRE:-0}" != 0 ]; then
    echo "error: CHAOS_REQUIRE is set and node is not found"
    echo "0 passed, 1 failed" >"$logdir/summary"
    exit 1
  fi
  echo "SKIPPED: node not found (apt-get install nodejs)"
  echo "skip chaos"
  echo "0 passed, 0 failed, 1 skipped" >"$logdir/summary"
  exit 77
fi
if [ ! -x "$build/arbor" ]; then
  echo "error: $build/arbor is missing (make all)" >&2
  echo "0 passed, 1 failed" >"$logdir/summary"
  exit 1
fi

log="$logdir/chaos.log"
timeout -k 5 "${CHAOS_TIMEOUT:-300}" node "$here/chaos.mjs" --build "$build" "$@" >"$log" 2>&1
rc=$?
# The progress lines; arbor's own stderr only on a failure.
if [ "$rc" -eq 0 ]; then
  grep '^chaos:' "$log"
  echo "ok   chaos"
  echo "1 passed, 0 failed" >"$logdir/summary"
  exit 0
fi
[ "$rc" -eq 124 ] && echo "TIMEOUT: no result after ${CHAOS_TIMEOUT:-300} s"
tail -n 80 "$log"
echo "FAIL chaos (full output: $log)"
echo "0 passed, 1 failed" >"$logdir/summary"
exit 1
