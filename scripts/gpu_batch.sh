#!/usr/bin/env bash
# One batch on a CUDA machine (LibTorch from Python's torch; no apt): configure with CUDA, build, run the
# tests, run the GPU benchmarks, and copy logs to $OUT (or out/gpu). Header-only libraries and the data
# folder travel in .carry/ (see docs/gpu.md).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/out/gpu}
mkdir -p "$OUT"
export LCTX_DATA=$ROOT/.carry/data LCTX_CACHE=/tmp/lctx-cache
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import torch;print("torch", torch.__version__)'
} > "$OUT/env.txt" 2>&1
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCTX_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/.carry" > "$OUT/configure.log" 2>&1 \
  || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-cuda -j 16 > "$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -40; exit 1; }
echo "build ok"
ctest --test-dir build-cuda --output-on-failure ${LCTX_CTEST_ARGS:-} > "$OUT/ctest.log" 2>&1
echo "ctest rc=$?"; tail -15 "$OUT/ctest.log"
if [ -x build-cuda/bench/lctx_bench_models ]; then
  LCTX_BENCH_DEVICE=cuda ./build-cuda/bench/lctx_bench_models ${LCTX_BENCH_ARGS:-} \
    --benchmark_out="$OUT/bench_models.json" --benchmark_out_format=json > "$OUT/bench_models.txt" 2>&1
  echo "bench rc=$?"; tail -30 "$OUT/bench_models.txt"
fi
