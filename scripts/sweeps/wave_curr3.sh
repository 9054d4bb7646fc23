#!/usr/bin/env bash
# Wave 3 of the CPU-budget curriculum sweep (docs/training.md): longer copy stages, niah-heavier stage 2.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
N7=niah1=0.7,copy=0.3; A=64/32/800/copy=1+128/16/800/copy=1/3e-3/1e-3; B=128/16/1800/copy=1/3e-3/1e-3
KEEP=1 OUT=${OUT:-out}/curr3 scripts/sweeps/curriculum.sh \
  "R1:cpu-c16.json:$A+512/8/1000/$N7" \
  "R2:cpu-c16.json:128/16/2400/copy=1/3e-3/1e-3+512/8/1000/$N7" \
  "R3:cpu-c16.json:$B+512/16/600/$N7" \
  "R4:cpu-c16.json:$B+512/8/1500/$N7" \
  "R5:cpu-c16.json:$A+512/8/1000/niah1=0.85,copy=0.15" \
  "R6:cpu-c16-k8.json:$B+512/8/1000/$N7" \
  "R7:cpu-c16.json:$B+512/8/1000/niah1=0.7,copy-wide=0.3" \
  "R8:cpu-c16.json:$A+256/16/400/copy=1+512/8/800/$N7"
