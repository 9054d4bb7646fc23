#!/usr/bin/env bash
# Wave 1 of the CPU-budget curriculum sweep (docs/training.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
N2=niah1=0.5,copy=0.5
OUT=out/curr1 scripts/sweeps/curriculum.sh \
  "P1:cpu-c16.json:64/32/600/copy=1+128/16/500/copy=1+256/8/500/copy=1+512/8/400/$N2" \
  "P2:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+512/8/500/$N2" \
  "P3:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+512/8/500/niah1=0.5,copy-wide=0.5" \
  "P4:cpu-c16.json:64/32/600/copy=1+128/16/600/copy=1+512/8/500/$N2" \
  "P5:cpu-c32.json:128/16/1200/copy=1/3e-3/1e-3+512/8/500/$N2" \
  "P6:cpu-c16.json:128/16/1200/copy-wide=0.5,copy=0.5/3e-3/1e-3+512/8/500/niah1=0.5,copy-wide=0.5" \
  "P7:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+256/8/600/copy=1+512/8/300/niah1=0.7,copy=0.3" \
  "P8:cpu-c16.json:64/32/600/copy=1+128/16/600/copy=1+512/8/500/niah1=1"
