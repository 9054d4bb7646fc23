#!/usr/bin/env bash
# Runs RULER's own call_api.py and evaluate.py, unmodified, on lctx-generated data (--layout ruler) and
# compares evaluate.py's summary.csv with `lctx score --csv` on the same predictions.
#
#   scripts/upstream/compare_ruler.sh RULER_CHECKOUT [OUT_DIR]
#
# Needs python3 with yaml, tqdm, pandas, nltk, requests, tenacity (Debian: python3-yaml python3-tqdm
# python3-pandas python3-nltk python3-requests python3-tenacity). NeMo is not needed: nemo_stub.py provides the
# two JSON-lines helpers RULER imports from it. No model either: fake_vllm.py answers each prompt with a
# deterministic variant of its references (exact, partial, Unicode case variants, empty, wrong).
# Env: PYTHON (default python3), LCTX (binary, default build/apps/lctx/lctx or build-notorch/...), LENGTH (default 4k), SAMPLES (20).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RULER=$(cd "$1" && pwd)
OUT=${2:-$(mktemp -d)}
mkdir -p "$OUT"
LCTX=${LCTX:-$ROOT/build/apps/lctx/lctx}
[ -x "$LCTX" ] || LCTX=$ROOT/build-notorch/apps/lctx/lctx
LENGTH=${LENGTH:-4k}
SAMPLES=${SAMPLES:-20}
PY=${PYTHON:-python3}
TASKS=(niah_single_1 niah_single_2 niah_single_3 niah_multikey_1 niah_multikey_2 niah_multikey_3 niah_multivalue
       niah_multiquery vt cwe fwe)
rm -rf "$OUT/data" "$OUT/pred"
"$LCTX" generate --suite ruler --layout ruler --tasks "$(IFS=,; echo "${TASKS[*]}")" --lengths "$LENGTH" \
  --samples "$SAMPLES" --out "$OUT/data" 2>/dev/null
DATA=$(ls -d "$OUT"/data/[0-9]*)
"$PY" "$HERE/nemo_stub.py" "$OUT/stub"
PORT=${PORT:-$((20000 + RANDOM % 20000))}
"$PY" "$HERE/fake_vllm.py" "$PORT" "$DATA"/*/validation.jsonl &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 1
for t in "${TASKS[@]}"; do
  (cd "$RULER/scripts/pred" && PYTHONPATH="$OUT/stub" "$PY" call_api.py --data_dir "$DATA" --save_dir "$OUT/pred" \
     --task "$t" --server_type vllm --server_host 127.0.0.1 --server_port "$PORT" --threads 4 >/dev/null 2>&1)
done
(cd "$RULER/scripts/eval" && PYTHONPATH="$OUT/stub" "$PY" evaluate.py --data_dir "$OUT/pred" >/dev/null 2>&1)
"$LCTX" score "$OUT"/pred/*.jsonl --csv "$OUT/lctx-summary.csv" --out "$OUT/lctx-summary.json" >/dev/null
echo "RULER evaluate.py ($OUT/pred/summary.csv):"
cat "$OUT/pred/summary.csv"
echo "lctx score --csv ($OUT/lctx-summary.csv):"
cat "$OUT/lctx-summary.csv"
if diff -q "$OUT/pred/summary.csv" "$OUT/lctx-summary.csv" >/dev/null; then
  echo "compare_ruler: identical"
else
  echo "compare_ruler: DIFFERENT"
  exit 1
fi
