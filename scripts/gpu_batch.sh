#!/usr/bin/env bash
# One batch on a CUDA machine (LibTorch from Python's torch; no apt): configure with CUDA, build, run the
# tests (model tests on the GPU through LCTX_TEST_DEVICE=cuda), run the GPU benchmarks, and copy logs to
# $OUT (or out/gpu). Header-only libraries (CLI11, cpp-httplib) and the data folder travel in .carry/
# (see docs/gpu.md). Environment: LCTX_GPU_STEPS="build test bench" (default all three),
# LCTX_BENCH_MAXLEN (default 1m), LCTX_CTEST_ARGS, LCTX_BENCH_FILTER.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/out/gpu}
STEPS=${LCTX_GPU_STEPS:-build test bench}
mkdir -p "$OUT"
[ -e data ] || ln -s .carry/data data           # tests and the CLI read <source>/data
export LCTX_CACHE=/tmp/lctx-cache
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import torch;print("torch", torch.__version__)'
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
if [[ $STEPS == *build* ]]; then
  t0=$(date +%s)
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCTX_WITH_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/.carry" > "$OUT/configure.log" 2>&1 \
    || { tail -30 "$OUT/configure.log"; exit 1; }
  cmake --build build-cuda -j 16 -- -k 0 > "$OUT/build.log" 2>&1 || { grep -E -A3 "error|Error" "$OUT/build.log" | head -60; exit 1; }
  echo "build ok in $(( $(date +%s) - t0 ))s"
fi
if [[ $STEPS == *test* ]]; then
  LCTX_TEST_DEVICE=cuda ctest --test-dir build-cuda --output-on-failure ${LCTX_CTEST_ARGS:-} > "$OUT/ctest.log" 2>&1
  echo "ctest rc=$?"; grep -E "tests passed|Passed|Failed|\*\*\*" "$OUT/ctest.log" | tail -20
fi
if [[ $STEPS == *bench* ]]; then
  export LCTX_BENCH_DEVICE=cuda LCTX_BENCH_MAXLEN=${LCTX_BENCH_MAXLEN:-1m}
  for b in build-cuda/bench/lctx_bench_models; do
    [ -x "$b" ] || continue
    name=$(basename "$b")
    timeout 300 "$b" ${LCTX_BENCH_FILTER:+--benchmark_filter=$LCTX_BENCH_FILTER} \
      --benchmark_out="$OUT/$name.json" --benchmark_out_format=json > "$OUT/$name.txt" 2>&1
    echo "$name rc=$?"; tail -40 "$OUT/$name.txt"
  done
fi
