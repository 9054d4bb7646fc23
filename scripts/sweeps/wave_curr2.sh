#!/usr/bin/env bash
# Wave 2 of the CPU-budget curriculum sweep (docs/training.md): stage 2 length, mixture, top-k.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/sweeps/cpu_recipe.sh build || exit 1
S1=128/16/1200/copy=1/3e-3/1e-3; N2=niah1=0.5,copy=0.5
OUT=${OUT:-out}/curr2 scripts/sweeps/curriculum.sh \
  "Q1:cpu-c16.json:$S1+512/8/1000/$N2" \
  "Q2:cpu-c16.json:$S1+512/8/1000/niah1=0.7,copy=0.3" \
  "Q3:cpu-c16-k8.json:$S1+512/8/1000/$N2" \
  "Q4:cpu-c16.json:$S1+512/16/500/$N2" \
  "Q5:cpu-c16.json:$S1+512/8/1000/niah1=1" \
  "Q6:cpu-c16.json:$S1+512/8/1000/$N2/2e-3/1e-3" \
  "Q7:cpu-c16.json:$S1+512/8/1000/niah1=0.5,ruler/niah_multiquery=0.25,copy=0.25" \
  "Q8:cpu-c16.json:128/16/1800/copy=1/3e-3/1e-3+512/8/1000/$N2"
