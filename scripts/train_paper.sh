#!/usr/bin/env bash
# Trains the paper's models at context 4096 in parallel on one GPU, one `lctx train` process each, in
# resumable time-limited segments: each call trains every unfinished model for at most BUDGET seconds, saves
# model + trainer state, and prints one status line per model. Re-running continues where the last call
# stopped (`lctx train --resume`), so a long run is a sequence of short GPU jobs. Recipe: docs/training.md.
#
# Usage: scripts/train_paper.sh OUTDIR [BUDGET_SECONDS=300] [MODEL ...]
#   MODEL: names of config files in $CONFIGS (default: hsa-paper hsa-paper-meanpool hsa-paper-standard
#          hsa-paper-dense swa-paper mamba-paper); OUTDIR/MODEL/ gets config.json, model.safetensors,
#          trainer_state.pt, train_log.jsonl, train.out (stdout + stderr of every segment).
# Env (defaults = the paper recipe): LCTX, CONFIGS=assets/configs, DEVICE=cuda, PRECISION=bf16 (auto on cpu),
#   CONTEXT=4096, STEPS=1500, BATCH=16, LR=2e-3, MIN_LR=2e-4, WARMUP=30, WEIGHT_DECAY=0.01,
#   FULL_SELECTION_STEPS=300 (selection warm-up: top-k covers every chunk), TOPK_ANNEAL_STEPS=0 (then the
#   share of chunks selected falls linearly to the training top-k over this many steps), LENGTHS (task rows), MIX, SEED=1,
#   HAYSTACK=data/text-train (training text; evaluation uses the held-out data/sotu-heldout),
#   LOSS_NORM=row, THREADS=2 (CPU threads per process), SAVE_EVERY=200, MARGIN=40 (seconds of BUDGET kept
#   for start-up and the final save), PRESET=tiny (the base the config keys override), INIT_FROM (a folder of
#   an earlier stage's outputs: each model starts from INIT_FROM/MODEL with `--init-from`, e.g. a short-context
#   stage first, docs/training.md), CONST_LR=1 (min-lr = lr: no decay, for a stage cut by its budget), INSTALL (a folder, e.g.
#   assets/checkpoints: each finished model's config.json, model.safetensors and train_log.jsonl are copied
#   to INSTALL/MODEL/), TOPK (HSA models: the inference and training top-k, config keys topk and train_topk,
#   on top of the config file, e.g. 32 of the 64 chunks of a 4096-token row).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/train_paper.sh OUTDIR [BUDGET_SECONDS] [MODEL ...]" >&2; exit 2; }
OUTDIR=$1
BUDGET=${2:-300}
shift $(( $# >= 2 ? 2 : 1 ))
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(hsa-paper hsa-paper-meanpool hsa-paper-standard hsa-paper-dense swa-paper mamba-paper)
LCTX=${LCTX:-build/apps/lctx/lctx}
CONFIGS=${CONFIGS:-assets/configs}
DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" = cpu ]; then PRECISION=${PRECISION:-fp32}; else PRECISION=${PRECISION:-bf16}; fi
CONTEXT=${CONTEXT:-4096}
STEPS=${STEPS:-1500}
BATCH=${BATCH:-16}
LR=${LR:-2e-3}
MIN_LR=${MIN_LR:-2e-4}
WARMUP=${WARMUP:-30}
WEIGHT_DECAY=${WEIGHT_DECAY:-0.01}
FULL_SELECTION_STEPS=${FULL_SELECTION_STEPS:-300}
TOPK_ANNEAL_STEPS=${TOPK_ANNEAL_STEPS:-0}
LENGTHS=${LENGTHS:-$((CONTEXT / 2)),$((CONTEXT * 3 / 4)),$CONTEXT}
MIX=${MIX:-corpus:0.87,copy:0.04,niah:0.03,babi:0.03,ruler/niah_single_ids:0.01,ruler/niah_multikey_1:0.01,vt:0.01}
SEED=${SEED:-1}
HAYSTACK=${HAYSTACK:-data/text-train}
LOSS_NORM=${LOSS_NORM:-row}
THREADS=${THREADS:-2}
SAVE_EVERY=${SAVE_EVERY:-200}
MARGIN=${MARGIN:-40}
PRESET=${PRESET:-tiny}
INIT_FROM=${INIT_FROM:-}
[ "${CONST_LR:-0}" = 1 ] && MIN_LR=$LR
[ -x "$LCTX" ] || { echo "train_paper: no lctx binary at $LCTX (set LCTX=...)" >&2; exit 1; }
[ -d "$HAYSTACK" ] || { echo "train_paper: no training text at $HAYSTACK (run scripts/setup.sh)" >&2; exit 1; }
case $BUDGET in ''|*[!0-9]*) echo "train_paper: BUDGET_SECONDS must be a whole number of seconds" >&2; exit 2;; esac
LIMIT=$((BUDGET - MARGIN))
[ "$LIMIT" -ge 10 ] || { echo "train_paper: BUDGET_SECONDS must exceed MARGIN ($MARGIN) by >= 10 s" >&2; exit 2; }
mkdir -p "$OUTDIR"

json_get() {  # file key -> the value of "key" in the checkpoint's own "train" object (not in its init_from)
  python3 -c 'import json, sys
try:
    v = json.load(open(sys.argv[1])).get("train", {}).get(sys.argv[2], "")
except Exception:
    v = ""
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2" 2>/dev/null
}
arch_of() {  # config file, model name -> hsa | swa | mamba
  local k
  k=$(grep -o '"kind": *"[a-z]*"' "$1" | head -1 | sed 's/.*: *"//; s/"//')
  if [ -n "$k" ]; then echo "$k"; return; fi
  case $2 in hsa*) echo hsa;; swa*) echo swa;; mamba*) echo mamba;; *) echo "";; esac
}

# Tokenise the training text once before the parallel start (the corpus cache is shared by the processes).
"$LCTX" generate --suite ruler --tasks niah_single_2 --lengths 1k --samples 1 --haystack "$HAYSTACK" \
  --out "$OUTDIR/.warm" >/dev/null 2>&1 || true
rm -rf "$OUTDIR/.warm"

pids=()
names=()
for m in "${MODELS[@]}"; do
  cfg=$CONFIGS/$m.json
  [ -f "$cfg" ] || { echo "train_paper: no config $cfg" >&2; exit 1; }
  arch=$(arch_of "$cfg" "$m")
  [ -n "$arch" ] || { echo "train_paper: cannot tell the kind of $m (add \"kind\" to $cfg)" >&2; exit 1; }
  dir=$OUTDIR/$m
  mkdir -p "$dir"
  if [ -n "${TOPK:-}" ] && [ "$arch" = hsa ]; then  # the config file plus the two top-k keys
    python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); k = int(sys.argv[2]); c.update({"topk": k, "train_topk": k})
json.dump(c, open(sys.argv[3], "w"))' "$cfg" "$TOPK" "$dir/topk_config.json" ||
      { echo "train_paper: cannot write $dir/topk_config.json (TOPK must be a whole number)" >&2; exit 1; }
    cfg=$dir/topk_config.json
  fi
  if [ -f "$dir/config.json" ] && [ "$(json_get "$dir/config.json" complete)" = true ]; then
    names+=("$m"); pids+=(0); continue
  fi
  resume=()
  [ -f "$dir/trainer_state.pt" ] && resume=(--resume)
  init=()
  if [ -n "$INIT_FROM" ] && [ ${#resume[@]} -eq 0 ]; then
    if [ ! -f "$INIT_FROM/$m/config.json" ]; then
      echo "train_paper: $m: no $INIT_FROM/$m/config.json to start from; skipped" >&2
      continue
    fi
    init=(--init-from "$INIT_FROM/$m")
  fi
  (
    echo "== $(date -u +%FT%TZ) segment: $arch $cfg, budget ${LIMIT}s ${resume[*]}"
    "$LCTX" train --arch "$arch" --preset "$PRESET" --config "$cfg" --context "$CONTEXT" --lengths "$LENGTHS" \
      --mix "$MIX" --loss-norm "$LOSS_NORM" --haystack "$HAYSTACK" --steps "$STEPS" --batch "$BATCH" --lr "$LR" \
      --min-lr "$MIN_LR" --warmup "$WARMUP" --weight-decay "$WEIGHT_DECAY" --clip 1.0 --seed "$SEED" \
      --full-selection-steps "$FULL_SELECTION_STEPS" --topk-anneal-steps "$TOPK_ANNEAL_STEPS" --device "$DEVICE" --precision "$PRECISION" \
      --threads "$THREADS" --save-every "$SAVE_EVERY" --log-every 50 --time-limit "$LIMIT" --out "$dir" "${resume[@]}" "${init[@]}"
  ) >>"$dir/train.out" 2>&1 &
  pids+=($!)
  names+=("$m")
done

fail=0
for i in "${!names[@]}"; do
  m=${names[$i]}
  dir=$OUTDIR/$m
  if [ "${pids[$i]}" != 0 ] && ! wait "${pids[$i]}"; then
    fail=1
    echo "$m: FAILED: $(grep 'error' "$dir/train.out" | tail -1)"
    continue
  fi
  c=$dir/config.json
  done_=$(json_get "$c" steps_done); secs=$(json_get "$c" train_seconds); segs=$(json_get "$c" segments)
  toks=$(json_get "$c" tokens_seen); complete=$(json_get "$c" complete)
  last=$(tail -1 "$dir/train_log.jsonl" 2>/dev/null || true)
  loss=$(echo "$last" | grep -o '"loss":[-0-9.e+]*' | sed 's/.*://')
  tps=$(echo "$last" | grep -o '"tokens_per_s":[-0-9.e+]*' | sed 's/.*://')
  eta=$(awk -v d="${done_:-0}" -v s="$STEPS" -v t="${secs:-0}" 'BEGIN { if (d > 0 && d < s) printf "%.1f", (s - d) * t / d / 60; else printf "0" }')
  state=$([ "$complete" = true ] && echo done || echo "unfinished (about $eta min of training left)")
  if [ "$complete" = true ] && [ -n "${INSTALL:-}" ]; then
    mkdir -p "$INSTALL/$m"
    cp "$dir/config.json" "$dir/model.safetensors" "$dir/train_log.jsonl" "$INSTALL/$m/"
    state="done, installed in $INSTALL/$m"
  fi
  awk -v m="$m" -v d="${done_:-0}" -v s="$STEPS" -v k="${toks:-0}" -v l="${loss:-0}" -v r="${tps:-0}" \
    -v t="${secs:-0}" -v g="${segs:-0}" -v st="$state" \
    'BEGIN { printf "%s: %d/%d steps, %.1fM tokens, loss %.3f, %.0f tok/s, %.0f s trained in %d segments, %s\n", m, d, s, k / 1e6, l, r, t, g, st }'
done
exit $fail
