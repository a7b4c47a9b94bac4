#!/usr/bin/env bash
# The Bitcoin SV node the regtest integration tests and `make demo` run against:
# a thin wrapper over peerpool.testing.node_install (the same code as
# `peerpool node install`), run as a plain script so that it works before the
# package is built. The binary goes into the user cache
# (~/.cache/peerpool/regtest-node, or $PEERPOOL_REGTEST_CACHE).
#
# Prints the absolute path of bitcoind on stdout (everything else goes to stderr),
# so callers can do BITCOIND=$(bash scripts/install-regtest-node.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec "${PYTHON:-python3}" "$ROOT/python/peerpool/testing/node_install.py"
