#!/usr/bin/env bash
# Installs everything Strata needs on a fresh Debian machine, then builds the native addon.
# Idempotent: packages already present are skipped. Runs as root or through sudo.
#   bash scripts/setup.sh            # engine, tests, datasets, browser test
#   bash scripts/setup.sh --torch    # also Debian's PyTorch, the benchmarks' comparator
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libdnnl-dev build-essential python3 pkg-config chromium dataset-fashion-mnist)
if [[ "${1:-}" == "--torch" ]]; then packages+=(python3-torch); fi

sudo_cmd=()
if [[ "$(id -u)" != "0" ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: system packages present"
fi

# npm packages and the addon build (package.json's install script runs node-gyp).
if [[ -f package-lock.json ]]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
node -e "require('./build/Release/strata_native.node')" \
  && echo "setup: native oneDNN backend built" \
  || { echo "setup: the native addon did not build; see the node-gyp output above" >&2; exit 1; }
