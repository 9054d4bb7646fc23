#!/usr/bin/env bash
# Generation cost side by side: RULER's own prepare.py (unmodified) and `lctx generate`, same tokenizer, same
# machine, one run. For each task and length both make 1 and N samples; the marginal cost per sample is
# (time(N) - time(1)) / (N - 1), so start-up (Python imports, corpus loading) cancels out. Times are CPU
# seconds (user + system, children included, from wait4's rusage, microseconds), which a shared machine does
# not inflate much; both tools are single-threaded here (lctx with --threads 1), so on an idle machine wall
# time is the same. lctx's runs are repeated LCTX_REPS times (default 5) and the least CPU time is kept, since
# its marginal cost can be below the run-to-run noise of its start-up.
# Prints a table and writes OUT/bench.tsv (lctx's peak RSS included).
#
#   scripts/bench_vs_ruler.sh RULER_CHECKOUT [OUT_DIR]
#
# Env: TASKS (default "niah_single_2 vt cwe"), LENGTHS (default "32768 131072 1048576"), N (default 10), LCTX_REPS,
#      PYTHON (python3 with numpy, tqdm, yaml, tenacity, sentencepiece; Debian: python3-numpy python3-tqdm
#      python3-yaml python3-tenacity python3-sentencepiece), LCTX (binary), TOKENIZER (.model, default lctx-8k).
# RULER's data scripts also import NeMo (for the tokenizer), wonderwords and NLTK's punkt model, which Debian
# does not package: scripts/upstream/stubs/make_stubs.py provides stand-ins (see there). RULER's essay haystack
# (PaulGrahamEssays.json, downloaded by RULER) is replaced by lctx's default corpus text, so both tools read
# the same words.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RULER=$(cd "$1" && pwd)
OUT=${2:-$(mktemp -d)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
LCTX=${LCTX:-$ROOT/build/apps/lctx/lctx}
[ -x "$LCTX" ] || LCTX=$ROOT/build-notorch/apps/lctx/lctx
TOK=${TOKENIZER:-$ROOT/assets/tokenizer/lctx-8k.model}
N=${N:-10}
REPS=${LCTX_REPS:-5}
TASKS=${TASKS:-niah_single_2 vt cwe}
LENGTHS=${LENGTHS:-32768 131072 1048576}
DATA=${LCTX_DATA:-$ROOT/data}

rm -rf "$OUT/ruler" && mkdir -p "$OUT/ruler" && cp -r "$RULER/scripts" "$OUT/ruler/"
"$PY" - "$DATA/sotu" "$OUT/ruler/scripts/data/synthetic/json/PaulGrahamEssays.json" <<'PYEOF'
import glob, json, os, sys
text = "\n\n".join(open(f, encoding="utf-8").read() for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.txt"))))
json.dump({"text": text}, open(sys.argv[2], "w"))
PYEOF
# english_words.json is a Git LFS file in RULER's repository; a checkout without LFS holds a pointer. Then the
# words of /usr/share/dict/words (Debian's wamerican) stand in.
EW="$OUT/ruler/scripts/data/synthetic/json/english_words.json"
if head -c 40 "$EW" | grep -q git-lfs; then
  "$PY" - "$EW" <<'PYEOF'
import json, sys
words = sorted({w.strip().lower() for w in open("/usr/share/dict/words", encoding="utf-8") if w.strip().isalpha()})
json.dump({str(i): w for i, w in enumerate(words)}, open(sys.argv[1], "w"))
PYEOF
fi
"$PY" "$ROOT/scripts/upstream/stubs/make_stubs.py" "$OUT/stubs" "$DATA/wordnet" >/dev/null
mkdir -p "$OUT/bin" && ln -sf "$(command -v "$PY")" "$OUT/bin/python"   # prepare.py runs `python script.py`

# timed FILE CMD...: runs CMD, writes "cpu_seconds peak_rss_kb" (the child and its waited-for descendants).
timed() {
  "$PY" -c 'import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:]); _, st, ru = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write("%.6f %d\n" % (ru.ru_utime + ru.ru_stime, ru.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(st))' "$@"
}
cpu_s() { awk '{printf "%.6f", $1}' "$1"; }
peak_kb() { awk '{print $2}' "$1"; }
ruler_run() {  # task length n -> seconds
  local dir="$OUT/r/$1-$2-$3"; rm -rf "$dir"; mkdir -p "$OUT/r"
  (cd "$OUT/ruler/scripts/data" && PATH="$OUT/bin:$PATH" PYTHONPATH="$OUT/stubs" timed "$dir.time" \
     "$PY" prepare.py --save_dir "$dir" --benchmark synthetic --task "$1" --tokenizer_path "$TOK" \
     --tokenizer_type nemo --max_seq_length "$2" --model_template_type base --num_samples "$3" >"$dir.log" 2>&1) || true
  local lines; lines=$(wc -l < "$dir/$1/validation.jsonl" 2>/dev/null || echo 0)
  [ "$lines" = "$3" ] || { echo "RULER prepare.py failed for $1 $2 (see $dir.log)" >&2; echo nan; return; }
  cpu_s "$dir.time"
}
lctx_run() {  # task length n -> seconds, the least of REPS runs (peak RSS in $OUT/l-$1-$2-$3.time)
  local dir="$OUT/l/$1-$2-$3" best="" t r
  for r in $(seq "$REPS"); do
    rm -rf "$dir"
    timed "$OUT/l-$1-$2-$3.rep" "$LCTX" generate --suite ruler --tasks "$1" --lengths "$2" \
      --samples "$3" --threads 1 --tokenizer "$TOK" --out "$dir" >/dev/null 2>&1
    t=$(cpu_s "$OUT/l-$1-$2-$3.rep")
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; cp "$OUT/l-$1-$2-$3.rep" "$OUT/l-$1-$2-$3.time"; fi
  done
  rm -rf "$dir"
  echo "$best"
}
printf "task\tlength\truler_1\truler_%s\truler_marginal_s\tlctx_1\tlctx_%s\tlctx_marginal_s\tratio\tlctx_peak_rss_mb\n" "$N" "$N" \
  | tee "$OUT/bench.tsv"
for L in $LENGTHS; do
  for T in $TASKS; do
    r1=$(ruler_run "$T" "$L" 1); rn=$(ruler_run "$T" "$L" "$N")
    l1=$(lctx_run "$T" "$L" 1); ln=$(lctx_run "$T" "$L" "$N")
    rm_=$(echo "($rn - $r1) / ($N - 1)" | bc -l 2>/dev/null || echo nan)
    lm=$(echo "($ln - $l1) / ($N - 1)" | bc -l)
    if [ "$(echo "$lm > 0" | bc -l)" = 1 ]; then ratio=$(echo "$rm_ / $lm" | bc -l 2>/dev/null || echo nan); else ratio=inf; fi
    rss=$(( $(peak_kb "$OUT/l-$T-$L-$N.time") / 1024 ))
    printf "%s\t%s\t%.3f\t%.3f\t%.5f\t%.4f\t%.4f\t%.6f\t%.5g\t%s\n" "$T" "$L" "$r1" "$rn" "$rm_" "$l1" "$ln" "$lm" "$ratio" "$rss" \
      | tee -a "$OUT/bench.tsv"
  done
done
