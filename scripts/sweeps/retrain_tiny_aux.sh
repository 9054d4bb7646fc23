#!/usr/bin/env bash
# Retrain hsa-tiny with the two fixes of the CPU recipe (selection_aux 1.0, --loss-norm row), once with the
# shipped mix and once with short-distance copies (copy-wide), 3000 steps x 32 rows at 512 in bf16, and measure
# the depth grid where the shipped hsa-tiny misses (needle right before the question). Device machine.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
L=build-cuda/apps/lctx/lctx
KEEP=1 STEPS=${STEPS:-3000} SECS=${SECS:-330} EVAL_SAMPLES=100 THREADS=8 TRAIN_ARGS="--loss-norm row" OUT=${OUT:-out/sweep}/tinyaux \
  scripts/gpu_sweep.sh "tinyA:hsa:tiny-aux.json:32:3e-3::copy=0.5,niah1=0.5" "tinyB:hsa:tiny-aux.json:32:3e-3::copy=0.4,copy-wide=0.2,niah1=0.4"
for m in runs/sweep/tinyA runs/sweep/tinyB; do
  rm -rf /tmp/depth; timeout 90 "$L" run --model "hsa:$m" --suite ruler --tasks niah_single_1 --lengths 1k,2k,4k \
    --depths 0,50,100 --samples 10 --device cuda --quiet --out /tmp/depth > /dev/null 2>&1
  echo "== $m"; python3 - <<'PY'
import json, collections
acc = collections.defaultdict(list)
for l in open('/tmp/depth/results.jsonl'):
    r = json.loads(l); acc[(r.get('depth'), r.get('length'))].append(r.get('score', 0))
for k in sorted(acc, key=lambda k: (k[0] or 0, k[1] or 0)): print(k, sum(acc[k]) / len(acc[k]), len(acc[k]))
PY
done
