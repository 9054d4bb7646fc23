#!/usr/bin/env bash
# Submits an `lctx run` grid as a Slurm job array (one shard per task, scripts/slurm/lctx-array.sbatch) and a
# report job that runs once every task succeeded (`lctx report OUT --out OUT/report`). Prints the two job ids.
#
#   scripts/slurm/submit.sh [-n SHARDS] [-p PARTITION] [-g GPUS_PER_TASK] [-t TIME] [-c CPUS_PER_TASK] \
#       OUT -- LCTX_RUN_ARGS...            (everything `lctx run` takes except --shard and --out)
#
# Defaults: 8 shards, the cluster's default partition, no GPU, no time limit of our own, 4 CPUs per task.
# Logs go to OUT/slurm/ (run-JOB_TASK.out, report-JOB.out); results to OUT/results.shard-i-of-N.jsonl; the
# report to OUT/report/. Re-running the same command after a failure, cancellation or time-out submits again and
# does only the missing records. $LCTX_BIN is the lctx binary the jobs run (default: this checkout's build).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARDS=8 PART="" GPUS=0 TIME="" CPUS=4
while getopts "n:p:g:t:c:" opt; do
  case $opt in
    n) SHARDS=$OPTARG ;;
    p) PART=$OPTARG ;;
    g) GPUS=$OPTARG ;;
    t) TIME=$OPTARG ;;
    c) CPUS=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
OUT=${1:?usage: submit.sh [-n SHARDS] [-p PARTITION] [-g GPUS] [-t TIME] [-c CPUS] OUT -- LCTX_RUN_ARGS...}
shift
[ "${1:-}" = -- ] && shift
[[ $SHARDS =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: -n must be a positive integer" >&2; exit 2; }
[ $# -gt 0 ] || { echo "submit.sh: no lctx run arguments after --" >&2; exit 2; }
for a in "$@"; do
  case $a in --shard|--shard=*|--out|--out=*) echo "submit.sh: do not pass $a (set per task)" >&2; exit 2 ;; esac
done
mkdir -p "$OUT/slurm"
OUT=$(cd "$OUT" && pwd)
export LCTX_BIN=${LCTX_BIN:-$(cd "$HERE/../.." && pwd)/build/apps/lctx/lctx}
common=(--parsable --chdir "$PWD")
[ -n "$PART" ] && common+=(--partition "$PART")
[ -n "$TIME" ] && common+=(--time "$TIME")
run_opts=(--array "0-$((SHARDS - 1))" --cpus-per-task "$CPUS" --output "$OUT/slurm/run-%A_%a.out")
[ "$GPUS" != 0 ] && run_opts+=(--gpus-per-task "$GPUS")
jid=$(sbatch "${common[@]}" "${run_opts[@]}" --job-name lctx-run "$HERE/lctx-array.sbatch" "$OUT" "$@")
jid=${jid%%;*}
rid=$(sbatch "${common[@]}" --dependency "afterok:$jid" --kill-on-invalid-dep=yes --cpus-per-task 1 \
  --output "$OUT/slurm/report-%j.out" --job-name lctx-report "$HERE/lctx-array.sbatch" --report "$OUT")
rid=${rid%%;*}
echo "$jid $rid"
