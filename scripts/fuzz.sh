#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ once with clang-14 (ASan + UBSan, torch-free, build-fuzz/) and runs
# each from its committed seed corpus (fuzz/corpus/NAME, copied: the committed corpus is not changed) for
# LCTX_FUZZ_SECONDS seconds (default 60), LCTX_FUZZ_PARALLEL targets at a time (default 2), each fuzzer one
# process (no -jobs/-fork). Prints one line per target (executions, corpus, findings) and fails when any target finds
# a crash, a sanitizer report, a leak or a timeout; the input that did it is left in build-fuzz/artifacts/.
# Usage: bash scripts/fuzz.sh [TARGET...]   (default: all five)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECS=${LCTX_FUZZ_SECONDS:-60}
PAR=${LCTX_FUZZ_PARALLEL:-2}
JOBS=${LCTX_JOBS:-$(nproc)}
ALL=(safetensors config results predictions templates)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DLCTX_FUZZ=ON \
  -DLCTX_WITH_TORCH=OFF -DLCTX_BUILD_TESTS=OFF -DLCTX_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j "$JOBS" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")
mkdir -p build-fuzz/artifacts build-fuzz/logs

export TMPDIR=${LCTX_FUZZ_TMP:-$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")}

run_one() {  # name
  local t=$1 work
  work=$(mktemp -d)
  cp "fuzz/corpus/$t"/* "$work"/
  local rc=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -close_fd_mask=3 -artifact_prefix="build-fuzz/artifacts/$t-" "$work" >"build-fuzz/logs/$t.log" 2>&1 || rc=$?
  rm -rf "$work"
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "build-fuzz/logs/$t.log" | tail -1 || true)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $t: $runs executions in ${SECS} s ($cov), no findings"
  else
    echo "fuzz: $t: FINDING after $runs executions (exit $rc); see build-fuzz/logs/$t.log and build-fuzz/artifacts/"
    grep -m3 -E 'ERROR: |runtime error|SUMMARY' "build-fuzz/logs/$t.log" || true
  fi
  return $rc
}

fail=0
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" > "build-fuzz/logs/$t.summary" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$PAR" ]; then
    wait "${pids[0]}" || fail=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
for t in "${TARGETS[@]}"; do cat "build-fuzz/logs/$t.summary"; done
exit $fail
