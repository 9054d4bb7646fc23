#!/usr/bin/env bash
# The CUDA kernels on a GPU machine: configure with the cuda preset (LibTorch from Python's torch) into
# build-cuda, build the model tests and benchmarks, run the kernel tests on the GPU (LCTX_TEST_DEVICE=cuda,
# tag [device]) and the kernel benchmarks (kern_*) with JSON output.
#   usage: scripts/gpu_kernels.sh OUT_DIR [benchmark filter, default ^kern_] [sanitize]
# With a third argument "sanitize" the kernel tests also run under compute-sanitizer memcheck (slow).
# Writes OUT_DIR/{env.txt, configure.log, build.log, test_kernels.txt, test_kernels.xml, bench_kernels.json,
# bench_kernels.txt}. Header-only dependencies come from .carry/ as for scripts/gpu_batch.sh (docs/gpu.md).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${1:?usage: scripts/gpu_kernels.sh OUT_DIR [benchmark filter]}
FILTER=${2:-^kern_}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -e data ] || { [ -d .carry/data ] && ln -s .carry/data data; }
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)'
  nvcc --version | tail -1
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t0=$(date +%s)
cmake --preset cuda -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/.carry" -DCMAKE_CUDA_FLAGS=-Xptxas=-v > "$OUT/configure.log" 2>&1 \
  || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build-cuda -j "$(nproc)" --target lctx_test_models lctx_bench_models > "$OUT/build.log" 2>&1 \
  || { grep -E -B2 -A6 "error" "$OUT/build.log" | head -80; exit 1; }
echo "build ok in $(( $(date +%s) - t0 ))s"
grep -E "registers|spill" "$OUT/build.log" | sort | uniq -c | head -40 || true
t0=$(date +%s)
LCTX_TEST_DEVICE=cuda timeout 900 build-cuda/tests/lctx_test_models "[device]" --reporter console \
  > "$OUT/test_kernels.txt" 2>&1
rc=$?
LCTX_TEST_DEVICE=cuda timeout 900 build-cuda/tests/lctx_test_models "[device]" --reporter junit \
  > "$OUT/test_kernels.xml" 2>/dev/null
echo "kernel tests rc=$rc in $(( $(date +%s) - t0 ))s"
grep -E "^\[kernels:" "$OUT/test_kernels.txt" | grep -c " ok$" | sed 's/^/checks ok: /'
grep -E "FAIL|FAILED|failed|error" "$OUT/test_kernels.txt" | head -40
tail -4 "$OUT/test_kernels.txt"
if [ "${3:-}" = sanitize ] && command -v compute-sanitizer > /dev/null; then
  LCTX_TEST_DEVICE=cuda timeout 1800 compute-sanitizer --tool memcheck --print-limit 20 \
    build-cuda/tests/lctx_test_models "[device]" > "$OUT/test_kernels_memcheck.txt" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|Invalid" "$OUT/test_kernels_memcheck.txt" | head -10
fi
t0=$(date +%s)
timeout 1200 build-cuda/bench/lctx_bench_models --benchmark_filter="$FILTER" \
  --benchmark_out="$OUT/bench_kernels.json" --benchmark_out_format=json > "$OUT/bench_kernels.txt" 2>&1
echo "bench rc=$? in $(( $(date +%s) - t0 ))s"
grep -E "_mean|_median|ERROR|error" "$OUT/bench_kernels.txt" | grep -v _stddev | head -80
exit $rc
