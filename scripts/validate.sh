#!/usr/bin/env bash
# scripts/validate.sh: checks arbor's outputs with the third-party consumers in
# ../shared/validators (README there). CI runs it when ../shared is present; `make
# test` never needs it (a user's clone has no ../shared).
#
#   scripts/validate.sh [BUILD_DIR]      (default build/gcc-opt; must hold `arbor`)
#
# What it checks, against a live `arbor demo` on a free 127.0.0.1 port:
#   - docs/openapi.yaml with Redocly (check-openapi.sh);
#   - the event stream /api/v1/events with a WHATWG-rules SSE parser (check-sse.mjs);
#   - trace exports (GET /api/v1/trace of the demo, and of the rich tree that
#     tests/tracing/test_export builds: failures, restarts, cancellations,
#     concurrent siblings) with the DevTools trace engine (check-chrome-trace.mjs)
#     and the official OTLP protos (check-otlp-json.mjs);
#   - the bodies the OTLP/HTTP push exporter POSTed to the receiver of
#     tests/tracing/test_otlp_push (check-otlp-json.mjs);
#   - /metrics with promtool (check-prom.sh) and a real Prometheus scrape
#     (scrape-once.sh: up = 1 and arbor_restarts_total present).
# Exits non-zero when a validator fails; stops the daemon in every case.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/gcc-opt}
val=../shared/validators
arbor=$build/arbor
[ -x "$arbor" ] || { echo "validate: $arbor not built" >&2; exit 2; }
[ -d "$val/node_modules" ] || { echo "validate: $val/node_modules missing: run $val/setup.sh" >&2; exit 2; }

log=$(mktemp)
metrics=$(mktemp)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$log" "$metrics"
}
trap cleanup EXIT

"$arbor" demo --port 0 >"$log" 2>&1 &
pid=$!
url=
for _ in $(seq 100); do
  url=$(sed -n 's|.*dashboard at \(http://[^ ]*\)/.*|\1|p; s|.*dashboard at \(http://[^ /]*\)$|\1|p' "$log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "validate: arbor demo exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; echo "validate: no dashboard URL from arbor demo" >&2; exit 1; }
echo "validate: arbor demo at $url"

status=0
echo "==> check-openapi.sh docs/openapi.yaml"
"$val/check-openapi.sh" docs/openapi.yaml || status=1
echo "==> check-sse.mjs $url/api/v1/events"
node "$val/check-sse.mjs" "$url/api/v1/events" 5 --require-id --require-event --timeout=20000 || status=1

traces=$(mktemp -d)
trap 'cleanup; rm -rf "$traces"' EXIT
curl -fsS "$url/api/v1/trace?format=chrome" -o "$traces/demo.chrome.json" || status=1
curl -fsS "$url/api/v1/trace?format=otlp" -o "$traces/demo.otlp.json" || status=1
ARBOR_TRACE_DUMP=$traces "$build/tests/tracing/test_export" >/dev/null || status=1
for f in demo.chrome.json trace.chrome.json; do
  echo "==> check-chrome-trace.mjs $f"
  node "$val/check-chrome-trace.mjs" "$traces/$f" || status=1
done
for f in demo.otlp.json trace.otlp.json; do
  echo "==> check-otlp-json.mjs $f"
  node "$val/check-otlp-json.mjs" "$traces/$f" || status=1
done

echo "==> check-prom.sh $url/metrics"
if curl -fsS -o "$metrics" "$url/metrics"; then
  "$val/check-prom.sh" "$metrics" || status=1
else
  echo "validate: GET $url/metrics failed" >&2
  status=1
fi
hostport=${url#http://}
echo "==> scrape-once.sh $hostport arbor_restarts_total /metrics"
"$val/scrape-once.sh" "$hostport" arbor_restarts_total /metrics || status=1

# OTLP/HTTP push: the bodies a real push delivered to the test's own receiver.
# Each batch holds only the spans that finished by then, so a span's parent may
# be in another batch (or be the root, never pushed): --allow-external-parents.
push=$traces/push
mkdir -p "$push"
echo "==> test_otlp_push (ARBOR_OTLP_DUMP=$push)"
if ARBOR_OTLP_DUMP=$push "$build/tests/tracing/test_otlp_push" \
     --run otlp_push_spans_arrive_as_otlp_json >/dev/null; then
  n=0
  for f in "$push"/*.json; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    echo "==> check-otlp-json.mjs --allow-external-parents $(basename "$f")"
    node "$val/check-otlp-json.mjs" "$f" --allow-external-parents || status=1
  done
  [ "$n" -gt 0 ] || { echo "validate: test_otlp_push wrote no body" >&2; status=1; }
else
  echo "validate: test_otlp_push failed" >&2
  status=1
fi
exit $status
