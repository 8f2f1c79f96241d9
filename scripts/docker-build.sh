#!/usr/bin/env bash
# scripts/docker-build.sh - the build stage of the Dockerfile, as a script.
#
#   scripts/docker-build.sh [OUT]          (default OUT: build/docker-root)
#
# Builds flowtap's runtime tree into OUT from the sources listed in SOURCES
# (exactly what the Dockerfile COPYs into its build stage): `npm ci` (its
# postinstall applies patches/cap+0.2.1.patch and compiles `cap` against
# libpcap-dev; `prepare` compiles the TypeScript into dist/), then
# `npm prune --omit=dev`, then copies package.json, bin/, dist/ and the
# production node_modules to OUT. At run time OUT needs only node and the
# libpcap runtime (libpcap0.8).
#
# The Dockerfile's build stage is `RUN scripts/docker-build.sh /opt/flowtap`,
# so the image and this script cannot drift apart; CI runs the script
# without Docker (test/run-docker.test.ts) and starts the result the way the
# image's runtime stage does (a copy of node with cap_net_raw file
# capabilities, as a non-root user).
#
# Needs: node >= 20 with npm, libpcap-dev, make, g++, python3 (node-gyp).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$SRC/build/docker-root}

# Keep in step with the COPY lines of the Dockerfile's build stage.
SOURCES=(package.json package-lock.json tsconfig.json tsconfig.build.json patches scripts/docker-build.sh bin agent parsers exporters bench test/gen)

if [ "${1:-}" = "--sources" ]; then
  printf '%s\n' "${SOURCES[@]}"
  exit 0
fi

for tool in node npm make g++ python3; do
  command -v "$tool" >/dev/null || { echo "docker-build: $tool is missing (apt-get install -y libpcap-dev make g++ python3)" >&2; exit 1; }
done
[ -e /usr/include/pcap/pcap.h ] || { echo "docker-build: libpcap-dev is missing (apt-get install -y libpcap-dev)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowtap-docker-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 1. The sources (in the Docker build stage they are already in place: copying again is harmless).
for s in "${SOURCES[@]}"; do
  mkdir -p "$WORK/$(dirname "$s")"
  # bench/out holds generated captures: never part of a build.
  (cd "$SRC" && tar -cf - --exclude='bench/out' "$s") | (cd "$WORK" && tar -xf -)
done

# 2. Install and build: patch cap, compile it against libpcap, compile TypeScript.
(cd "$WORK" && npm ci --no-audit --no-fund --loglevel=error)

# 3. Production dependencies only (prom-client, cap and theirs).
(cd "$WORK" && npm prune --omit=dev --no-audit --no-fund --loglevel=error)

# 4. The runtime tree.
rm -rf "$OUT"
mkdir -p "$OUT"
cp -a "$WORK/package.json" "$WORK/bin" "$WORK/dist" "$WORK/node_modules" "$OUT/"
# Not needed at run time: compiled benchmarks and test generators, cap's object files and sources.
rm -rf "$OUT/dist/bench" "$OUT/dist/test" "$OUT/node_modules/cap/build/Release/obj.target" \
       "$OUT/node_modules/cap/src" "$OUT/node_modules/cap/deps" "$OUT/node_modules/.package-lock.json"
find "$OUT/dist" -name '*.map' -delete
find "$OUT/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete

# 5. Smoke check: the binding loads (it links libpcap.so.0.8) and the CLI answers.
node -e "require('$OUT/node_modules/cap')"
node "$OUT/bin/flowtap.js" --version
echo "docker-build: runtime tree in $OUT ($(du -sh "$OUT" | cut -f1))"
