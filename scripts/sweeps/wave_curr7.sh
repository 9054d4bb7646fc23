#!/usr/bin/env bash
# Wave 7 of the CPU-budget curriculum sweep (docs/training.md): 32-token chunks (fewer chunks to choose from
# at 512) and an intermediate 256-token copy stage, fp32, several seeds.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3
PRECISION=fp32 OUT=${OUT:-out}/curr7 scripts/sweeps/curriculum.sh \
  "V1:cpu-c32.json:$B+512/8/1000/$W:1" "V2:cpu-c32.json:$B+512/8/1000/$W:2" "V3:cpu-c32.json:$B+512/8/1000/$W:3" \
  "V4:cpu-c16.json:$B+256/16/400/copy=1+512/8/800/$W:1" "V5:cpu-c16.json:$B+256/16/400/copy=1+512/8/800/$W:2" \
  "V6:cpu-c16.json:$B+256/16/400/copy=1+512/8/800/$W:3" "V7:cpu-c32-ts2.json:$B+512/8/1000/$W:3" \
  "V8:cpu-c32.json:$B+256/16/400/copy=1+512/8/800/$W:1"
