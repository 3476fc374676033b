#!/usr/bin/env bash
# Installs the programs the benchmarks compare against (bench/server: nginx and wrk). Not
# needed by terrafuse or its tests; a benchmark whose peer is missing skips that row.
set -euo pipefail
PACKAGES=(nginx wrk)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Debian starts nginx's service on install: the benchmarks start their own, so forbid it.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
echo "bench_peers: installing ${missing[*]}"
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null ||
  echo "bench_peers: could not install ${missing[*]}; their benchmark rows are skipped" >&2
if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
