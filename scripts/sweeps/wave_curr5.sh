#!/usr/bin/env bash
# Wave 5 of the CPU-budget curriculum sweep (docs/training.md): seed robustness of the best recipe (R7) and
# of longer second stages, in fp32 like the CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3
PRECISION=fp32 OUT=${OUT:-out}/curr5 scripts/sweeps/curriculum.sh \
  "Y1:cpu-c16.json:$B+512/8/1000/$W:1" "Y2:cpu-c16.json:$B+512/8/1000/$W:2" "Y3:cpu-c16.json:$B+512/8/1000/$W:3" \
  "Y4:cpu-c16.json:$B+512/8/1500/$W:1" "Y5:cpu-c16.json:$B+512/8/1500/$W:2" "Y6:cpu-c16.json:$B+512/8/1500/$W:3" \
  "Y7:cpu-c16.json:$B+512/8/1000/$W+512/8/500/$W/1e-3/3e-4:2" "Y8:cpu-c16.json:$B+512/8/1000/$W+512/8/500/$W/1e-3/3e-4:3"
