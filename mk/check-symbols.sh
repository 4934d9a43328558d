#!/usr/bin/env bash
# mk/check-symbols.sh LIB.so HEADER... : the shared library exports exactly the API.
#
# The library is built with -fvisibility=hidden, so it exports only what is marked
# ARBOR_EXTERN. This fails when
#  - the .so exports a symbol that no public header declares ARBOR_EXTERN (a name
#    outside arbor_, an internal arbor__ helper, an accidental API), or
#  - a header declares an ARBOR_EXTERN name the .so does not define (a program that
#    uses it would fail to link).
set -euo pipefail

so=${1:?usage: check-symbols.sh LIB.so HEADER...}
shift

# Defined dynamic symbols, without the linker's own markers: A (absolute) entries
# are version nodes, and _init/_fini/_edata/_end/__bss_start come from crt files
# and the linker, not from our code.
exported=$(nm -D --defined-only "$so" |
  awk '$2 != "A" { print $3 }' | sed 's/@.*//' |
  grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u)

# Every name declared ARBOR_EXTERN: the identifier right before "(" (a function)
# or ";" / "[" (an object) on the declaration's first line.
declared=$(cat "$@" |
  sed -n 's/.*ARBOR_EXTERN[^(;[]*[^A-Za-z0-9_]\(arbor_[A-Za-z0-9_]*\)[[:space:]]*[(;[].*/\1/p' |
  sort -u)

extra=$(comm -23 <(printf '%s\n' "$exported") <(printf '%s\n' "$declared") | grep . || true)
missing=$(comm -13 <(printf '%s\n' "$exported") <(printf '%s\n' "$declared") | grep . || true)

status=0
if [ -n "$extra" ]; then
  echo "check-symbols: $so exports symbols no public header declares ARBOR_EXTERN"
  echo "  (make them static, or drop ARBOR_EXTERN from their definition):"
  printf '%s\n' "$extra" | sed 's/^/    /'
  status=1
fi
if [ -n "$missing" ]; then
  echo "check-symbols: declared ARBOR_EXTERN in $* but not defined in $so:"
  printf '%s\n' "$missing" | sed 's/^/    /'
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "check-symbols: ok, $so exports the $(printf '%s\n' "$declared" | grep -c .) declared arbor_ symbols and nothing else"
fi
exit "$status"
