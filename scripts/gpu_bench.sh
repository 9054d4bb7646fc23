#!/usr/bin/env bash
# Prefill figures on a CUDA machine: build with the CUDA preset, run the model tests on the GPU, the prefill
# benchmarks (Google Benchmark JSON), and end-to-end `lctx run --device cuda` of hsa-tiny on niah_single_1.
#
#   scripts/gpu_bench.sh OUT [PHASE ...]      phases: build test bench e2e-1m e2e-32m (default: all, in order)
#
# OUT receives build.log, test_models.log, bench_prefill.{json,txt}, and per end-to-end run its results folder
# and time (wall seconds of the whole `lctx run`: generation, prefill, decoding). e2e-1m runs the same sample
# pruned and with --full-prefill and fails when the two predictions differ. LibTorch comes from Python's torch;
# header-only libraries and the data folder may sit in .carry/ (docs/gpu.md). Environment: LCTX_BENCH_FILTER
# (default: every BM_Prefill/BM_Decode case but Mamba above 1M), LCTX_BENCH_SECONDS (default 540).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${1:?usage: scripts/gpu_bench.sh OUT [build|test|bench|e2e-1m|e2e-32m ...]}
shift
PHASES=${*:-build test bench e2e-1m e2e-32m}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -e data ] || { [ -e .carry/data ] && rm -f data && ln -s .carry/data data; }
LCTX=build-cuda/apps/lctx/lctx
CK=hsa:assets/checkpoints/hsa-tiny
rc=0

phase_build() {
  local prefix
  prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
  cmake --preset cuda -DCMAKE_PREFIX_PATH="$prefix;$ROOT/.carry" > "$OUT/build.log" 2>&1 &&
    cmake --build build-cuda -j "$(nproc)" --target lctx lctx_test_models lctx_bench_models >> "$OUT/build.log" 2>&1
  local r=$?
  echo "build rc=$r"; [ $r -eq 0 ] || tail -30 "$OUT/build.log"
  return $r
}
phase_test() {
  LCTX_TEST_DEVICE=cuda timeout 540 build-cuda/tests/lctx_test_models > "$OUT/test_models.log" 2>&1
  local r=$?
  echo "test_models (cuda) rc=$r"; tail -3 "$OUT/test_models.log"
  return $r
}
phase_bench() {
  local filter=${LCTX_BENCH_FILTER:-'BM_Prefill(Hsa|Swa)|BM_PrefillMamba/ctx:(65536|1048576)/|BM_Decode|BM_TrainStep/.*/ctx:4096'}
  timeout "${LCTX_BENCH_SECONDS:-540}" build-cuda/bench/lctx_bench_models --benchmark_filter="$filter" \
    --benchmark_out="$OUT/bench_prefill.json" --benchmark_out_format=json > "$OUT/bench_prefill.txt" 2>&1
  local r=$?
  echo "bench rc=$r"; grep -E "^BM_" "$OUT/bench_prefill.txt" | tail -40
  return $r
}
# e2e NAME LENGTH [lctx run options ...]: one sample, timed end to end
e2e() {
  local name=$1 len=$2
  shift 2
  rm -rf "$OUT/$name"
  local t0 t1
  t0=$(date +%s.%N)
  "$LCTX" run --model "$CK" --suite ruler --tasks niah_single_1 --lengths "$len" --samples 1 --device cuda \
    --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  local r=$?
  t1=$(date +%s.%N)
  echo "$name: rc=$r wall $(python3 -c "print(round($t1 - $t0, 1))") s" | tee "$OUT/$name.time"
  python3 - "$OUT/$name/results.jsonl" <<'PY' || true
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print({k: r.get(k) for k in ("prompt_tokens", "prefill_path", "prefill_upper_positions", "prefill_s",
                                 "decode_s", "tokens_per_s", "peak_device_mb", "peak_host_mb", "score", "prediction")})
PY
  return $r
}
phase_e2e-1m() {
  e2e e2e-1m-pruned 1m || return 1
  e2e e2e-1m-full 1m --full-prefill || return 1
  python3 - "$OUT/e2e-1m-pruned/results.jsonl" "$OUT/e2e-1m-full/results.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l)["prediction"] for l in open(p)] for p in sys.argv[1:3])
print("1m predictions", "match" if a == b else "DIFFER", a, b)
sys.exit(0 if a == b else 1)
PY
}
phase_e2e-32m() {
  e2e e2e-32m-pruned-offload-bf16 32m --kv-offload --precision bf16
}

for p in $PHASES; do
  "phase_$p" || rc=1
done
exit $rc
