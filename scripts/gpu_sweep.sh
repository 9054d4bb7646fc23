#!/usr/bin/env bash
# Parallel small training runs on one GPU, each followed by held-out needle accuracy (the HSA recipe sweeps
# of docs/training.md). Run on the device machine after building build-cuda (see docs/gpu.md).
# Usage: scripts/gpu_sweep.sh NAME:ARCH:CONFIG[:BATCH[:LR[:STEPS[:MIX[:CONTEXT]]]]] ...
#   CONFIG: a file in assets/configs/sweep/ (or empty: the tiny preset). MIX: as --mix with "=" for ":"
#   (copy-wide=0.5,niah1=0.5). CONTEXT (512): training context; sample lengths 384,448,512 at 512, else CONTEXT.
# Environment: TRAIN_ARGS (more lctx train arguments, e.g. "--loss-norm row"), MIX (lctx train --mix, default "copy:0.5,niah1:0.5"), STEPS (2000), SECS (300, bound on each training), EVAL_LENGTHS ("512 4096"), EVAL_SAMPLES
# (100), KEEP=1 (also copy NAME.safetensors / NAME.config.json to $OUT), OUT (out/sweep).
# Results: $OUT/logs.tgz (training logs and JSONL step logs, eval lines) + the kept checkpoints.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/sweep}; mkdir -p "$OUT/logs"
L=${LCTX:-build-cuda/apps/lctx/lctx}
export LCTX_CACHE=${LCTX_CACHE:-/tmp/lctx-cache}
STEPS=${STEPS:-2000}; SECS=${SECS:-300}
pids=()
for spec in "$@"; do
  IFS=: read -r name arch cfg batch lr steps mix ctx <<< "$spec"
  c=(); [ -n "$cfg" ] && c=(--config "assets/configs/sweep/$cfg")
  mix=${mix//=/:}; ctx=${ctx:-512}; lens=$ctx; [ "$ctx" = 512 ] && lens=384,448,512
  ( timeout "$SECS" "$L" train --arch "$arch" --preset tiny "${c[@]}" --context "$ctx" --lengths "$lens" --mix "${mix:-${MIX:-copy:0.5,niah1:0.5}}" \
      --steps "${steps:-$STEPS}" --batch "${batch:-32}" --lr "${lr:-3e-3}" --min-lr 3e-4 --warmup 30 --device cuda --threads "${THREADS:-3}" \
      --save-every 100 --log-every 100 ${TRAIN_ARGS:-} --out "runs/sweep/$name" > "$OUT/logs/train-$name.log" 2>&1
    for len in ${EVAL_LENGTHS:-512 4096}; do
      timeout 150 "$L" train-eval --checkpoint "runs/sweep/$name" --task niah_single_1 --length "$len" \
        --samples "${EVAL_SAMPLES:-100}" --seed 7 --device cuda >> "$OUT/logs/eval-$name.txt" 2>&1
    done
    cp "runs/sweep/$name/train_log.jsonl" "$OUT/logs/$name-train_log.jsonl"
    if [ "${KEEP:-0}" = 1 ]; then
      cp "runs/sweep/$name/model.safetensors" "$OUT/$name.safetensors"
      cp "runs/sweep/$name/config.json" "$OUT/$name.config.json"
    fi ) &
  pids+=($!)
done
wait "${pids[@]}"
for spec in "$@"; do n=${spec%%:*}; echo "== $n"; tail -2 "$OUT/logs/train-$n.log"; cat "$OUT/logs/eval-$n.txt"; done
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"
