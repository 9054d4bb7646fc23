#!/usr/bin/env bash
# Marginal CPU cost of one sample of `lctx generate` (one thread), without RULER: (cpu(N) - cpu(1)) / (N - 1),
# each cpu the least of REPS runs (user + system of the whole process, /usr/bin/time), so that start-up cancels
# out and the noise of a shared machine is kept down. Prints one line per task and length.
#
#   scripts/gen_marginal.sh [LCTX_BINARY]
#
# Env: TASKS (default "niah_single_2 vt cwe"), LENGTHS (default "32k 128k 1m"), N_32K (1000), N_128K (300),
#      N_1M (40), REPS (5), SEED (42).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LCTX=${1:-$ROOT/build-notorch/apps/lctx/lctx}
TASKS=${TASKS:-niah_single_2 vt cwe}
LENGTHS=${LENGTHS:-32k 128k 1m}
REPS=${REPS:-5}
SEED=${SEED:-42}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# The least CPU seconds of REPS runs making n samples of task t at length l.
least() {
  local t=$1 l=$2 n=$3 best=""
  for _ in $(seq "$REPS"); do
    rm -rf "$TMP/out"
    /usr/bin/time -o "$TMP/time" -f '%U %S' "$LCTX" generate --suite ruler --tasks "$t" --lengths "$l" \
      --samples "$n" --seed "$SEED" --threads 1 --out "$TMP/out" > /dev/null 2>&1
    local c
    c=$(awk '{printf "%.2f", $1 + $2}' "$TMP/time")
    if [ -z "$best" ] || awk -v a="$c" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$c; fi
  done
  echo "$best"
}

printf 'task\tlength\tN\tcpu_1_s\tcpu_N_s\tmarginal_ms\n'
for t in $TASKS; do
  for l in $LENGTHS; do
    case $l in
      32k) n=${N_32K:-1000} ;;
      128k) n=${N_128K:-300} ;;
      1m) n=${N_1M:-40} ;;
      *) n=${N_OTHER:-20} ;;
    esac
    c1=$(least "$t" "$l" 1)
    cn=$(least "$t" "$l" "$n")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$l" "$n" "$c1" "$cn" \
      "$(awk -v a="$c1" -v b="$cn" -v n="$n" 'BEGIN { printf "%.3f", (b - a) / (n - 1) * 1000 }')"
  done
done
