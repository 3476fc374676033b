#!/usr/bin/env bash
# Installs what terrafuse needs on a fresh Debian machine, then builds it (editable).
# A second run skips what is already there: apt only for missing packages, pip only for
# missing requirements, and the C++ build is incremental (ninja + ccache).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(g++ cmake ninja-build ccache git libgtest-dev libxxhash-dev libboost-dev libsqlite3-dev
              libspng-dev libdeflate-dev zlib1g-dev nlohmann-json3-dev libsimdjson-dev
              libjpeg62-turbo-dev libwebp-dev libtiff-dev libgif-dev libprotozero-dev pkg-config)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" scripts/check_requirements.py requirements-dev.txt; then
  echo "setup: installing Python packages from requirements-dev.txt"
  "$PYTHON" -m pip install -q -r requirements-dev.txt
fi

# The engine links against the Arrow of the installed pyarrow, so build without isolation.
echo "setup: building terrafuse (C++ engine + fused._core)"
"$PYTHON" -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | grep -v "^\s*$" | grep -iv "warning: running pip as" || true
"$PYTHON" -c "import fused._core" || { echo "setup: the build failed" >&2; exit 1; }
