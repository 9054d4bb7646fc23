#!/usr/bin/env bash
# Evaluates the paper's checkpoints with `lctx run` over RULER and BABILong from 4K to 32M tokens and writes
# the report (leaderboard.json, report.md, report.html, charts/*.svg) and its README (the exact commands,
# seeds and sample counts). The grid runs in order of importance, most important cells first, and stops
# cleanly at the time budget; every `lctx run` resumes, so re-running the script continues the grid and
# rewrites the report.
#
# Usage: scripts/eval_paper.sh BUDGET_SECONDS [N_SHORT=20] [N_1M=50] [N_LONG=5]
#   N_SHORT: samples per cell at 4K-256K; N_1M: samples per HSA cell at 1M (the bars ask for >= 50);
#   N_LONG: samples per cell at 4M-32M.
# Env: LCTX, CKPTS=assets/checkpoints (hsa-paper, hsa-paper-{meanpool,standard,dense}, swa-paper, mamba-paper;
#   missing ones are skipped), RUNS=runs/paper (results folders), REPORT=reports/paper, DEVICE=cuda, SEED=42,
#   HAYSTACK=data/sotu-heldout (addresses held out of the training text), RUN_ARGS (extra `lctx run`
#   options; default: --precision bf16 where lctx run has it), LONG=16m,32m (the longest HSA lengths),
#   RESERVE=15 (seconds kept for the report), HSA_EXTRA (names of further HSA checkpoints in CKPTS, e.g. a
#   variant with other chunk weights, evaluated wherever hsa-paper is).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/eval_paper.sh BUDGET_SECONDS [N_SHORT] [N_1M] [N_LONG]" >&2; exit 2; }
BUDGET=$1
N_SHORT=${2:-20}
N_1M=${3:-50}
N_LONG=${4:-5}
for v in "$BUDGET" "$N_SHORT" "$N_1M" "$N_LONG"; do
  case $v in ''|*[!0-9]*) echo "eval_paper: arguments must be whole numbers (got '$v')" >&2; exit 2;; esac
done
LCTX=${LCTX:-build/apps/lctx/lctx}
CKPTS=${CKPTS:-assets/checkpoints}
RUNS=${RUNS:-runs/paper}
REPORT=${REPORT:-reports/paper}
DEVICE=${DEVICE:-cuda}
SEED=${SEED:-42}
HAYSTACK=${HAYSTACK:-data/sotu-heldout}
LONG=${LONG:-16m,32m}
RESERVE=${RESERVE:-15}
[ -x "$LCTX" ] || { echo "eval_paper: no lctx binary at $LCTX (set LCTX=...)" >&2; exit 1; }
[ -d "$HAYSTACK" ] || { echo "eval_paper: no haystack folder $HAYSTACK (run scripts/setup.sh)" >&2; exit 1; }
if [ -z "${RUN_ARGS+set}" ]; then
  RUN_ARGS=""
  "$LCTX" run --help 2>/dev/null | grep -q -- '--precision' && RUN_ARGS="--precision bf16"
fi
START=$(date +%s)
mkdir -p "$RUNS" "$REPORT"
LOG=$RUNS/commands.txt

model() {  # name -> "--model kind:path" when the checkpoint exists
  local d=$CKPTS/$1
  [ -f "$d/config.json" ] || return 0
  case $1 in hsa*) echo "--model hsa:$d";; swa*) echo "--model swa:$d";; mamba*) echo "--model mamba:$d";; esac
}
HSA=$(model hsa-paper)
for v in ${HSA_EXTRA:-}; do HSA="$HSA $(model "$v")"; done
ABL="$(model hsa-paper-meanpool) $(model hsa-paper-standard) $(model hsa-paper-dense)"
BASE="$(model swa-paper) $(model mamba-paper)"
[ -n "$HSA$ABL$BASE" ] || { echo "eval_paper: no paper checkpoints in $CKPTS" >&2; exit 1; }

left() { echo $((BUDGET - RESERVE - ($(date +%s) - START))); }
stopped=0
# cell NAME SUITE TASKS LENGTHS SAMPLES MODELS...: one resumable `lctx run` into RUNS/NAME, cut at the budget.
cell() {
  local name=$1 suite=$2 tasks=$3 lengths=$4 samples=$5
  shift 5
  local models="$*"
  [ -n "${models// /}" ] || return 0
  local t
  t=$(left)
  if [ "$t" -lt 5 ]; then stopped=1; return 0; fi
  # shellcheck disable=SC2086
  local cmd="$LCTX run $models --suite $suite --tasks $tasks --lengths $lengths --samples $samples --seed $SEED --device $DEVICE --haystack $HAYSTACK ${RUN_ARGS:+$RUN_ARGS }-q --out $RUNS/$name"
  grep -qxF "$cmd" "$LOG" 2>/dev/null || echo "$cmd" >> "$LOG"
  echo "== [$name] $suite $tasks @ $lengths x $samples (${t}s left)" >&2
  # shellcheck disable=SC2086
  if ! timeout --signal=INT --kill-after=10 "$t" $cmd; then
    if [ "$(left)" -lt 5 ]; then stopped=1; else echo "eval_paper: [$name] failed" >&2; fi
  fi
}

# 1. The bars' headline: HSA vs the baselines on the main tasks, 4K-64K; then HSA at 1M and 256K.
cell a-ruler ruler niah_single_1,niah_single_2 4k,16k,64k "$N_SHORT" $HSA $BASE
cell a-babilong babilong qa1 4k,16k,64k "$N_SHORT" $HSA $BASE
cell b-ruler ruler niah_single_1,niah_single_2,niah_single_3 1m "$N_1M" $HSA
cell b-babilong babilong qa1 1m "$N_1M" $HSA
cell b-ruler256 ruler niah_single_1,niah_single_2,niah_single_3 256k "$N_SHORT" $HSA
cell b-babilong256 babilong qa1 256k "$N_SHORT" $HSA
# 2. The ablations at 4K-256K on niah_single_2 and qa1.
cell c-ruler ruler niah_single_2 4k,64k,256k "$N_SHORT" $ABL
cell c-babilong babilong qa1 4k,64k,256k "$N_SHORT" $ABL
# 3. HSA's long curve: 4M and 16M/32M.
cell d-ruler ruler niah_single_1,niah_single_2 4m,$LONG "$N_LONG" $HSA
cell d-babilong babilong qa1 4m,$LONG "$N_LONG" $HSA
# 4. The baselines past their reach.
cell e-ruler ruler niah_single_1,niah_single_2 256k,1m "$N_LONG" $BASE
cell e-babilong babilong qa1 256k,1m "$N_LONG" $BASE
# 5. The rest of the task grid, 4K-256K, every model.
cell f-ruler ruler niah_single_3,niah_multikey_1,niah_multivalue,niah_multiquery,vt,niah_single_ids 4k,16k,64k,256k "$N_SHORT" $HSA $BASE $ABL
cell f-babilong babilong qa2,qa3,qa4,qa5 4k,16k,64k,256k "$N_SHORT" $HSA $BASE $ABL
cell f-ruler1 ruler niah_single_1,niah_single_2 256k "$N_SHORT" $ABL
# 6. The rest at 1M and beyond for HSA.
cell g-ruler ruler niah_multikey_1,niah_multivalue,niah_multiquery,vt,niah_single_ids 1m "$N_LONG" $HSA
cell g-babilong babilong qa2,qa3,qa4,qa5 1m "$N_LONG" $HSA
cell g-ruler4m ruler niah_single_3 4m "$N_LONG" $HSA

dirs=()
for d in "$RUNS"/*/; do [ -f "$d/results.jsonl" ] && dirs+=("${d%/}"); done
[ ${#dirs[@]} -gt 0 ] || { echo "eval_paper: no results yet (budget too small?)" >&2; exit 1; }
"$LCTX" report "${dirs[@]}" --out "$REPORT" --title "lctx: the HSA paper reproduced (trained at 4K)" >/dev/null
"$LCTX" report "${dirs[@]}" --out "$REPORT/teacher-forced" --score teacher-forced \
  --title "lctx: the HSA paper reproduced (trained at 4K), teacher-forced exact match" >/dev/null
status=$([ "$stopped" = 1 ] && echo "stopped at the time budget; re-run to continue" || echo "complete")
{
  echo "# The paper reproduction: evaluation"
  echo
  echo "Written by \`scripts/eval_paper.sh $BUDGET $N_SHORT $N_1M $N_LONG\` ($(date -u +%F), grid $status)."
  echo "\`report.md\` / \`report.html\` / \`leaderboard.json\` hold the scores and the samples per cell;"
  echo "\`charts/\` the curves. Checkpoints: \`$CKPTS\`; haystack corpus: \`$HAYSTACK\` (State of the Union"
  echo "addresses held out of the training text, docs/training.md); run seed $SEED for every cell (sample i of"
  echo "a cell is a pure function of task, length, index i and the seed); greedy decoding; the score is RULER's"
  echo "string match (BABILong: its metric); \`teacher-forced/\` is the same report scored by teacher-forced exact"
  echo "match, the authors' scoring (every answer token must be the argmax; docs/results-schema.md)."
  echo
  echo "Samples per cell: $N_SHORT at 4K-256K, $N_1M for HSA at 1M on niah_single_1/2/3 and qa1,"
  echo "$N_LONG at 4M and beyond and for the other 1M cells."
  echo
  echo "The commands, in the order they ran:"
  echo
  echo '```'
  sed "s#^$LCTX#lctx#" "$LOG"
  echo '```'
} > "$REPORT/README.md"
echo "eval_paper: $status; report in $REPORT (runs in $RUNS)"
