#!/usr/bin/env bash
# One batch on a CUDA machine (LibTorch from Python's torch; no apt): configure with CUDA, build, train the
# built-in tiny checkpoints, run the model tests on the GPU (LCTX_TEST_DEVICE=cuda), run the GPU benchmarks.
# Header-only libraries (CLI11, cpp-httplib) may sit in .carry/include and the data folder in .carry/data on a
# machine without a package manager (see docs/gpu.md).
# Results go to $OUT (default out/gpu): logs.tgz (every log, bench JSON, eval predictions, configs) and
# <arch>-tiny.safetensors.
# Environment:
#   LCTX_GPU_STEPS      phases run in the order given, any of "build train test bench" (default "build test bench")
#   LCTX_BUILD_TARGETS  cmake targets (default: all)
#   LCTX_TRAIN_ARCHS    (default "hsa swa mamba"; ARCH=CONFIG.json trains a variant); LCTX_TRAIN_SECONDS (150) bounds each;
#                       LCTX_TRAIN_STEPS_<arch> overrides STEPS per arch; BATCH/CONTEXT/LENGTHS/MIX/LR as in
#                       scripts/train_builtin.sh
#   LCTX_EVAL_LENGTHS ("512 4096"), LCTX_EVAL_SAMPLES (100), LCTX_EVAL_SECONDS (120)
#   LCTX_CTEST_SECONDS (300), LCTX_CTEST_ARGS; LCTX_BENCH_FILTER (a --benchmark_filter; the benchmarks pick the GPU when one is visible), LCTX_BENCH_SECONDS (300)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/out/gpu}
LOG=$OUT/logs
PHASES=${LCTX_GPU_STEPS:-build test bench}
mkdir -p "$LOG"
[ -e data ] || ln -s .carry/data data           # tests and the CLI read <source>/data
export LCTX_CACHE=/tmp/lctx-cache
TORCH_PREFIX=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
pack() { tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$LOG"; }
trap pack EXIT
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import torch;print("torch", torch.__version__)'
  nproc
} > "$LOG/env.txt" 2>&1
cat "$LOG/env.txt"
phase_build() {
  t0=$(date +%s)
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCTX_WITH_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/.carry" > "$LOG/configure.log" 2>&1 \
    || { tail -30 "$LOG/configure.log"; return 1; }
  targets=()
  for t in ${LCTX_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
  cmake --build build-cuda -j 16 "${targets[@]}" -- -k 0 > "$LOG/build.log" 2>&1 \
    || { grep -E -A3 "error|Error" "$LOG/build.log" | head -60; return 1; }
  echo "build ok in $(( $(date +%s) - t0 ))s"
}
phase_test() {
  t0=$(date +%s)
  LCTX_TEST_DEVICE=cuda timeout "${LCTX_CTEST_SECONDS:-300}" ctest --test-dir build-cuda --output-on-failure \
    ${LCTX_CTEST_ARGS:-} > "$LOG/ctest.log" 2>&1
  echo "ctest rc=$? in $(( $(date +%s) - t0 ))s"; grep -E "tests passed|Passed|Failed|\*\*\*|FAILED" "$LOG/ctest.log" | tail -20
}
phase_bench() {
  b=build-cuda/bench/lctx_bench_models
  timeout "${LCTX_BENCH_SECONDS:-300}" "$b" ${LCTX_BENCH_FILTER:+--benchmark_filter=$LCTX_BENCH_FILTER} \
    --benchmark_out="$LOG/bench_models.json" --benchmark_out_format=json > "$LOG/bench_models.txt" 2>&1
  echo "bench rc=$?"; grep -v "^\*\*\*\|^---" "$LOG/bench_models.txt" | tail -30
}
phase_train() {
  # Built-in tiny checkpoints (each bounded by LCTX_TRAIN_SECONDS; the last periodic checkpoint is kept if
  # the limit hits), then held-out needle accuracy. LCTX_TRAIN_ARCHS items: ARCH or ARCH=CONFIG.json (keys
  # over the tiny preset; the checkpoint is then named ARCH-tiny-<config file name>).
  local cks=()
  for item in ${LCTX_TRAIN_ARCHS:-hsa swa mamba}; do
    local arch=${item%%=*} cfg="" name=${item%%=*}-tiny
    if [[ $item == *=* ]]; then cfg=${item#*=}; name=$name-$(basename "$cfg" .json); fi
    if [ -z "$cfg" ] && [ "$arch" = hsa ]; then cfg=assets/configs/hsa-tiny.json; fi
    t0=$(date +%s)
    v=LCTX_TRAIN_STEPS_$arch
    LCTX=build-cuda/apps/lctx/lctx DEVICE=cuda NO_EVAL=1 STEPS=${!v:-${STEPS:-300}} CONFIG=$cfg NAME=$name \
      timeout "${LCTX_TRAIN_SECONDS:-150}" bash scripts/train_builtin.sh "$arch" > "$LOG/train-$name.log" 2>&1
    echo "train $name rc=$? in $(( $(date +%s) - t0 ))s"; tail -2 "$LOG/train-$name.log"
    w=runs/train/$name d=assets/checkpoints/$name
    if [ -f "$w/model.safetensors" ] && [ ! -f "$d/model.safetensors" ]; then
      mkdir -p "$d" && cp "$w/config.json" "$w/model.safetensors" "$w/train_log.jsonl" "$d/"
    fi
    if [ -f "$d/model.safetensors" ]; then
      cp "$d/model.safetensors" "$OUT/$name.safetensors"
      mkdir -p "$LOG/$name" && cp "$d/config.json" "$d/train_log.jsonl" "$LOG/$name/"
      cks+=("$d")
    fi
  done
  [ ${#cks[@]} -gt 0 ] || return 0
  LCTX=build-cuda/apps/lctx/lctx DEVICE=cuda LENGTHS="${LCTX_EVAL_LENGTHS:-512 4096}" SAMPLES=${LCTX_EVAL_SAMPLES:-100} \
    OUT="$LOG/eval" timeout "${LCTX_EVAL_SECONDS:-120}" bash scripts/eval_needle.sh "${cks[@]}" | tee "$LOG/eval_needle.txt"
}
for phase in $PHASES; do "phase_$phase" || exit 1; done
