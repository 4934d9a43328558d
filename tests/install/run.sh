#!/usr/bin/env bash
# tests/install/run.sh: install smoke test (make test-install).
#
# Installs arbor into a temporary prefix and builds tests/install/consumer.c the way
# a user would, with nothing but pkg-config: once against the shared library (run
# with LD_LIBRARY_PATH; it must load libarbor.so.<major> by its soname) and once
# statically (no libarbor needed at run time). A C++ program checks that arbor.h
# links from C++. Then a staged install (DESTDIR) must land under DESTDIR with the
# real prefix in arbor.pc, and uninstall must remove every file it installed.
#
# Uses $MAKE (default make) and $CC (default cc), run from anywhere.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tests/install"
make_cmd=${MAKE:-make}
cc=${CC:-cc}
cxx=${CXX:-c++}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/arbor-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

step() { printf 'install test: %s\n' "$*"; }
fail() { printf 'install test: FAIL: %s\n' "$*" >&2; exit 1; }

# $make_cmd may be several words (make's $(MAKE) is a path, but be liberal).
# shellcheck disable=SC2086
run_make() { $make_cmd --no-print-directory -C "$root" "$@"; }

step "make install PREFIX=$prefix"
run_make install PREFIX="$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "make install failed"; }

major=$(sed -n 's/^#define ARBOR_VERSION_MAJOR[[:space:]]*\([0-9]*\).*/\1/p' "$root/include/arbor.h")
version=$major.$(sed -n 's/^#define ARBOR_VERSION_MINOR[[:space:]]*\([0-9]*\).*/\1/p' "$root/include/arbor.h")
version=$version.$(sed -n 's/^#define ARBOR_VERSION_PATCH[[:space:]]*\([0-9]*\).*/\1/p' "$root/include/arbor.h")
for f in include/arbor.h include/arbor/names.h lib/libarbor.a "lib/libarbor.so.$version" \
         lib/pkgconfig/arbor.pc; do
  [ -f "$prefix/$f" ] || fail "$f was not installed"
done
[ -x "$prefix/bin/arbor" ] || fail "bin/arbor was not installed"
"$prefix/bin/arbor" --version >/dev/null || fail "the installed arbor does not run"
# arbor-exec: the helper for user, umask and rlimits, where libarbor looks for it.
helper="$prefix/libexec/arbor/arbor-exec"
[ -x "$helper" ] || fail "libexec/arbor/arbor-exec was not installed"
[ "$("$helper" --umask 0077 -- sh -c umask)" = 0077 ] || fail "the installed arbor-exec does not run"
grep -q "$helper" "$prefix/lib/libarbor.so.$version" ||
  fail "libarbor.so does not name $helper (its compiled-in exec helper)"
for link in "libarbor.so.$major" libarbor.so; do
  [ "$(readlink "$prefix/lib/$link")" = "libarbor.so.$version" ] ||
    fail "lib/$link is not a symlink to libarbor.so.$version"
done
soname=$(readelf -d "$prefix/lib/libarbor.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libarbor.so.$major" ] || fail "SONAME is '$soname', want libarbor.so.$major"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pc_version=$(pkg-config --modversion arbor) || fail "pkg-config does not find arbor"
[ "$pc_version" = "$version" ] || fail "arbor.pc says version $pc_version, arbor.h says $version"
cflags=$(pkg-config --cflags arbor)
libs=$(pkg-config --libs arbor)
# A static link must take libarbor.a even though libarbor.so sits next to it, so
# -larbor becomes -l:libarbor.a; the rest (libuv, Libs.private) comes from --static.
static_libs=$(pkg-config --static --libs arbor | sed 's/-larbor\b/-l:libarbor.a/')

# Users may compile with stricter flags than we do: the header must stay quiet.
# (gnu11, not c11: uv.h needs POSIX types that strict C11 hides.)
user_cflags="-std=gnu11 -pedantic -Wall -Wextra -Werror"

step "the installed daemon runs a service through the installed arbor-exec"
printf '{"tree": [{"service": "u", "umask": "0077", "argv": ["sh", "-c", "umask > %s/umask.tmp && mv %s/umask.tmp %s/umask; sleep 30"]}]}\n' \
  "$tmp" "$tmp" "$tmp" >"$tmp/arbor.json"
"$prefix/bin/arbor" run "$tmp/arbor.json" --port 0 >"$tmp/daemon.out" 2>"$tmp/daemon.err" &
daemon=$!
for _ in $(seq 100); do [ -f "$tmp/umask" ] && break; sleep 0.1; done
kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true
[ "$(cat "$tmp/umask" 2>/dev/null)" = 0077 ] ||
  { cat "$tmp/daemon.err" >&2; fail "the installed daemon did not run its service with umask 0077"; }

step "shared: $cc consumer.c $cflags $libs"
# shellcheck disable=SC2086
"$cc" $user_cflags "$here/consumer.c" -o "$tmp/consumer-shared" $cflags $libs
readelf -d "$tmp/consumer-shared" | grep "(NEEDED).*\[libarbor.so.$major\]" >/dev/null ||
  fail "consumer-shared does not need libarbor.so.$major"
LD_LIBRARY_PATH="$prefix/lib" "$tmp/consumer-shared" || fail "consumer-shared failed"
LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/consumer-shared" | grep "libarbor.so.$major => $prefix/lib/" >/dev/null ||
  fail "consumer-shared did not load the installed libarbor"

step "static: $cc consumer.c $cflags $static_libs"
# shellcheck disable=SC2086
"$cc" $user_cflags "$here/consumer.c" -o "$tmp/consumer-static" $cflags $static_libs
if readelf -d "$tmp/consumer-static" | grep '(NEEDED).*libarbor' >/dev/null; then
  fail "consumer-static still needs a shared libarbor"
fi
env -u LD_LIBRARY_PATH "$tmp/consumer-static" || fail "consumer-static failed"

if command -v "$cxx" >/dev/null 2>&1; then
  step "C++: $cxx (arbor.h inside extern \"C\")"
  printf '#include <arbor.h>\nint main() { return arbor_strerror(ARBOR_EINVAL) == nullptr; }\n' >"$tmp/cxx.cc"
  # shellcheck disable=SC2086
  "$cxx" -std=c++11 -Wall -Wextra -Werror "$tmp/cxx.cc" -o "$tmp/consumer-cxx" $cflags $libs ||
    fail "arbor.h does not build or link from C++"
  LD_LIBRARY_PATH="$prefix/lib" "$tmp/consumer-cxx" || fail "consumer-cxx failed"
fi

step "staged: make install DESTDIR=$tmp/stage PREFIX=/opt/arbor"
run_make install DESTDIR="$tmp/stage" PREFIX=/opt/arbor >"$tmp/stage.log" 2>&1 ||
  { cat "$tmp/stage.log"; fail "staged install failed"; }
grep -qx 'prefix=/opt/arbor' "$tmp/stage/opt/arbor/lib/pkgconfig/arbor.pc" ||
  fail "staged arbor.pc does not say prefix=/opt/arbor"
[ -f "$tmp/stage/opt/arbor/lib/libarbor.so.$version" ] || fail "staged install missed the library"
[ -x "$tmp/stage/opt/arbor/libexec/arbor/arbor-exec" ] || fail "staged install missed arbor-exec"

step "make uninstall"
run_make uninstall PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1 ||
  { cat "$tmp/uninstall.log"; fail "make uninstall failed"; }
run_make uninstall DESTDIR="$tmp/stage" PREFIX=/opt/arbor >>"$tmp/uninstall.log" 2>&1 ||
  { cat "$tmp/uninstall.log"; fail "staged make uninstall failed"; }
left=$(find "$prefix" "$tmp/stage" \( -type f -o -type l \))
[ -z "$left" ] || fail "uninstall left files behind: $left"

step ok
