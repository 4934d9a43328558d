#!/usr/bin/env bash
# scripts/deps.sh: install the Debian packages arbor needs to build, test and run.
#
# Checks each package with dpkg-query and installs only the missing ones (one
# `apt-get update`, then `apt-get install -y --no-install-recommends`), as root or
# through sudo. Quiet and quick when everything is there. Exits non-zero with the
# reason when it cannot install. Written for Debian 12 (bookworm).
set -euo pipefail

packages=(
  build-essential      # gcc, make, binutils, libc headers
  clang                # the second compiler; the sanitizer test run uses it
  libclang-rt-14-dev   # clang's ASan/UBSan runtime: only *recommended* by clang-14,
                       # so --no-install-recommends would leave it out
  pkg-config
  libuv1-dev           # the core's only dependency
  libmicrohttpd-dev    # admin HTTP server
  libcjson-dev         # JSON for the admin API and the daemon's config
  libcmocka-dev        # unit tests
  libcurl4-openssl-dev # arbor ctl
  curl                 # integration tests talk to the admin API
  valgrind             # make test-valgrind; VALGRIND_STACK_REGISTER header for fibers
)

say() { printf 'deps: %s\n' "$*"; }

if ! command -v dpkg-query >/dev/null 2>&1; then
  say "not a Debian system; install the equivalents of: ${packages[*]}"
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  say "all ${#packages[@]} packages present"
  exit 0
fi
say "missing: ${missing[*]}"

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  # No password prompt without a terminal to answer it (CI): fail instead of hang.
  if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
else
  say "cannot install: not root and no sudo. As root, run:"
  say "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
say "running: ${as_root[*]:+${as_root[*]} }apt-get update"
if ! "${as_root[@]}" apt-get update -q; then
  say "apt-get update failed (network? sources.list?); cannot install: ${missing[*]}"
  exit 1
fi
say "running: ${as_root[*]:+${as_root[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  say "apt-get install failed; cannot install: ${missing[*]}"
  exit 1
fi
say "installed: ${missing[*]}"
