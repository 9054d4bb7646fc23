#!/usr/bin/env bash
# Retrain hsa-tiny with short-distance copies in the mix (copy-wide) and compare it with the shipped one on
# the depth grid where the shipped one misses (needle right before the question). Device machine.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
L=build-cuda/apps/lctx/lctx
KEEP=1 STEPS=4000 SECS=420 EVAL_SAMPLES=100 THREADS=8 MIX=copy:0.4,copy-wide:0.2,niah1:0.4 OUT=${OUT:-out/sweep}/tiny \
  scripts/gpu_sweep.sh "tinyw:hsa:tiny-ts.json:32:3e-3"
for m in runs/sweep/tinyw assets/checkpoints/hsa-tiny; do
  rm -rf /tmp/depth; timeout 120 "$L" run --model "hsa:$m" --suite ruler --tasks niah_single_1 --lengths 1k,2k,4k \
    --depths 0,50,100 --samples 10 --device cuda --quiet --out /tmp/depth > /dev/null 2>&1
  echo "== $m"; python3 - <<'PY'
import json, collections
acc = collections.defaultdict(list)
for l in open('/tmp/depth/results.jsonl'):
    r = json.loads(l); acc[(r.get('depth'), r.get('length'))].append(r.get('score', 0))
for k in sorted(acc, key=lambda k: (k[0] or 0, k[1] or 0)): print(k, sum(acc[k]) / len(acc[k]), len(acc[k]))
PY
done
