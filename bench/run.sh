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
#
# Fiber rows (bench_fibers, peer "arbor-fiber"; FIBERS=0 leaves them out):
#   switch  arbor_yield round trips (fiber -> loop -> fiber), NS_FIBER_SWITCH yields
#           (default 1000000) by 1 fiber and by 100 (peers arbor-fiber/f1, /f100)
#   spawn   A with fibers, NS_FIBER_A (default "100000"), cold (empty stack pool) and
#           warm (second round, pooled stacks): peers arbor-fiber/cold, /warm
#   cancel  B with fibers sleeping 1 hour, NS_FIBER_B (default "100000"), with the
#           default stack pool (64) and with a pool of N (peer arbor-fiber/N: no
#           munmap per stack)
# 1,000,000 fibers are opt-in: NS_FIBER_A="100000 1000000" (about 22 s and 4.4 GB a
# run here). Each live fiber's guarded stack costs 2 VMAs: with the default
# vm.max_map_count (65530) only about 32,700 fibers get a stack, and a run that
# needs more prints FIBERS-FAILED and shows as FAILED in the table. This script
# never changes the limit; it prints the sysctl that would let the runs through.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/gcc-opt}
REPS=${REPS:-5}
NS_A=${NS_A:-"100000 1000000"}
NS_B=${NS_B:-"100000"}
ARBOR=$BUILD/bench/bench_tasks
FIBERS=${FIBERS:-1}
FIB=$BUILD/bench/bench_fibers
NS_FIBER_SWITCH=${NS_FIBER_SWITCH:-1000000}
NS_FIBER_A=${NS_FIBER_A:-"100000"}
NS_FIBER_B=${NS_FIBER_B:-"100000"}
FLOOR_SRC=../shared/peers/src/uv_bench.c
FLOOR=$BUILD/bench/uv_floor

[ -x "$ARBOR" ] || { echo "bench/run.sh: $ARBOR is missing; run 'make bench'" >&2; exit 1; }
if [ -f "$FLOOR_SRC" ]; then
  cc -O2 -o "$FLOOR" "$FLOOR_SRC" $(pkg-config --cflags --libs libuv 2>/dev/null || echo -luv)
else
  echo "bench/run.sh: $FLOOR_SRC not found: running arbor without the libuv floor" >&2
  FLOOR=
fi

if [ "$FIBERS" != 0 ]; then
  [ -x "$FIB" ] || { echo "bench/run.sh: $FIB is missing; run 'make bench'" >&2; exit 1; }
  maxn=0
  for n in $NS_FIBER_A $NS_FIBER_B; do [ "$n" -gt "$maxn" ] && maxn=$n; done
  need=$((2 * maxn + 1000))
  have=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)
  if [ "$have" -lt "$need" ]; then
    echo "bench/run.sh: vm.max_map_count is $have: about $((have / 2)) fibers can hold a guarded stack" \
         "(2 VMAs each), so the fiber runs of $maxn fibers will fail (FAILED rows)." \
         "To measure them: sysctl -w vm.max_map_count=$need (root; not done here)" >&2
  fi
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

# onef POOL ARGS...: one bench_fibers process (ARBOR_BENCH_POOL=POOL, empty: the
# default); appends each RESULT or FIBERS-FAILED line with " peak_rss_kb=K" to
# $RAW. A failed run (exit 3) does not stop the script.
onef() {
  local pool=$1 out tf
  shift
  tf=$(mktemp)
  if [ -n "$TIME" ]; then
    out=$(ARBOR_BENCH_POOL=$pool timeout 300 "$TIME" -f 'peak_rss_kb=%M' -o "$tf" "$FIB" "$@" 2>/dev/null) || true
  else
    out=$(ARBOR_BENCH_POOL=$pool timeout 300 "$FIB" "$@" 2>/dev/null) || true; echo "peak_rss_kb=0" >"$tf"
  fi
  [ -n "$out" ] || out="FIBERS-FAILED peer=arbor-fiber bench=$1 n=$2 crashed=1"
  while IFS= read -r line; do
    echo "$line $(tail -n1 "$tf")" | tee -a "$RAW"
  done <<<"$out"
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
  if [ "$FIBERS" != 0 ]; then
    onef "" switch "$NS_FIBER_SWITCH" 1
    onef "" switch "$NS_FIBER_SWITCH" 100
    for n in $NS_FIBER_A; do onef "" spawn "$n"; done
    for n in $NS_FIBER_B; do
      onef "" cancel "$n"
      onef "$n" cancel "$n"     # every stack pooled: no munmap each
    done
  fi
done

echo
echo "medians of $REPS runs (min-max); B's ns/task is cancel->done; KB/task = (peak RSS - 1.7 MB floor)/N;"
echo "arbor-fiber switch rows are ns per arbor_yield round trip (n = yields, /fK = K fibers)"
awk '
function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ delete f; for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  peer = f["peer"]
  if (f["pool"] != "") peer = peer "/" f["pool"]
  if (f["fibers"] != "") peer = peer "/f" f["fibers"]
  k = peer " " f["bench"] " " f["n"]; keys[k] = 1
  if ($1 == "FIBERS-FAILED") { nfail[k]++; need[k] = f["needs_max_map_count>"]; ran[k] = f["ran"]; next }
  c = ++cnt[k]
  ns[k, c] = f["ns_per_task"] != "" ? f["ns_per_task"] : f["ns_per_switch"]; rss[k, c] = f["peak_rss_kb"] }
END {
  printf "%-17s %-7s %9s %28s %10s %9s %8s\n", "peer", "bench", "n", "ns/task median (min-max)", "ratio", "RSS MB", "KB/task"
  for (k in keys) {
    split(k, p, " "); n = cnt[k]
    if (n == 0) continue
    delete a; delete r
    for (i = 1; i <= n; i++) { a[i] = ns[k, i]; r[i] = rss[k, i] }
    lo = a[1]; hi = a[1]; for (i = 1; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
    m = med(a, n); rm = med(r, n); medns[k] = m
    line[k] = sprintf("%-17s %-7s %9d %12.1f (%.1f-%.1f)", p[1], p[2], p[3], m, lo, hi)
    mb[k] = rm / 1024; kbt[k] = (rm - 1741) / p[3]
  }
  for (k in keys) { split(k, p, " "); fk = "libuv " p[2] " " p[3]
    if (cnt[k] == 0) {
      printf "%-17s %-7s %9d   FAILED in %d run(s): %s fibers got a stack; needs vm.max_map_count >= %s\n", p[1], p[2], p[3], nfail[k], ran[k], need[k]
      continue }
    ratio = (p[1] ~ /^arbor/ && (fk in medns)) ? sprintf("%.2fx", medns[k] / medns[fk]) : "-"
    note = nfail[k] ? sprintf("  (%d run(s) FAILED)", nfail[k]) : ""
    printf "%-58s %10s %9.1f %8.2f%s\n", line[k], ratio, mb[k], kbt[k], note }
}' "$RAW" | sort -k2,2 -k3,3n -k1,1
if [ "$FIBERS" != 0 ] && grep -q 'bench=cancel.*kb_per_fiber=' "$RAW"; then
  grep -o 'bench=cancel n=[0-9]* .*kb_per_fiber=[0-9.]*' "$RAW" | awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } v[f["n"]] = v[f["n"]] " " f["kb_per_fiber"] }
    END { for (n in v) printf "arbor-fiber cancel n=%s: KB per sleeping fiber (RSS growth until all sleep), each run:%s\n", n, v[n] }'
fi
