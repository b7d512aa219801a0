#!/usr/bin/env bash
# infer_compare.sh - nnreg's inference engine and TensorFlow.js's wasm
# backend on the same network (the nsfw_mobilenet_v2 fixture, MobileNetV2
# 1.4 at 224x224) and the same input, in the same run, round after round so
# that both see the same machine load.
#
#   tests/bench/infer_compare.sh [RUNS_PER_ROUND [ROUNDS]]   (defaults 10, 3)
#
# Needs the build (BUILD, default ./build, for tests/bench/infer_bench),
# node >= 18 and, the first time, the npm registry: the pinned packages of
# tests/bench/tfjs/package-lock.json are installed there with `npm ci`.
# Prints each round's medians (wall ms) and the ratio tfjs / engine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build}
RUNS=${1:-10}
ROUNDS=${2:-3}
NET=$ROOT/tests/fixtures/networks/nsfw_mobilenet_v2

[ -x "$BUILD/tests/bench/infer_bench" ] || make -C "$BUILD" tests/bench/infer_bench
if [ ! -d tests/bench/tfjs/node_modules ]; then
  (cd tests/bench/tfjs && npm ci --no-audit --no-fund)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$NET/saved_model.pb" "$tmp/saved_model.pb"

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  engine=$(OPENBLAS_NUM_THREADS=1 "$BUILD/tests/bench/infer_bench" "$tmp" "$NET/input.npy" input:0 \
    Identity:0 "$RUNS" | sed -n 's/^median of [0-9]*: \([0-9.]*\) ms wall.*/\1/p')
  tfjs=$(node tests/bench/tfjs/infer_tfjs.js "$NET/input.npy" "$NET/expected/Identity_0.npy" "$RUNS" \
    2>/dev/null | sed -n 's/^median of [0-9]*: \([0-9.]*\) ms.*/\1/p')
  awk -v r="$round" -v e="$engine" -v t="$tfjs" \
    'BEGIN { printf "round %s: engine %.1f ms, tfjs wasm %.1f ms, tfjs / engine %.2f\n", r, e, t, t / e }'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
