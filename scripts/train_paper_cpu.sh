#!/usr/bin/env bash
# Trains the authors' HSA design (preset `paper`, scaled down: assets/configs/hsa-paper-cpu.json; bypass
# residual, encoder + CLS, enforced sparsity, softmax1 chunk weights, one shared K/V head, no lctx-only
# switches) on the CPU in three `lctx train` stages, then measures held-out needle accuracy far past the
# training length. The recipe of assets/checkpoints/hsa-paper-cpu (docs/training.md).
#   OUT=DIR THREADS=N scripts/train_paper_cpu.sh      (about 15 minutes of training on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
LCTX=${LCTX:-build/apps/lctx/lctx}
OUT=${OUT:-runs/paper-cpu}
T=${THREADS:-0}
[ -x "$LCTX" ] || { echo "train_paper_cpu: no lctx binary at $LCTX (set LCTX=...)" >&2; exit 1; }
mkdir -p "$OUT"
common=(--loss-norm row --device cpu --threads "$T")
# 1. copy rows at context 128 (copy distances beyond the 32-token window), 1200 + 700 steps
"$LCTX" train --arch hsa --config assets/configs/hsa-paper-cpu.json --mix copy:1 --context 128 --steps 1200 \
  --batch 16 --lr 3e-3 --min-lr 1e-3 --seed 1 --log-every 150 "${common[@]}" --out "$OUT/stage1"
"$LCTX" train --arch hsa --init-from "$OUT/stage1" --mix copy:1 --context 128 --steps 700 --batch 16 \
  --lr 3e-3 --min-lr 1e-3 --seed 3 --log-every 100 "${common[@]}" --out "$OUT/stage2"
# 2. needles and wide copies at 384-512 tokens: 40 steps of full selection, then top-8 of 16 chunks
echo '{"train_topk": 8}' > "$OUT/topk8.json"
"$LCTX" train --arch hsa --init-from "$OUT/stage2" --config "$OUT/topk8.json" --mix niah1:0.7,copy-wide:0.3 \
  --context 512 --lengths 384,448,512 --steps 400 --batch 8 --lr 2e-3 --min-lr 2e-4 --full-selection-steps 40 \
  --seed 4 --log-every 50 "${common[@]}" --out "$OUT/stage3"
for L in ${LENGTHS:-512 4096 16384 65536}; do
  "$LCTX" train-eval --checkpoint "$OUT/stage3" --task niah_single_1 --length "$L" --samples "${SAMPLES:-30}" \
    --seed 7 --device cpu --threads "$T"
done
