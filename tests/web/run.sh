#!/usr/bin/env bash
# tests/web/run.sh [BUILD_DIR] [TEST...]: the dashboard's browser tests.
#
# Each tests/web/t_*.mjs (or each TEST named, e.g. t_cancel) runs in its own
# Node process under timeout(1) (WEB_TIMEOUT seconds, default 90): it starts
# its own `BUILD_DIR/arbor demo --port 0` (or `arbor run` with a config) on
# 127.0.0.1 and its own headless Chromium (Debian's /usr/bin/chromium, or
# $CHROMIUM, driven by playwright-core: no browser download), and stops both at
# the end, pass or fail. One at a time: Chromium is heavy on 2 cores.
#
# Needs Node.js, Chromium and this directory's node_modules (`npm ci` here);
# without one of them every test is SKIPPED (exit 77, "SKIPPED: why"), so the C
# suite never needs them. Screenshots go to build/web-screenshots/ (their
# paths are printed). Each test's output is kept in BUILD_DIR/test-logs-web/;
# a failure prints its last 40 lines. The last line is "N passed, N failed[, N
# skipped]", also written to BUILD_DIR/test-logs-web/summary, which `make test`
# adds to its total. WEB_REQUIRE=1 (CI) makes a missing prerequisite a failure.
#
# Exit: 0 nothing failed, 1 a test failed, 2 usage, 77 everything skipped.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-build/gcc-opt}
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build="$root/$build" ;; esac
if [ ! -d "$build" ]; then
  echo "usage: $0 [BUILD_DIR] [TEST...]   (BUILD_DIR as build/gcc-opt, built with make all)" >&2
  exit 2
fi
timeout_s=${WEB_TIMEOUT:-90}
logdir="$build/test-logs-web"
rm -rf "$logdir"
mkdir -p "$logdir"

if [ $# -gt 0 ]; then
  tests=()
  for t in "$@"; do tests+=("$here/${t%.mjs}.mjs"); done
else
  mapfile -t tests < <(find "$here" -maxdepth 1 -name 't_*.mjs' | sort)
fi

summary() {   # passed failed skipped
  local s="$1 passed, $2 failed"
  [ "$3" -gt 0 ] && s="$s, $3 skipped"
  echo "$s" >"$logdir/summary"
  echo "$s"
}

# What every test needs; without it each one counts as skipped, never passed.
why=
if ! command -v node >/dev/null 2>&1; then
  why="node not found (apt-get install nodejs npm; then: cd tests/web && npm ci)"
elif [ ! -d "$here/node_modules/playwright-core" ]; then
  why="tests/web/node_modules is missing (run: cd tests/web && npm ci)"
elif [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ] && [ ! -x /usr/bin/chromium-browser ]; then
  why="no Chromium at /usr/bin/chromium (apt-get install chromium, or set CHROMIUM)"
elif [ ! -x "$build/arbor" ]; then
  echo "error: $build/arbor is missing (make all)" >&2
  summary 0 ${#tests[@]} 0
  exit 1
fi
# CI installs all of it (.ci/run sets WEB_REQUIRE=1): there, missing is a failure.
if [ -n "$why" ] && [ "${WEB_REQUIRE:-0}" != 0 ]; then
  echo "error: WEB_REQUIRE is set and $why"
  summary 0 ${#tests[@]} 0
  exit 1
fi
if [ -n "$why" ]; then
  echo "SKIPPED: $why"
  for t in "${tests[@]}"; do echo "skip web/$(basename "$t" .mjs)"; done
  summary 0 0 ${#tests[@]}
  exit 77
fi
echo "browser: $( ("${CHROMIUM:-/usr/bin/chromium}" --version || chromium-browser --version) 2>/dev/null | sed -n 1p), node $(node --version)"

passed=0 failed=0 skipped=0 failures=
for t in "${tests[@]}"; do
  name=$(basename "$t" .mjs)
  log="$logdir/$name.log"
  start=$(date +%s)
  # --kill-after: a test that ignores SIGTERM (a stuck browser) still goes; its
  # daemons die with it (lib.mjs kills them on exit, timeout signals the group).
  ARBOR_BUILD="$build" timeout -k 5 "$timeout_s" node "$t" >"$log" 2>&1 </dev/null
  rc=$?
  secs=$(($(date +%s) - start))
  grep '^screenshot: ' "$log" | sed 's/^/     /'
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok   web/$name (${secs}s)"
  elif [ "$rc" -eq 77 ]; then
    skipped=$((skipped + 1))
    echo "skip web/$name: $(grep -m1 '^SKIPPED' "$log")"
  else
    failed=$((failed + 1))
    failures="$failures web/$name"
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && detail=" (no result after ${timeout_s}s)" || detail=" (exit $rc)"
    echo "FAIL web/$name$detail"
    tail -n 40 "$log" | sed 's/^/     | /'
    echo "     (full output: $log)"
  fi
done

if [ "$failed" -gt 0 ]; then
  echo
  echo "failed (web):$failures"
fi
summary "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ] || exit 1
[ "$passed" -gt 0 ] || exit 77
exit 0
