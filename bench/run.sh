#!/usr/bin/env bash
# bench/run.sh - benchmarks A (spawn+join) and B (cancel) beside the libuv floor.
#
#   bench/run.sh BUILD_DIR            # REPS=5 by default; N = 100k and 1M for A, 100k for B
#   REPS=3 NS_A="100000" NS_B="100000" bench/run.sh build/gcc-opt
#
# Runs arbor's bench_tasks (twice: with the runtime's timers, peer "arbor", and with a
# uv_timer_t per task, peer "arbor-uv") and the floor (../shared/peers/src/uv_bench.c,
# built here when ../shared is present) alternately in one invocation, so their
# ratio comes from one run on one machine state. Prints every RESULT line, then medians with min-max,
# the ratio to the floor, and peak RSS (/usr/bin/time %M; 0 when GNU time is absent). Not a test: numbers go to docs/PERFORMANCE.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/gcc-opt}
REPS=${REPS:-5}
NS_A=${NS_A:-"100000 1000000"}
NS_B=${NS_B:-"100000"}
ARBOR=$BUILD/bench/bench_tasks
FLOOR_SRC=../shared/peers/src/uv_bench.c
FLOOR=$BUILD/bench/uv_floor

[ -x "$ARBOR" ] || { echo "bench/run.sh: $ARBOR is missing; run 'make bench'" >&2; exit 1; }
if [ -f "$FLOOR_SRC" ]; then
  cc -O2 -o "$FLOOR" "$FLOOR_SRC" $(pkg-config --cflags --libs libuv 2>/dev/null || echo -luv)
else
  echo "bench/run.sh: $FLOOR_SRC not found: running arbor without the libuv floor" >&2
  FLOOR=
fi

TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT

# one BIN MODE N [TIMER]: runs one process, appends "RESULT ... peak_rss_kb=K" to $RAW
one() {
  local bin=$1 mode=$2 n=$3 out tf
  export ARBOR_BENCH_TIMER=${4:-arbor}
  tf=$(mktemp)
  if [ -n "$TIME" ]; then
    out=$(timeout 120 "$TIME" -f 'peak_rss_kb=%M' -o "$tf" "$bin" "$mode" "$n" 2>/dev/null)
  else
    out=$(timeout 120 "$bin" "$mode" "$n" 2>/dev/null); echo "peak_rss_kb=0" >"$tf"
  fi
  echo "$out $(tail -n1 "$tf")" | tee -a "$RAW"
  rm -f "$tf"
}

for rep in $(seq "$REPS"); do
  for n in $NS_A; do
    [ -n "$FLOOR" ] && one "$FLOOR" spawn "$n"
    one "$ARBOR" spawn "$n"
    one "$ARBOR" spawn "$n" uv
  done
  for n in $NS_B; do
    [ -n "$FLOOR" ] && one "$FLOOR" cancel "$n"
    one "$ARBOR" cancel "$n"
    one "$ARBOR" cancel "$n" uv
  done
done

echo
echo "medians of $REPS runs (min-max); B's ns/task is cancel->done; KB/task = (peak RSS - 1.7 MB floor)/N"
awk '
function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  k = f["peer"] " " f["bench"] " " f["n"]; c = ++cnt[k]
  ns[k, c] = f["ns_per_task"]; rss[k, c] = f["peak_rss_kb"]; keys[k] = 1 }
END {
  printf "%-9s %-7s %9s %28s %10s %9s %8s\n", "peer", "bench", "n", "ns/task median (min-max)", "ratio", "RSS MB", "KB/task"
  for (k in keys) {
    split(k, p, " "); n = cnt[k]; delete a; delete r
    for (i = 1; i <= n; i++) { a[i] = ns[k, i]; r[i] = rss[k, i] }
    lo = a[1]; hi = a[1]; for (i = 1; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
    m = med(a, n); rm = med(r, n); medns[k] = m
    line[k] = sprintf("%-9s %-7s %9d %12.1f (%.1f-%.1f)", p[1], p[2], p[3], m, lo, hi)
    mb[k] = rm / 1024; kbt[k] = (rm - 1741) / p[3]
  }
  for (k in keys) { split(k, p, " "); fk = "libuv " p[2] " " p[3]
    ratio = (p[1] ~ /^arbor/ && (fk in medns)) ? sprintf("%.2fx", medns[k] / medns[fk]) : "-"
    printf "%-48s %10s %9.1f %8.2f\n", line[k], ratio, mb[k], kbt[k] }
}' "$RAW" | sort -k2,2 -k3,3n -k1,1
