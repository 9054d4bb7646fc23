#!/usr/bin/env bash
# Compile every CUDA kernel (kernels/cuda/*.cu) for sm_90 with nvcc and print registers, shared memory and
# spills per kernel; no GPU and no LibTorch needed. Exit status non-zero when a file does not compile.
#   usage: scripts/check_cuda_build.sh [nvcc, default /usr/local/cuda/bin/nvcc]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NVCC=${1:-/usr/local/cuda/bin/nvcc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rc=0
for f in "$ROOT"/kernels/cuda/*.cu; do
  name=$(basename "$f" .cu)
  if "$NVCC" -std=c++17 -O3 -arch=sm_90 -lineinfo -I"$ROOT" -Xptxas -v -c "$f" -o "$TMP/$name.o" > "$TMP/$name.log" 2>&1; then
    spills=$(grep -c "[1-9][0-9]* bytes spill" "$TMP/$name.log")
    regs=$(grep -o "Used [0-9]* registers" "$TMP/$name.log" | awk '{print $2}' | sort -n | tail -1)
    echo "$name: ok (max $regs registers, $spills kernels with spills)"
  else
    echo "$name: FAILED"; grep -E "error" "$TMP/$name.log" | head -20; rc=1
  fi
done
exit $rc
