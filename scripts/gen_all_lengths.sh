#!/usr/bin/env bash
# Generates one sample of every RULER and BABILong task at each length (default 4k 32k 128k 1m 8m 32m), one
# thread, and prints CPU time, wall time and peak RSS per (task, length). A task that fails is reported on stderr
# and the run goes on; the exit status is non-zero when any failed.
#   scripts/gen_all_lengths.sh [OUT_DIR]        Env: LENGTHS, LCTX (binary), TASKS_RULER, TASKS_BABILONG
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
LCTX=${LCTX:-$ROOT/build/apps/lctx/lctx}
[ -x "$LCTX" ] || LCTX=$ROOT/build-notorch/apps/lctx/lctx
LENGTHS=${LENGTHS:-4k 32k 128k 1m 8m 32m}
RULER=${TASKS_RULER:-niah_single_1 niah_single_2 niah_single_3 niah_multikey_1 niah_multikey_2 niah_multikey_3 niah_multivalue niah_multiquery vt cwe fwe qa_1 qa_2 niah_single_ids}
BAB=${TASKS_BABILONG:-qa1 qa2 qa3 qa4 qa5 qa6 qa7 qa8 qa9 qa10 qa11 qa12 qa13 qa14 qa15 qa16 qa17 qa18 qa19 qa20}
printf "suite\ttask\tlength\tcpu_s\twall_s\tpeak_rss_mb\n"
run() {  # suite task length
  local t="$OUT/$1-$2-$3.time"
  /usr/bin/time -v -o "$t" "$LCTX" generate --suite "$1" --tasks "$2" --lengths "$3" --samples 1 --threads 1 \
    --qa-data "$ROOT/tests/fixtures/qa" --out "$OUT/$1-$2-$3" >/dev/null 2>"$OUT/$1-$2-$3.log" ||
    { echo "FAILED: $1 $2 $3: $(grep 'lctx: error' "$OUT/$1-$2-$3.log")" >&2; FAILED=$((FAILED + 1));
      rm -rf "$OUT/$1-$2-$3"; return; }
  awk -v s="$1" -v k="$2" -v l="$3" '/User time/ {u=$NF} /System time/ {y=$NF} /Elapsed/ {w=$NF}
    /Maximum resident/ {m=$NF} END {n=split(w,a,":"); ws=(n==3)?a[1]*3600+a[2]*60+a[3]:a[1]*60+a[2];
    printf "%s\t%s\t%s\t%.2f\t%.2f\t%.0f\n", s, k, l, u+y, ws, m/1024}' "$t"
  rm -rf "$OUT/$1-$2-$3"
}
FAILED=0
for L in $LENGTHS; do
  for T in $RULER; do run ruler "$T" "$L"; done
  for T in $BAB; do run babilong "$T" "$L"; done
done
[ "$FAILED" -eq 0 ] || { echo "$FAILED runs failed" >&2; exit 1; }
