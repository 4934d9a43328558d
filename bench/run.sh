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

# ------------------------------------------------------------ supervision (issue 5)
# Benchmark C of ../shared/peers/BASELINES.md with bench_supervise (SUP=0 skips it).
# The child is the peers' stamp (../shared/peers/src/stamp.c, built static here),
# the gap "next start minus previous exit" as lib/sup_bench.py computes it; the
# uv-loop floor (../shared/peers/src/respawn_uv.c) runs in the same invocation and
# its stamps go through the same parser (bench_supervise gaps). Without ../shared
# the child is bench_supervise itself (dynamic: slower exec) and there is no floor.
#   C1 rate     SUP_C1_COUNT restarts (default 500) of a child that exits at once,
#               .no_backoff = 1: restarts/s and gap; the floor likewise
#   C1 backoff  default policy (100 ms doubling, jitter) for SUP_BACKOFF_COUNT
#               restarts (default 5: 100..1600 ms), then capped at 400 ms for 6
#   C2          a child living 1.1 s, SUP_C2_COUNT restarts per run (default 5, so
#               REPS=5 gives 25 gaps per peer in about 35 s); arbor and the floor run
#               at the same time, half a lifetime apart, so their restarts never
#               overlap (SUP_C2_SERIAL=1: one after the other, twice as long). For a
#               longer run: SUP_C2_COUNT=30 (about 35 s per rep).
#   C3          SUP_C3_CHILDREN (100) `sleep 3600` services, SUP_C3_WINDOW s (10)
#               after SUP_C3_SETTLE s (1): wake-ups/s, RSS, then stop-all on SIGTERM
if [ "${SUP:-1}" != 0 ]; then
  SUPB=$BUILD/bench/bench_supervise
  C1_COUNT=${SUP_C1_COUNT:-500}
  C2_COUNT=${SUP_C2_COUNT:-5}
  C2_LIFE=1100
  BO_COUNT=${SUP_BACKOFF_COUNT:-5}
  C3_CHILDREN=${SUP_C3_CHILDREN:-100}
  C3_WINDOW=${SUP_C3_WINDOW:-10}
  C3_SETTLE=${SUP_C3_SETTLE:-1}
  PEERS_SRC=../shared/peers/src
  STAMP=$BUILD/bench/stamp
  RESPAWN=$BUILD/bench/respawn_uv
  [ -x "$SUPB" ] || { echo "bench/run.sh: $SUPB is missing; run 'make bench'" >&2; exit 1; }
  if [ -f "$PEERS_SRC/stamp.c" ] && cc -O2 -static -o "$STAMP" "$PEERS_SRC/stamp.c" 2>/dev/null; then :
  else
    echo "bench/run.sh: no static $PEERS_SRC/stamp.c: the child is bench_supervise itself" >&2
    STAMP=self
  fi
  if [ -f "$PEERS_SRC/respawn_uv.c" ] && [ "$STAMP" != self ]; then
    cc -O2 -o "$RESPAWN" "$PEERS_SRC/respawn_uv.c" $(pkg-config --cflags --libs libuv 2>/dev/null || echo -luv)
  else
    echo "bench/run.sh: $PEERS_SRC/respawn_uv.c not found: supervision without the uv-loop floor" >&2
    RESPAWN=
  fi
  RAWS=$(mktemp)
  trap 'rm -f "$RAW" "$RAWS"' EXIT

  # sup ARGS...: one bench_supervise run; its GAPS/RESULT lines go to $RAWS.
  # Each run gets 120 s, or 60 s more than C2's children live.
  C2_TIMEOUT=$(( C2_COUNT * 12 / 10 + 60 > 120 ? C2_COUNT * 12 / 10 + 60 : 120 ))
  sup() {
    local out
    out=$(timeout "$C2_TIMEOUT" "$SUPB" "$@" 2>/dev/null) || echo "SUP-FAILED bench_supervise $* (exit $?)" >&2
    [ -n "$out" ] && tee -a "$RAWS" <<<"$out" | grep '^RESULT' || true
  }
  # floor LIFE_MS COUNT: respawn_uv runs COUNT + 1 children; the same parser
  floor() {
    local f out
    f=$(mktemp)
    STAMP_FILE=$f STAMP_LIFE_MS=$1 timeout "$C2_TIMEOUT" "$RESPAWN" "$STAMP" $(($2 + 1)) >/dev/null 2>&1 \
      || echo "SUP-FAILED respawn_uv $* (exit $?)" >&2
    out=$("$SUPB" gaps uv-loop "$1" "$f" "$2")
    tee -a "$RAWS" <<<"$out" | grep '^RESULT' || true
    rm -f "$f"
  }

  echo
  echo "supervision: child $STAMP, REPS=$REPS, C1 $C1_COUNT restarts, C2 $C2_COUNT x ${C2_LIFE} ms per run, C3 $C3_CHILDREN children"
  for rep in $(seq "$REPS"); do
    [ -n "$RESPAWN" ] && floor 0 "$C1_COUNT"
    sup restart 0 "$C1_COUNT" "$STAMP"
    sup backoff "$BO_COUNT" 0 "$STAMP"
    sup backoff 6 400 "$STAMP"
    if [ -n "$RESPAWN" ] && [ "${SUP_C2_SERIAL:-0}" = 0 ]; then
      ( sleep 0.55; floor "$C2_LIFE" "$C2_COUNT" ) &
      sup restart "$C2_LIFE" "$C2_COUNT" "$STAMP"
      wait
    else
      [ -n "$RESPAWN" ] && floor "$C2_LIFE" "$C2_COUNT"
      sup restart "$C2_LIFE" "$C2_COUNT" "$STAMP"
    fi
    sup idle "$C3_CHILDREN" "$C3_WINDOW" "$C3_SETTLE" parallel
    sup idle "$C3_CHILDREN" 1 1 sequential     # only its stop-all counts
  done

  echo
  echo "supervision, medians of $REPS runs (min-max); C2 gaps pooled over all runs"
  awk -v c2target=1.3 '
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  function pct(a, n, q,   k, lo, hi) { if (n == 0) return "nan"; sort(a, n); k = (n - 1) * q; lo = int(k) + 1; hi = lo < n ? lo + 1 : n; return a[lo] + (a[hi] - a[lo]) * (k + 1 - lo) }
  function mmm(key, fmt,   n, i, a) { n = cnt[key]; if (n == 0) return "-"; for (i = 1; i <= n; i++) a[i] = v[key, i]
    return sprintf(fmt " (" fmt "-" fmt ")", pct(a, n, .5), a[1], a[n]) }
  function add(key, x) { v[key, ++cnt[key]] = x }
  $1 == "GAPS" { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if (f["life_ms"] > 0) { m = split(f["ms"], g, ","); for (i = 1; i <= m; i++) pool[f["peer"], ++npool[f["peer"]]] = g[i] }
    next }
  $1 == "RESULT" { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    p = f["peer"]
    if (f["bench"] == "restart") { c = f["life_ms"] > 0 ? "C2" : "C1"; if (!(p in peers)) order[++npeers] = p; peers[p] = 1
      add(c " p50 " p, f["gap_p50_ms"]); add(c " p99 " p, f["gap_p99_ms"]); add(c " rate " p, f["restarts_per_s"])
      if (p == "arbor") { add(c " seen", f["seen_p50_ms"]); add(c " decide", f["decide_p50_ms"]); add(c " spawn", f["spawn_p50_ms"]) } }
    if (f["bench"] == "backoff") { k = "bo " f["backoff_max_ms"]; if (!(k in bok)) boorder[++nbo] = k; bok[k] = 1; runs[k]++; okr[k] += f["policy_ok"]
      nn = split(f["nominal_ms"], nom, ","); split(f["chosen_ms"], ch, ","); split(f["observed_ms"], ob, ",")
      nrest[k] = nn; for (i = 1; i <= nn; i++) { nominal[k, i] = nom[i]; add(k " ch " i, ch[i]); add(k " ob " i, ob[i]); add(k " ov " i, ob[i] - ch[i]) } }
    if (f["bench"] == "idle" && f["stop"] == "sequential") { add("seqstop", f["stop_all_ms"]); add("seqrev", f["finished_in_reverse"]) }
    else if (f["bench"] == "idle") { add("wk", f["wakeups_per_s"]); add("wkm", f["main_wakeups_per_s"]); add("cpu", f["cpu_us_per_s"])
      add("rss", f["rss_main_kb"] / 1024); add("pss", f["pss_main_kb"] / 1024); add("stop", f["stop_all_ms"]); add("up", f["children_end"])
      add("left", f["leftover_killed"]); add("first", f["first_svc_finished_ms"]); add("last", f["last_svc_finished_ms"])
      add("rev", f["finished_in_reverse"]) } }
  END {
    printf "C1 crash loop, no backoff       %-26s %-26s %-24s\n", "gap p50 ms", "gap p99 ms", "restarts/s"
    for (j = 1; j <= npeers; j++) if (cnt["C1 p50 " (p = order[j])]) printf "  %-29s %-26s %-26s %-24s\n", p, mmm("C1 p50 " p, "%.3f"), mmm("C1 p99 " p, "%.3f"), mmm("C1 rate " p, "%.0f")
    if (cnt["C1 seen"]) printf "  arbor gap = exit->seen %s + seen->next created %s + created->exec %s ms (p50s)\n", mmm("C1 seen", "%.3f"), mmm("C1 decide", "%.3f"), mmm("C1 spawn", "%.3f")
    printf "C2 child lives 1.1 s            %-12s %-12s %-22s %-26s %s\n", "pooled p50", "pooled p99", "gaps min-max (n)", "per-run p50", "vs floor p50"
    for (p in peers) if (npool[p]) { n = npool[p]; delete a; for (i = 1; i <= n; i++) a[i] = pool[p, i]
      p50[p] = pct(a, n, .5); p99[p] = pct(a, n, .99); lo[p] = a[1]; hi[p] = a[n]; np[p] = n }
    for (j = 1; j <= npeers; j++) if (npool[p = order[j]]) { r = (p != "uv-loop" && ("uv-loop" in p50)) ? sprintf("%.2fx (target <= %.1fx)", p50[p] / p50["uv-loop"], c2target) : "-"
      printf "  %-29s %-12.3f %-12.3f %-22s %-26s %s\n", p, p50[p], p99[p], sprintf("%.3f-%.3f (%d)", lo[p], hi[p], np[p]), mmm("C2 p50 " p, "%.3f"), r }
    if (cnt["C2 seen"]) printf "  arbor gap = exit->seen %s + seen->next created %s + created->exec %s ms (p50s)\n", mmm("C2 seen", "%.3f"), mmm("C2 decide", "%.3f"), mmm("C2 spawn", "%.3f")
    for (j = 1; j <= nbo; j++) { k = boorder[j]; split(k, kk, " "); printf "C1 default backoff, cap %s ms: policy_ok in %d of %d runs\n", kk[2], okr[k], runs[k]
      printf "  %-8s %-17s %-24s %-28s %s\n", "restart", "policy ms", "chosen ms", "observed gap ms", "observed - chosen ms"
      for (i = 1; i <= nrest[k]; i++) printf "  %-8d %-17s %-24s %-28s %s\n", i, sprintf("%d (%d-%d)", nominal[k, i], nominal[k, i] - int(nominal[k, i] / 4), nominal[k, i]), mmm(k " ch " i, "%.0f"), mmm(k " ob " i, "%.1f"), mmm(k " ov " i, "%.2f") }
    if (cnt["wk"]) {
      printf "C3 %s idle sleep services, arbor (targets: 0 wake-ups/s, RSS <= 5 MB, stop-all <= 50 ms)\n", v["up", 1]
      printf "  wake-ups/s %s (main thread %s), CPU us/s %s\n", mmm("wk", "%.2f"), mmm("wkm", "%.2f"), mmm("cpu", "%.1f")
      printf "  RSS MB %s, PSS MB %s, children up at the end %s, left over %s\n", mmm("rss", "%.2f"), mmm("pss", "%.2f"), mmm("up", "%d"), mmm("left", "%d")
      printf "  stop-all ms (SIGTERM -> every program reaped, runtime closed), parallel_stop %s, one after the other (OTP) %s\n", mmm("stop", "%.1f"), mmm("seqstop", "%.1f")
      printf "  after the SIGTERM, first service finished at %s ms, last at %s; finished newest first, one after the other: %s of %d\n", mmm("first", "%.1f"), mmm("last", "%.1f"), mmm("rev", "%d"), v["up", 1] - 1 }
  }' "$RAWS"
fi

# ------------------------------------------------------------ admin API (issue 6)
# bench_admin (ADMIN=0 skips it): arbor serves its admin API on 127.0.0.1 while a
# helper process (forked before the runtime, so it shares neither arbor's loop nor,
# on 2 cores, its core) loads it; arbor measures its loop's longest iterations in
# every phase. Modes and method: the top of bench/bench_admin.c. Per rep:
#   tree   ADMIN_SERVICES (100) `sleep 3600` services: GET /api/v1/tree latency over
#          ADMIN_CALLS (1000) sequential calls after 50 warm-ups, as supervisord's
#          getAllProcessInfo was timed (../shared/peers BASELINES.md D), then req/s
#          with 1 and 4 connections for ADMIN_SECONDS (5) each: the helper's own
#          closed-loop client, then wrk -t1 (installed with apt-get when missing and
#          run as root; else those rows are skipped)
#   big    ADMIN_NODES (100000) tasks waiting on one-hour timers, for each group
#          count in ADMIN_SHAPES ("100 1": 100 groups of 1000, one group of 100000):
#          /tree (default paging) on 1 and 4 connections, children pages, node detail
#   sse    ADMIN_SSE_CLIENTS (100) event streams following ADMIN_SSE_RATE (10000)
#          events/s for ADMIN_SECONDS * 2; the generator alone first
# supervisord's D figures are read from $PEERS/results/*/raw.txt (PEERS defaults to
# ../shared/peers) when present. ADMIN_RAW=FILE keeps the full RESULT lines (the
# screen gets them cut at 220 characters). An admin-only run, with A and B tiny:
#   REPS=5 NS_A=1000 NS_B=1000 FIBERS=0 SUP=0 bash bench/run.sh build/gcc-opt
if [ "${ADMIN:-1}" != 0 ]; then
  ADM=$BUILD/bench/bench_admin
  A_REPS=${ADMIN_REPS:-$REPS}
  A_SECONDS=${ADMIN_SECONDS:-5}
  A_SERVICES=${ADMIN_SERVICES:-100}
  A_CALLS=${ADMIN_CALLS:-1000}
  A_NODES=${ADMIN_NODES:-100000}
  A_SHAPES=${ADMIN_SHAPES:-"100 1"}
  A_CLIENTS=${ADMIN_SSE_CLIENTS:-100}
  A_RATE=${ADMIN_SSE_RATE:-10000}
  PEERS=${PEERS:-../shared/peers}
  [ -x "$ADM" ] || { echo "bench/run.sh: $ADM is missing; run 'make bench'" >&2; exit 1; }
  if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bench/run.sh: installing wrk (apt-get)" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y wrk >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; } ||
        echo "bench/run.sh: could not install wrk: the wrk rows are skipped" >&2
    else
      echo "bench/run.sh: no wrk and not root: the wrk rows are skipped (apt-get install wrk)" >&2
    fi
  fi
  RAWA=$(mktemp)
  trap 'rm -f "$RAW" "${RAWS:-}" "$RAWA"' EXIT

  # adm ARGS...: one bench_admin run; its RESULT lines go to $RAWA
  adm() {
    local out
    out=$(timeout 600 "$ADM" "$@" 2>/dev/null) || echo "ADMIN-FAILED bench_admin $* (exit $?)" >&2
    [ -n "$out" ] && tee -a "$RAWA" <<<"$out" | cut -c1-220 || true
  }

  echo
  echo "admin API: REPS=$A_REPS, $A_SERVICES services, $A_NODES-node trees (groups: $A_SHAPES)," \
       "$A_CLIENTS SSE clients at $A_RATE events/s, ${A_SECONDS} s per load phase; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for rep in $(seq "$A_REPS"); do
    adm tree "$A_SERVICES" "$A_CALLS" "$A_SECONDS"
    for g in $A_SHAPES; do adm big "$A_NODES" "$g" "$A_SECONDS"; done
    adm sse "$A_CLIENTS" "$A_RATE" $((A_SECONDS * 2))
  done
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -n "${ADMIN_RAW:-}" ] && cp "$RAWA" "$ADMIN_RAW"

  echo
  echo "admin API, medians of $A_REPS runs (min-max); stalls are arbor's longest loop iterations"
  { cat "$RAWA"; cat "$PEERS"/results/*/raw.txt 2>/dev/null | grep 'peer=supervisord bench=api' || true; } | awk '
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  function mmm(key, fmt,   n, i, a, m) { n = cnt[key]; if (n == 0) return "-"; for (i = 1; i <= n; i++) a[i] = v[key, i]; sort(a, n)
    m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    return n == 1 ? sprintf(fmt, m) : sprintf(fmt " (" fmt "-" fmt ")", m, a[1], a[n]) }
  function add(key, x) { if (x != "") v[key, ++cnt[key]] = x }
  $1 == "RESULT" { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if (f["peer"] == "supervisord") { for (x in f) add("sv " x, f[x]); next }
    if (f["bench"] != "admin") next
    k = f["mode"] "/" f["phase"] (f["mode"] == "big" ? "/" f["groups"] : "")
    if (!(k in seen)) order[++nk] = k; seen[k] = 1
    for (x in f) add(k " " x, f[x])
    if (f["mode"] == "sse" && f["phase"] == "sse" && f["wall_s"] > 0) add(k " cl_rate", f["events_median"] / f["wall_s"]) }
  END {
    printf "GET /api/v1/tree, %s process services (supervisord: getAllProcessInfo, 100 programs, BASELINES.md D)\n", v["tree/latency services", 1]
    printf "  %-34s %-30s %s\n", "", "arbor", "supervisord"
    printf "  %-34s %-30s %s\n", "p50 ms (target <= 1)", mmm("tree/latency p50_ms", "%.3f"), mmm("sv xmlrpc_p50_ms", "%.2f")
    printf "  %-34s %-30s %s\n", "p99 ms", mmm("tree/latency p99_ms", "%.3f"), mmm("sv xmlrpc_p99_ms", "%.2f")
    printf "  %-34s %-30s %s\n", "response bytes", mmm("tree/latency resp_bytes", "%.0f"), mmm("sv resp_bytes", "%.0f")
    printf "  %-34s %-30s %s\n", "nodes in the response", mmm("tree/latency nodes", "%.0f"), "-"
    printf "  %-34s %-30s %s\n", "server CPU ms per call", mmm("tree/latency cpu_ms_per_req", "%.3f"), mmm("sv sup_cpu_ms_per_call_http", "%.2f")
    printf "  %-34s %-30s %s\n", "req/s, 1 connection (own client)", mmm("tree/load_c1 rps", "%.0f"), "-"
    printf "  %-34s %-30s %s\n", "req/s, 4 connections (own client)", mmm("tree/load_c4 rps", "%.0f"), "-"
    printf "  %-34s %-30s %s\n", "req/s, wrk -c1", mmm("tree/wrk_c1 rps", "%.0f"), mmm("sv wrk_c1_rps", "%.1f")
    printf "  %-34s %-30s %s\n", "req/s, wrk -c4 (target >= 10000)", mmm("tree/wrk_c4 rps", "%.0f"), mmm("sv wrk_c4_rps", "%.1f")
    printf "  %-34s %-30s %s\n", "wrk -c4 p50 / p99 ms", mmm("tree/wrk_c4 p50_ms", "%.2f") " / " mmm("tree/wrk_c4 p99_ms", "%.2f"), "-"
    printf "  %-34s %-30s %s\n", "loop stall max ms, latency phase", mmm("tree/latency iter_max_ms", "%.2f"), "-"
    printf "  %-34s %-30s %s\n", "loop stall max ms, 4 connections", mmm("tree/load_c4 iter_max_ms", "%.2f"), "-"
    printf "Loop stalls (target: max <= 5 ms while a 100,000-node tree is served with default paging, and with %s SSE clients)\n", v["sse/sse clients", 1]
    printf "  %-22s %-22s %-22s %-22s %-18s %s\n", "phase", "stall max ms", "stall p99 ms", "req/s or events/s", "p50 ms", "bytes/resp"
    for (j = 1; j <= nk; j++) { k = order[j]; if (k ~ /^tree\//) continue
      split(k, p, "/"); name = p[1] == "big" ? sprintf("big %dx%d %s", p[3], (v[k " tree_nodes", 1] - p[3] - 1) / p[3], p[2]) : k
      rate = p[1] == "sse" ? mmm(k " events_per_s", "%.0f") : mmm(k " rps", "%.0f")
      pp = p[1] == "sse" ? (cnt[k " lat_p50_ms"] ? mmm(k " lat_p50_ms", "%.1f") : "-") : mmm(k " p50_ms", "%.2f")
      printf "  %-22s %-22s %-22s %-22s %-18s %s\n", name, mmm(k " iter_max_ms", "%.2f"), mmm(k " iter_p99_ms", "%.3f"), rate, pp, p[1] == "sse" ? "-" : mmm(k " bytes_per_resp", "%.0f") }
    if (cnt["sse/sse clients"]) {
      printf "SSE: %s clients; events delivered %% %s, latency p99 ms %s, max %s, gap events %s, missed %s, catch-up s %s\n",
        v["sse/sse clients", 1], mmm("sse/sse delivered_pct", "%.1f"), mmm("sse/sse lat_p99_ms", "%.1f"), mmm("sse/sse lat_max_ms", "%.1f"),
        mmm("sse/sse gap_events", "%d"), mmm("sse/sse missed", "%d"), mmm("sse/sse catchup_s", "%.2f")
      printf "  per client events/s delivered %s (the generator, starved with the loop, recorded %s/s); arbor loop busy %% %s\n",
        mmm("sse/sse cl_rate", "%.0f"), mmm("sse/sse events_per_s", "%.0f"), mmm("sse/sse loop_busy_pct", "%.1f") }
  }'
fi

# ------------------------------------------------- observation's cost (issue 7)
# Benchmark A (spawn + join of N callback tasks, bench_tasks) with the runtime's
# observation off (no_events = 1), on (the default), and on with an OTLP push
# exporter to a collector thread in the process that answers 200 (otlp) or to an
# endpoint that refuses connections (otlp-dead); OBSERVE=0 skips it. Per rep, for
# each N in NS_OBS ("100000 1000000") and each mode in OBS_MODES ("off on otlp
# otlp-dead"), one process, the modes alternating so that their ratio comes from
# one machine state. The defaults (ring 16,384 events, retention 1,024, queue
# 2,048 spans) drop most of such a burst before the exporter sees it; the "full"
# config (OBS_FULL_N, 100000; OBS_FULL=0 skips it) gives the run a ring, a
# retention and a queue as big as N, so that every span is written and sent.
# The figure compared is done_ns (the first spawn to the group's FINISHED; an
# exporter keeps the loop running after it), with the loop thread's CPU per task
# (until the exporter's queue drained: spans written after the group finished
# count) and the exporter's counters beside. Method: bench/bench_tasks.c's top.
# With FIBERS on, also the fiber spawn (bench_fibers spawn OBS_FIBER_N, default
# 30000: the default vm.max_map_count holds about 32,700 guarded stacks) with
# events off and on, its cold and warm rounds as configs fiber-cold/fiber-warm
# (wall time to uv_run's return: no done_ns there).
if [ "${OBSERVE:-1}" != 0 ]; then
  NS_OBS=${NS_OBS:-"100000 1000000"}
  OBS_MODES=${OBS_MODES:-"off on otlp otlp-dead"}
  OBS_FULL_N=${OBS_FULL_N:-100000}
  OBS_FIBER_N=${OBS_FIBER_N:-30000}
  O_REPS=${OBS_REPS:-$REPS}
  RAWO=$(mktemp)
  trap 'rm -f "$RAW" "${RAWS:-}" "${RAWA:-}" "$RAWO"' EXIT

  # obs MODE N CONFIG [ENV...]: one bench_tasks spawn run, its line to $RAWO
  obs() {
    local mode=$1 n=$2 cfg=$3 out
    shift 3
    out=$(env ARBOR_BENCH_TIMER=arbor ARBOR_BENCH_OBSERVE="$mode" "$@" timeout 120 "$ARBOR" spawn "$n" 2>/dev/null) ||
      { echo "OBSERVE-FAILED bench_tasks $mode $n $cfg" >&2; return 0; }
    echo "$out config=$cfg" | tee -a "$RAWO" | cut -c1-220
  }

  echo
  echo "observation: REPS=$O_REPS, N in $NS_OBS, modes $OBS_MODES; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for rep in $(seq "$O_REPS"); do
    for n in $NS_OBS; do
      for m in $OBS_MODES; do obs "$m" "$n" default; done
    done
    if [ "$FIBERS" != 0 ] && [ -x "$FIB" ]; then
      for m in off on; do        # fiber spawn: its cold and warm rounds
        out=$(ARBOR_BENCH_OBSERVE=$m timeout 120 "$FIB" spawn "$OBS_FIBER_N" 2>/dev/null | grep '^RESULT') ||
          { echo "OBSERVE-FAILED bench_fibers $m $OBS_FIBER_N" >&2; continue; }
        while IFS= read -r l; do
          echo "$l config=fiber-$(sed 's/.* pool=\([a-z]*\).*/\1/' <<<"$l")"
        done <<<"$out" | tee -a "$RAWO" | cut -c1-220
      done
    fi
    if [ "${OBS_FULL:-1}" != 0 ]; then
      for m in off on otlp; do
        obs "$m" "$OBS_FULL_N" full ARBOR_BENCH_RING=$((OBS_FULL_N * 8)) ARBOR_BENCH_RETAIN="$OBS_FULL_N" \
            ARBOR_BENCH_OTLP_QUEUE=$((OBS_FULL_N + 16))
      done
    fi
  done

  echo
  echo "observation, medians of $O_REPS runs (min-max); ratio = done ns/task / the same N and config with events off (target <= 1.10 for on)"
  awk '
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  function med(key,   n, i, a) { n = cnt[key]; for (i = 1; i <= n; i++) a[i] = v[key, i]; sort(a, n)
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function mmm(key, fmt,   n, i, a) { n = cnt[key]; if (n == 0) return "-"; for (i = 1; i <= n; i++) a[i] = v[key, i]; sort(a, n)
    return sprintf(fmt " (" fmt "-" fmt ")", med(key), a[1], a[n]) }
  function add(key, x) { if (x != "") v[key, ++cnt[key]] = x }
  $1 == "RESULT" { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    k = f["config"] " " f["n"] " " f["peer"]; if (!(k in seen)) order[++nk] = k; seen[k] = 1
    add(k " done", (f["done_ns"] != "" ? f["done_ns"] : f["wall_ns"]) / f["n"]); add(k " wall", f["wall_ns"] / f["n"]); add(k " cpu", f["cpu_ns_per_task"])
    add(k " exp", f["spans_exported"]); add(k " drop", f["spans_dropped"]); add(k " miss", f["events_missed"]) }
  END {
    printf "%-10s %8s %-16s %-24s %-8s %-24s %-24s %s\n", "config", "n", "peer", "done ns/task", "ratio", "wall ns/task", "loop CPU ns/task", "spans exported/dropped/events missed"
    for (j = 1; j <= nk; j++) { k = order[j]; split(k, p, " "); base = p[3]; sub(/\/.*/, "", base); off = p[1] " " p[2] " " base "/off"
      r = cnt[off " done"] ? sprintf("%.3f", med(k " done") / med(off " done")) : "-"
      sp = cnt[k " exp"] ? sprintf("%d / %d / %d", med(k " exp"), med(k " drop"), med(k " miss")) : "-"
      printf "%-10s %8d %-16s %-24s %-8s %-24s %-24s %s\n", p[1], p[2], p[3], mmm(k " done", "%.1f"), r, mmm(k " wall", "%.1f"), mmm(k " cpu", "%.1f"), sp }
  }' "$RAWO"
fi

# ------------------------------------------- trace and metrics export (issue 7)
# bench_trace (TRACE=0 skips it): a history of TRACE_NODES (100000) finished
# tasks retained, for each group count in TRACE_SHAPES ("100 1": 100 groups of
# 1000, one group of 100,000), with failures, cancellations and live services;
# then for chrome and otlp: snapshot, Chrome's track layout, formatting, bytes,
# arbor_trace_write to /dev/null, GET /api/v1/trace from a client thread and the
# loop's longest stall meanwhile; GET /metrics TRACE_METRICS_CALLS (1000) times.
# Method: bench/bench_trace.c's top. TRACE_RAW=FILE keeps the RESULT lines.
if [ "${TRACE:-1}" != 0 ]; then
  TRB=$BUILD/bench/bench_trace
  T_REPS=${TRACE_REPS:-$REPS}
  T_NODES=${TRACE_NODES:-100000}
  T_SHAPES=${TRACE_SHAPES:-"100 1"}
  T_CALLS=${TRACE_METRICS_CALLS:-1000}
  [ -x "$TRB" ] || { echo "bench/run.sh: $TRB is missing; run 'make bench'" >&2; exit 1; }
  RAWT=$(mktemp)
  trap 'rm -f "$RAW" "${RAWS:-}" "${RAWA:-}" "${RAWO:-}" "$RAWT"' EXIT

  echo
  echo "trace export: REPS=$T_REPS, $T_NODES finished tasks in $T_SHAPES group(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for rep in $(seq "$T_REPS"); do
    for g in $T_SHAPES; do
      out=$(timeout 600 "$TRB" history "$T_NODES" "$g" "$T_CALLS" 2>/dev/null) ||
        echo "TRACE-FAILED bench_trace history $T_NODES $g $T_CALLS (exit $?)" >&2
      [ -n "$out" ] && tee -a "$RAWT" <<<"$out" | cut -c1-220
    done
  done
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -n "${TRACE_RAW:-}" ] && cp "$RAWT" "$TRACE_RAW"

  echo
  echo "trace export, medians of $T_REPS runs (min-max); stall = the loop's longest iteration (busy time) while the client downloads"
  awk '
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  function mmm(key, fmt,   n, i, a, m) { n = cnt[key]; if (n == 0) return "-"; for (i = 1; i <= n; i++) a[i] = v[key, i]; sort(a, n)
    m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    return n == 1 ? sprintf(fmt, m) : sprintf(fmt " (" fmt "-" fmt ")", m, a[1], a[n]) }
  function add(key, x) { if (x != "") v[key, ++cnt[key]] = x }
  $1 == "RESULT" && / bench=trace / { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    g = f["groups"]; if (!(g in gs)) gorder[++ng] = g; gs[g] = 1; nodes[g] = f["nodes"]
    k = g " " f["phase"]; for (x in f) add(k " " x, f[x]); if (f["bytes"] != "") add(k " MB", f["bytes"] / 1e6) }
  END {
    for (j = 1; j <= ng; j++) { g = gorder[j]
      printf "%s nodes, %d group(s) of %d tasks\n", nodes[g], g, (nodes[g] - g - 5) / g
      printf "  %-7s %-22s %-22s %-22s %-22s %-20s %-22s %-22s %-22s %s\n", "format", "snapshot ms", "track layout ms", "format ms", "arbor_trace_write ms", "MB", "GET download ms", "stall max ms", "timer gap max ms", "iterations"
      for (ff = 1; ff <= 2; ff++) { fm = ff == 1 ? "chrome" : "otlp"; k = g " " fm
        printf "  %-7s %-22s %-22s %-22s %-22s %-20s %-22s %-22s %-22s %s\n", fm, mmm(k " snapshot_ms", "%.1f"), fm == "chrome" ? mmm(k " tracks_ms", "%.1f") : "-", mmm(k " format_ms", "%.1f"),
          mmm(k " write_ms", "%.1f"), mmm(k " MB", "%.2f"), mmm(k " http_ms", "%.1f"), mmm(k " iter_max_ms", "%.1f"), mmm(k " gap_max_ms", "%.1f"), mmm(k " iterations", "%d") }
      k = g " metrics"
      printf "  GET /metrics: p50 %s ms, p99 %s ms, max %s ms, %s bytes; stall max %s ms\n", mmm(k " p50_ms", "%.3f"), mmm(k " p99_ms", "%.3f"), mmm(k " max_ms", "%.3f"), mmm(k " bytes", "%d"), mmm(k " iter_max_ms", "%.3f")
      k = g " idle"
      printf "  idle (nothing but the meters, 200 ms): stall max %s ms, timer gap max %s ms\n", mmm(k " iter_max_ms", "%.3f"), mmm(k " gap_max_ms", "%.2f") }
  }' "$RAWT"
fi

# ------------------------------------------------------------ dashboard (issue 8)
# bench/web_render.mjs (WEB=0 skips it) in headless Chromium against
# bench_web_tree: time to first render of a NODES-node tree (default 10000;
# target <= 1 s) and whether the view keeps up with WEB_RATE events/s (1000)
# for WEB_SECONDS (30), REPS times each; method at the top of the script. Needs
# node, /usr/bin/chromium and tests/web/node_modules (cd tests/web && npm ci).
# For the dashboard alone, run the script itself:
#   REPS=5 node bench/web_render.mjs build/gcc-opt
if [ "${WEB:-1}" != 0 ]; then
  echo
  if [ ! -x "$BUILD/bench/bench_web_tree" ]; then
    echo "bench/run.sh: $BUILD/bench/bench_web_tree is missing; run 'make bench'" >&2
  elif ! command -v node >/dev/null 2>&1 || [ ! -d tests/web/node_modules/playwright-core ]; then
    echo "dashboard: skipped (needs node and tests/web/node_modules: cd tests/web && npm ci)"
  else
    REPS=$REPS node bench/web_render.mjs "$BUILD" || echo "bench/run.sh: web_render.mjs exited $?" >&2
  fi
fi
