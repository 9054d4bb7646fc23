#!/usr/bin/env bash
# Wave 6 of the CPU-budget curriculum sweep (docs/training.md): token_shift_width 2, fp32, three seeds.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3; A=64/32/1200/copy=1/3e-3/1e-3
PRECISION=fp32 OUT=${OUT:-out}/curr6 scripts/sweeps/curriculum.sh \
  "Z1:cpu-c16-ts2.json:$B+512/8/1000/$W:1" "Z2:cpu-c16-ts2.json:$B+512/8/1000/$W:2" "Z3:cpu-c16-ts2.json:$B+512/8/1000/$W:3" \
  "Z4:cpu-c32-ts2.json:$B+512/8/1000/$W:1" "Z5:cpu-c32-ts2.json:$B+512/8/1000/$W:2" \
  "Z6:cpu-c16-ts2.json:$A+512/8/1000/$W:1" "Z7:cpu-c16-ts2.json:$A+512/8/1000/$W:2" "Z8:cpu-c16-ts2.json:$A+512/8/1000/$W:3"
