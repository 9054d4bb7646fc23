#!/usr/bin/env bash
# The main job on built-in defaults: install what is missing, build, then evaluate the built-in models (HSA,
# SWA, Mamba) and write results.jsonl, leaderboard.json, report.md and report.html under out/main/ (a few
# minutes on a 2-core CPU). With the paper checkpoints in assets/checkpoints/{hsa,swa,mamba}-paper (trained at
# 4K by scripts/train_paper.sh) it evaluates them on niah_single_1 and qa1 from 1K to 64K; without them (or
# with LCTX_MAIN_TINY=1), the tiny checkpoints on niah_single_1 from 1K to 64K and on RULER and BABILong at
# 1K-4K.
# Env: LCTX_OUT (out/main), LCTX_MAIN_LENGTHS, LCTX_MAIN_SAMPLES (samples of the long-needle runs), LCTX_MAIN_TINY=1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh
OUT=${LCTX_OUT:-out/main}
LCTX=build/apps/lctx/lctx
PAPER=(hsa-paper swa-paper mamba-paper)
have_paper=1
for m in "${PAPER[@]}"; do [ -f "assets/checkpoints/$m/config.json" ] || have_paper=0; done
"$LCTX" generate --suite ruler --tasks all --lengths 4k,32k --samples 2 --out "$OUT/data"
if [ "${LCTX_MAIN_TINY:-0}" != 1 ] && [ "$have_paper" = 1 ]; then
  # The paper's models (trained at 4K, docs/training.md): HSA, SWA and Mamba on a single needle and bAbI qa1
  # from 1K to 64K, haystacks from the addresses held out of the training text.
  MODELS=(--model hsa:assets/checkpoints/hsa-paper --model swa:assets/checkpoints/swa-paper
          --model mamba:assets/checkpoints/mamba-paper)
  LENGTHS=${LCTX_MAIN_LENGTHS:-1k,2k,4k,8k,16k,32k,64k}
  SAMPLES=${LCTX_MAIN_SAMPLES:-4}
  "$LCTX" run "${MODELS[@]}" --suite ruler --tasks niah_single_1 --lengths "$LENGTHS" --samples "$SAMPLES" \
    --haystack data/sotu-heldout --out "$OUT/paper-ruler"
  "$LCTX" run "${MODELS[@]}" --suite babilong --tasks qa1 --lengths "$LENGTHS" --samples "$SAMPLES" \
    --haystack data/sotu-heldout --out "$OUT/paper-babilong"
  RUNS=("$OUT/paper-ruler" "$OUT/paper-babilong")
else
  MODELS=(--model hsa:assets/checkpoints/hsa-tiny --model swa:assets/checkpoints/swa-tiny --model mamba:assets/checkpoints/mamba-tiny)
  # One needle from 1K to 64K: HSA keeps finding it far past its training length (512), SWA loses it past
  # its reach (window x layers) and Mamba past its state; then the rest of the suites at 1K-4K.
  "$LCTX" run "${MODELS[@]}" --suite ruler --tasks niah_single_1 --lengths "${LCTX_MAIN_LENGTHS:-1k,2k,4k,8k,16k,32k,64k}" \
    --samples "${LCTX_MAIN_SAMPLES:-4}" --out "$OUT/needle"
  "$LCTX" run "${MODELS[@]}" --suite ruler --tasks niah_single_2,niah_multikey_1,vt \
    --lengths 1k,2k,4k --depths 0,50,100 --samples 2 --out "$OUT/ruler"
  "$LCTX" run "${MODELS[@]}" --suite babilong --tasks qa1,qa2,qa3,qa4,qa5 --lengths 0k,1k,2k,4k --samples 2 \
    --out "$OUT/babilong"
  RUNS=("$OUT/needle" "$OUT/ruler" "$OUT/babilong")
fi
"$LCTX" report "${RUNS[@]}" --out "$OUT/report"
echo "main job done: $OUT/report/report.html, $OUT/report/leaderboard.json"
