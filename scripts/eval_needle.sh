#!/usr/bin/env bash
# Needle-retrieval accuracy of built-in checkpoints on held-out samples (greedy generation, RULER
# niah_single_1, evaluation seed below 2^63; training used tagged seeds, see docs/training.md).
# Usage: scripts/eval_needle.sh [CHECKPOINT_DIR...]   (default: assets/checkpoints/{hsa,swa,mamba}-tiny)
# Env: LCTX (binary, default build/apps/lctx/lctx), LENGTHS ("512 4096"), SAMPLES (50), SEED (7),
#      TASK (niah_single_1), DEVICE (cpu), OUT (folder for per-sample predictions, optional).
set -euo pipefail
cd "$(dirname "$0")/.."
LCTX=${LCTX:-build/apps/lctx/lctx}
LENGTHS=${LENGTHS:-"512 4096"}
SAMPLES=${SAMPLES:-50}
SEED=${SEED:-7}
TASK=${TASK:-niah_single_1}
DEVICE=${DEVICE:-cpu}
[ -x "$LCTX" ] || { echo "eval_needle: no lctx binary at $LCTX (set LCTX=...)" >&2; exit 1; }
if [ $# -eq 0 ]; then set -- assets/checkpoints/hsa-tiny assets/checkpoints/swa-tiny assets/checkpoints/mamba-tiny; fi
printf '%-32s %8s %8s %8s %8s\n' checkpoint length acc exact seconds
for ck in "$@"; do
  [ -f "$ck/config.json" ] || { echo "eval_needle: skipping $ck (no config.json)" >&2; continue; }
  for L in $LENGTHS; do
    extra=()
    if [ -n "${OUT:-}" ]; then mkdir -p "$OUT"; extra=(--out "$OUT/$(basename "$ck")-$TASK-$L.jsonl"); fi
    line=$("$LCTX" train-eval --checkpoint "$ck" --task "$TASK" --length "$L" --samples "$SAMPLES" \
             --seed "$SEED" --device "$DEVICE" "${extra[@]}")
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("%-32s %8d %8.3f %8.3f %8.1f" % (sys.argv[2], j["length"], j["accuracy"], j["exact"], j["seconds"]))' "$line" "$ck"
  done
done
