#!/usr/bin/env bash
# One batch on a CUDA machine (LibTorch from Python's torch; no apt): configure with CUDA, build, run the
# tests (model tests on the GPU through LCTX_TEST_DEVICE=cuda), run the GPU benchmarks, and copy logs to
# $OUT (or out/gpu). Header-only libraries (CLI11, cpp-httplib) and the data folder travel in .carry/
# (see docs/gpu.md). Environment: LCTX_GPU_STEPS="build train test bench" (default "build test bench"; train: LCTX_TRAIN_SECONDS, LCTX_TRAIN_ARCHS, STEPS/BATCH/... of train_builtin.sh),
# LCTX_BENCH_MAXLEN (default 1m), LCTX_CTEST_ARGS, LCTX_BENCH_FILTER.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/out/gpu}
PHASES=${LCTX_GPU_STEPS:-build test bench}
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
if [[ $PHASES == *build* ]]; then
  t0=$(date +%s)
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCTX_WITH_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/.carry" > "$OUT/configure.log" 2>&1 \
    || { tail -30 "$OUT/configure.log"; exit 1; }
  cmake --build build-cuda -j 16 -- -k 0 > "$OUT/build.log" 2>&1 || { grep -E -A3 "error|Error" "$OUT/build.log" | head -60; exit 1; }
  echo "build ok in $(( $(date +%s) - t0 ))s"
fi
if [[ $PHASES == *train* ]]; then
  # Built-in tiny checkpoints on the GPU (each arch bounded by LCTX_TRAIN_SECONDS; the last periodic
  # checkpoint is kept if the limit hits), then held-out needle accuracy, then a tarball in $OUT.
  for arch in ${LCTX_TRAIN_ARCHS:-hsa swa mamba}; do
    t0=$(date +%s)
    LCTX=build-cuda/apps/lctx/lctx DEVICE=cuda NO_EVAL=1 timeout "${LCTX_TRAIN_SECONDS:-150}" \
      bash scripts/train_builtin.sh "$arch" > "$OUT/train-$arch.log" 2>&1
    echo "train $arch rc=$? in $(( $(date +%s) - t0 ))s"; tail -3 "$OUT/train-$arch.log"
    w=runs/train/$arch-tiny d=assets/checkpoints/$arch-tiny
    if [ -f "$w/model.safetensors" ] && [ ! -f "$d/model.safetensors" ]; then
      mkdir -p "$d" && cp "$w/config.json" "$w/model.safetensors" "$w/train_log.jsonl" "$d/"
    fi
  done
  tar czf "$OUT/checkpoints.tgz" assets/checkpoints
  LCTX=build-cuda/apps/lctx/lctx DEVICE=cuda LENGTHS="${LCTX_EVAL_LENGTHS:-512 4096}" SAMPLES=${LCTX_EVAL_SAMPLES:-100} \
    OUT="$OUT/eval" timeout "${LCTX_EVAL_SECONDS:-120}" bash scripts/eval_needle.sh | tee "$OUT/eval_needle.txt"
fi
if [[ $PHASES == *test* ]]; then
  LCTX_TEST_DEVICE=cuda timeout "${LCTX_CTEST_SECONDS:-300}" ctest --test-dir build-cuda --output-on-failure ${LCTX_CTEST_ARGS:-} > "$OUT/ctest.log" 2>&1
  echo "ctest rc=$?"; grep -E "tests passed|Passed|Failed|\*\*\*" "$OUT/ctest.log" | tail -20
fi
if [[ $PHASES == *bench* ]]; then
  export LCTX_BENCH_DEVICE=cuda LCTX_BENCH_MAXLEN=${LCTX_BENCH_MAXLEN:-1m}
  for b in build-cuda/bench/lctx_bench_models; do
    [ -x "$b" ] || continue
    name=$(basename "$b")
    timeout 300 "$b" ${LCTX_BENCH_FILTER:+--benchmark_filter=$LCTX_BENCH_FILTER} \
      --benchmark_out="$OUT/$name.json" --benchmark_out_format=json > "$OUT/$name.txt" 2>&1
    echo "$name rc=$?"; tail -40 "$OUT/$name.txt"
  done
fi
