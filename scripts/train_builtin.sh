#!/usr/bin/env bash
# Trains the three built-in tiny checkpoints (HSA, SWA, Mamba) on CPU with one shared recipe and installs
# them into assets/checkpoints/{hsa,swa,mamba}-tiny (config.json, model.safetensors, train_log.jsonl).
# Work folders (with trainer_state.pt for --resume) stay in runs/train/. Then measures needle accuracy.
# Usage: scripts/train_builtin.sh [hsa swa mamba]
# Env: LCTX (binary), DEVICE (cpu|cuda), STEPS, BATCH, CONTEXT, MIX, LR, THREADS, RESUME=1 (continue runs/train/*), NO_EVAL=1,
#      CONFIG (JSON of architecture keys over the tiny preset; default for hsa: assets/configs/hsa-tiny.json, the
#      recipe that learns retrieval, docs/training.md), NAME (checkpoint name, default ARCH-tiny).
# The shipped hsa-tiny: DEVICE=cuda STEPS=4000 BATCH=32 LENGTHS=384,448,512 scripts/train_builtin.sh hsa
set -euo pipefail
cd "$(dirname "$0")/.."
LCTX=${LCTX:-build/apps/lctx/lctx}
STEPS=${STEPS:-300}
BATCH=${BATCH:-8}
CONTEXT=${CONTEXT:-512}
LENGTHS=${LENGTHS:-"256,384,512"}
MIX=${MIX:-"copy:0.5,niah1:0.5"}
LR=${LR:-3e-3}
THREADS=${THREADS:-0}
SEED=${SEED:-1}
[ -x "$LCTX" ] || { echo "train_builtin: no lctx binary at $LCTX (set LCTX=...)" >&2; exit 1; }
if [ $# -eq 0 ]; then set -- hsa swa mamba; fi
for arch in "$@"; do
  name=${NAME:-$arch-tiny}
  work=runs/train/$name
  config=()
  cfg=${CONFIG-}
  if [ -z "${CONFIG+set}" ] && [ "$arch" = hsa ]; then cfg=assets/configs/hsa-tiny.json; fi
  if [ -n "$cfg" ]; then config=(--config "$cfg"); fi
  resume=(--force)   # a fresh run replaces what an earlier one left in $work
  if [ "${RESUME:-0}" = 1 ] && [ -f "$work/trainer_state.pt" ]; then resume=(--resume); fi
  echo "== $name: $STEPS steps x $BATCH x $CONTEXT, mix $MIX" >&2
  "$LCTX" train --arch "$arch" --preset tiny --context "$CONTEXT" --lengths "$LENGTHS" --mix "$MIX" \
    --steps "$STEPS" --batch "$BATCH" --lr "$LR" --min-lr 3e-4 --warmup 30 --weight-decay 0.1 --clip 1.0 \
    --seed "$SEED" --device "${DEVICE:-cpu}" --threads "$THREADS" --save-every 100 --log-every 10 --out "$work" "${config[@]}" "${resume[@]}"
  dest=assets/checkpoints/$name
  mkdir -p "$dest"
  cp "$work/config.json" "$work/model.safetensors" "$work/train_log.jsonl" "$dest/"
  du -sh "$dest" >&2
done
if [ "${NO_EVAL:-0}" != 1 ]; then
  cks=()
  for arch in "$@"; do cks+=("assets/checkpoints/${NAME:-$arch-tiny}"); done
  LCTX=$LCTX scripts/eval_needle.sh "${cks[@]}"
fi
