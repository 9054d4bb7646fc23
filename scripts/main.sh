#!/usr/bin/env bash
# The main job on built-in defaults: install what is missing, build, then evaluate the three built-in tiny
# models (HSA, SWA, Mamba) on RULER and BABILong at several lengths and write results.jsonl,
# leaderboard.json, report.md and report.html under out/main/ (a few minutes on a 2-core CPU).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build.sh
OUT=${LCTX_OUT:-out/main}
LCTX=build/apps/lctx/lctx
MODELS=(--model hsa:assets/checkpoints/hsa-tiny --model swa:assets/checkpoints/swa-tiny --model mamba:assets/checkpoints/mamba-tiny)
"$LCTX" generate --suite ruler --tasks all --lengths 4k,32k --samples 2 --out "$OUT/data"
"$LCTX" run "${MODELS[@]}" --suite ruler --tasks niah_single_1,niah_single_2,niah_multikey_1,vt \
  --lengths 1k,2k,4k --depths 0,50,100 --samples 2 --out "$OUT/ruler"
"$LCTX" run "${MODELS[@]}" --suite babilong --tasks qa1,qa2,qa3,qa4,qa5 --lengths 0k,1k,2k,4k --samples 2 \
  --out "$OUT/babilong"
"$LCTX" report "$OUT/ruler" "$OUT/babilong" --out "$OUT/report"
echo "main job done: $OUT/report/report.html, $OUT/report/leaderboard.json"
