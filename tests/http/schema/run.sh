#!/usr/bin/env bash
# tests/http/schema/run.sh [BUILD_DIR]: real admin API responses against
# docs/openapi.yaml.
#
# Runs test_api's api_dump_responses (a real runtime and server on 127.0.0.1,
# every endpoint and error status through real HTTP) with ARBOR_API_DUMP set,
# then validate.mjs checks each dumped response with ajv against the schema the
# document gives for its path, method, status and content type.
#
# Needs Node.js and this directory's node_modules (`npm ci` here); without
# either it is SKIPPED with exit 77, so the C suite never needs Node.
# Exit: 0 pass, 1 a response does not match, 2 usage or setup error, 77 skipped.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=${1:-build/gcc-opt}
case "$build" in /*) ;; *) build="$root/$build" ;; esac

if ! command -v node >/dev/null 2>&1; then
  echo "SKIPPED: node not found; the schema check needs Node.js (apt-get install nodejs npm) and: (cd tests/http/schema && npm ci)"
  exit 77
fi
if [ ! -d "$here/node_modules/ajv" ] || [ ! -d "$here/node_modules/yaml" ] || [ ! -d "$here/node_modules/ajv-formats" ]; then
  echo "SKIPPED: tests/http/schema/node_modules is missing; run: (cd tests/http/schema && npm ci)"
  exit 77
fi
prog="$build/tests/http/test_api"
if [ ! -x "$prog" ]; then
  echo "error: $prog not built (make tests)" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "==> $prog --run api_dump_responses (ARBOR_API_DUMP=$tmp)"
if ! ARBOR_API_DUMP="$tmp" "$prog" --run api_dump_responses > "$tmp/test.log" 2>&1; then
  cat "$tmp/test.log"
  echo "error: api_dump_responses failed" >&2
  exit 2
fi
echo "==> node validate.mjs docs/openapi.yaml ($(ls "$tmp"/*.json 2>/dev/null | wc -l) responses)"
node "$here/validate.mjs" "$root/docs/openapi.yaml" "$tmp"
