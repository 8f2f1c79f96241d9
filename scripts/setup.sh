#!/usr/bin/env bash
# Installs everything flowtap needs on Debian 12 (as root, or with sudo) and
# builds it: system packages, then `npm ci`, which also compiles the patched
# `cap` against libpcap and the TypeScript sources into dist/.
#
# FLOWTAP_SETUP_PACKAGES=runtime  only what `flowtap` itself needs (libpcap)
# default                          also what the test suite uses (tshark, tcpdump,
#                                  prometheus/promtool, iproute2, nftables, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=(libpcap-dev make g++ python3)
testing=(tcpdump tshark prometheus iproute2 nftables ethtool iputils-ping procps util-linux libcap2-bin tcpreplay)
if [ "${FLOWTAP_SETUP_PACKAGES:-all}" = runtime ]; then pkgs=("${runtime[@]}"); else pkgs=("${runtime[@]}" "${testing[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

npm ci --no-audit --no-fund
