#!/usr/bin/env bash
# Installs what terrafuse needs on a fresh Debian machine, then builds it (editable).
# A second run skips what is already there: apt only for missing packages, pip only for
# missing requirements, and the C++ build is incremental (ninja + ccache).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(g++ cmake ninja-build ccache git libgtest-dev libxxhash-dev libboost-dev libsqlite3-dev
              libspng-dev libdeflate-dev zlib1g-dev nlohmann-json3-dev
              libjpeg62-turbo-dev libwebp-dev libtiff-dev libgif-dev libprotozero-dev pkg-config
              libgeos-dev libmimalloc-dev libgnutls28-dev libzstd-dev)
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

# The workbench (web/): Node for the build, Chromium for its end-to-end test. The bundle is
# built into the Python package (python/fused/web), rebuilt only when its inputs change.
if ! command -v node >/dev/null; then
  echo "setup: installing Node.js (the workbench build needs Node >= 20)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "setup: installing chromium (workbench end-to-end test)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
lock_stamp=$(sha256sum web/package-lock.json | cut -c1-64)
if [ "$(cat web/node_modules/.tf-stamp 2>/dev/null)" != "$lock_stamp" ]; then
  echo "setup: installing the workbench's npm packages (npm ci)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_stamp" > web/node_modules/.tf-stamp
fi
web_stamp=$(cd web && find index.html vite.config.ts tsconfig.json package-lock.json src scripts -type f \
             -not -name '*.test.ts' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
if [ "$(cat python/fused/web/.build-stamp 2>/dev/null)" != "$web_stamp" ]; then
  echo "setup: building the workbench (npm run build)"
  (cd web && npm run build --silent)
  echo "$web_stamp" > python/fused/web/.build-stamp
fi
