#!/usr/bin/env bash
# Wave 4 of the CPU-budget curriculum sweep (docs/training.md): cheaper variants of the best wave-3 recipe (R7).
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
W=niah1=0.7,copy-wide=0.3; A=64/32/800/copy=1+128/16/800/copy=1/3e-3/1e-3; B=128/16/1800/copy=1/3e-3/1e-3
OUT=${OUT:-out}/curr4 scripts/sweeps/curriculum.sh \
  "T1:cpu-c16.json:$A+512/8/1000/$W" \
  "T2:cpu-c16.json:$B+512/8/700/$W" \
  "T3:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+512/8/1000/$W" \
  "T4:cpu-c16.json:$A+512/8/700/$W" \
  "T5:cpu-c16.json:$B+512/8/1000/niah1=0.6,copy-wide=0.4" \
  "T6:cpu-c16.json:64/32/1200/copy=1/3e-3/1e-3+512/8/1000/$W" \
  "T7:cpu-c16.json:128/16/1800/copy-wide=0.5,copy=0.5/3e-3/1e-3+512/8/1000/$W" \
  "T8:cpu-c16-k8.json:$B+512/8/1000/$W"
