#!/usr/bin/env bash
# Curriculum recipes (short-context copy stages, then the 512-token mixture, each stage starting from the
# previous one's weights with `lctx train --init-from`), several in parallel on one GPU, each followed by
# held-out needle accuracy. Runs are counted in tokens and steps, so a recipe's CPU time follows from the
# CPU's tokens/s (docs/training.md).
# Usage (device machine, build-cuda built): scripts/sweeps/curriculum.sh NAME:CONFIG:STAGE[+STAGE...][:SEED] ...
#   STAGE = CTX/BATCH/STEPS/MIX[/LR[/MINLR[/OVERRIDE]]], MIX with "=" for ":" (copy=1,niah1=0.5); CONFIG in
#   assets/configs/sweep/; OVERRIDE (stages after the first): a file there whose keys override the checkpoint's
#   architecture (`--init-from ... --config`, e.g. aux1.json = {"selection_aux": 1.0}).
# Environment: OUT (out/curriculum), EVAL_LENGTHS ("512 4096"), EVAL_SAMPLES (50), DEVICE (cuda), THREADS (2),
#   PRECISION (auto; fp32 on a GPU follows the CPU's arithmetic more closely), STAGE_SECONDS (900),
#   TRAIN_ARGS (more `lctx train` arguments for every stage, e.g. "--loss-norm row")
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out/curriculum}; mkdir -p "$OUT/logs"
L=${LCTX:-build-cuda/apps/lctx/lctx}
export LCTX_CACHE=${LCTX_CACHE:-/tmp/lctx-cache}
DEV=${DEVICE:-cuda}
for spec in "$@"; do
  IFS=: read -r name cfg stages seed <<< "$spec"
  ( prev=""; i=0
    IFS=+ read -ra st <<< "$stages"
    for s in "${st[@]}"; do
      i=$((i + 1))
      IFS=/ read -r ctx batch steps mix lr minlr over <<< "$s"
      lens=$ctx; [ "$ctx" = 512 ] && lens=384,448,512
      init=(--config "assets/configs/sweep/$cfg"); [ -n "$prev" ] && init=(--init-from "$prev")
      [ -n "$prev" ] && [ -n "$over" ] && init+=(--config "assets/configs/sweep/$over")
      timeout "${STAGE_SECONDS:-900}" "$L" train --arch hsa "${init[@]}" --context "$ctx" --lengths "$lens" --mix "${mix//=/:}" --steps "$steps" \
        --batch "$batch" --lr "${lr:-3e-3}" --min-lr "${minlr:-3e-4}" --warmup 30 --device "$DEV" --threads "${THREADS:-2}" \
        --seed "${seed:-1}" --precision "${PRECISION:-auto}" ${TRAIN_ARGS:-} \
        --log-every 100 --save-every 200 --out "runs/curr/$name-$i" > "$OUT/logs/train$i-$name.log" 2>&1
      cp "runs/curr/$name-$i/train_log.jsonl" "$OUT/logs/$name-$i-train_log.jsonl"
      prev="runs/curr/$name-$i"
    done
    for len in ${EVAL_LENGTHS:-512 4096}; do
      timeout 150 "$L" train-eval --checkpoint "$prev" --task niah_single_1 --length "$len" \
        --samples "${EVAL_SAMPLES:-50}" --seed 7 --device "$DEV" >> "$OUT/logs/eval-$name.txt" 2>&1
    done
    if [ "${KEEP:-0}" = 1 ]; then cp "$prev/model.safetensors" "$OUT/$name.safetensors"; cp "$prev/config.json" "$OUT/$name.config.json"; fi ) &
done
wait
for spec in "$@"; do n=${spec%%:*}; echo "== $spec"; for f in "$OUT"/logs/train*-"$n".log; do tail -1 "$f" | cut -c1-120; done
  cut -c1-40 "$OUT/logs/eval-$n.txt"; done
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"
