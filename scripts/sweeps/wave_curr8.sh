#!/usr/bin/env bash
# Wave 8 of the CPU-budget curriculum sweep (docs/training.md): 32-token chunks, longer or wider second
# stages, more seeds (fp32).
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3
PRECISION=fp32 OUT=${OUT:-out}/curr8 scripts/sweeps/curriculum.sh \
  "U1:cpu-c32.json:$B+512/8/1500/$W:2" "U2:cpu-c32.json:$B+512/8/1500/$W:3" "U3:cpu-c32.json:$B+512/8/1500/$W:4" \
  "U4:cpu-c32.json:$B+512/8/1000/$W:4" "U5:cpu-c32.json:$B+512/8/1000/$W:5" \
  "U6:cpu-c32.json:$B+512/16/700/$W:2" "U7:cpu-c32.json:$B+512/16/700/$W:3" "U8:cpu-c32.json:$B+512/8/1000/niah1=0.6,copy=0.4:2"
