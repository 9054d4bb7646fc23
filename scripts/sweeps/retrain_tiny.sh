#!/usr/bin/env bash
# Retrain hsa-tiny at 512 on a GPU and measure the depth grid where the shipped hsa-tiny misses (needle right
# before the question). Device machine. Variants (docs/training.md):
#   copywide (default): short-distance copies in the mix (copy 0.4, copy-wide 0.2, niah1 0.4), 4000 steps x 32,
#                       compared with the shipped checkpoint;
#   aux:                the two fixes of the CPU recipe (selection_aux 1.0, --loss-norm row), once with the
#                       shipped mix and once with copy-wide, 3000 steps x 32.
# Usage: scripts/sweeps/retrain_tiny.sh [copywide|aux]
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
L=build-cuda/apps/lctx/lctx
case "${1:-copywide}" in
  copywide)
    KEEP=1 STEPS=4000 SECS=420 EVAL_SAMPLES=100 THREADS=8 MIX=copy:0.4,copy-wide:0.2,niah1:0.4 OUT=${OUT:-out/sweep}/tiny \
      scripts/gpu_sweep.sh "tinyw:hsa:tiny-ts.json:32:3e-3"
    models="runs/sweep/tinyw assets/checkpoints/hsa-tiny"; grid_secs=120 ;;
  aux)
    KEEP=1 STEPS=${STEPS:-3000} SECS=${SECS:-330} EVAL_SAMPLES=100 THREADS=8 TRAIN_ARGS="--loss-norm row" OUT=${OUT:-out/sweep}/tinyaux \
      scripts/gpu_sweep.sh "tinyA:hsa:tiny-aux.json:32:3e-3::copy=0.5,niah1=0.5" "tinyB:hsa:tiny-aux.json:32:3e-3::copy=0.4,copy-wide=0.2,niah1=0.4"
    models="runs/sweep/tinyA runs/sweep/tinyB"; grid_secs=90 ;;
  *) echo "retrain_tiny: unknown variant '$1' (copywide | aux)" >&2; exit 1 ;;
esac
for m in $models; do
  rm -rf /tmp/depth; timeout "$grid_secs" "$L" run --model "hsa:$m" --suite ruler --tasks niah_single_1 --lengths 1k,2k,4k \
    --depths 0,50,100 --samples 10 --device cuda --quiet --out /tmp/depth > /dev/null 2>&1
  echo "== $m"; python3 - <<'PY'
import json, collections
acc = collections.defaultdict(list)
for l in open('/tmp/depth/results.jsonl'):
    r = json.loads(l); acc[(r.get('depth'), r.get('length'))].append(r.get('score', 0))
for k in sorted(acc, key=lambda k: (k[0] or 0, k[1] or 0)): print(k, sum(acc[k]) / len(acc[k]), len(acc[k]))
PY
done
