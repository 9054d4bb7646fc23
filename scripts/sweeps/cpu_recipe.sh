#!/usr/bin/env bash
# GPU sweep for a recipe that trains a small HSA to needle retrieval within a CPU-sized token budget
# (~2.4 M tokens: about 10 minutes of this project's 2-core CPU machine for the d 64 configs). Each run is
# recorded in tokens; the GPU only makes the sweep fast. Usage (device machine): scripts/sweeps/cpu_recipe.sh WAVE
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -e data ] || ln -s .carry/data data
if [ ! -x build-cuda/apps/lctx/lctx ]; then
  TP=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLCTX_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_PREFIX_PATH="$TP;$PWD/.carry" > /tmp/configure.log 2>&1 || { tail -20 /tmp/configure.log; exit 1; }
  t0=$(date +%s); cmake --build build-cuda -j 16 --target lctx > /tmp/build.log 2>&1 || { grep -A3 error /tmp/build.log | head -40; exit 1; }
  echo "build $(( $(date +%s) - t0 ))s"
fi
M2=copy-wide=0.5,niah1=0.5; M1=copy=0.5,niah1=0.5; M3=copy-wide=0.7,niah1=0.3
export THREADS=2 EVAL_SAMPLES=${EVAL_SAMPLES:-50} SECS=${SECS:-240} KEEP=${KEEP:-0}
case "$1" in
  1) OUT=${OUT:-out/sweep}/w1 scripts/gpu_sweep.sh \
       a:hsa:cpu-c32.json:8:3e-3:600:$M2 b:hsa:cpu-c32.json:8:1e-2:600:$M2 c:hsa:cpu-c32.json:16:3e-3:300:$M2 \
       d:hsa:cpu-c32.json:8:3e-3:600:$M1 e:hsa:cpu-c32.json:8:3e-3:600:$M3 f:hsa:cpu-c32.json:8:3e-3:800:$M2:384 \
       g:hsa:cpu-c32-l1.json:8:3e-3:600:$M2 h:hsa:tiny-ts.json:8:3e-3:600:$M2 ;;
  2) OUT=${OUT:-out/sweep}/w2 scripts/gpu_sweep.sh \
       i:hsa:cpu-c32-off.json:8:3e-3:600:$M2 j:hsa:cpu-c32-mp.json:8:3e-3:600:$M2 k:hsa:cpu-c32.json:4:3e-3:1200:$M2 \
       l:hsa:cpu-c32.json:8:3e-3:1200:$M2 m:hsa:cpu-c16.json:8:3e-3:600:$M2 n:hsa:cpu-d128-c32.json:8:3e-3:600:$M2 \
       o:hsa:cpu-c32.json:8:6e-3:600:$M2 p:hsa:tiny-ts.json:8:1e-2:600:$M2 ;;
  3) export EVAL_LENGTHS=" "; OUT=${OUT:-out/sweep}/w3 scripts/gpu_sweep.sh \
       s1:hsa:cpu-c16.json:16:3e-3:1500:copy=1:128 s2:hsa:cpu-c16.json:32:3e-3:1500:copy=1:64 \
       s3:hsa:cpu-c16.json:16:3e-3:1500:copy-wide=1:128 s4:hsa:cpu-c16.json:8:3e-3:1500:copy=1:256 \
       s5:swa:swa-w16.json:16:3e-3:1500:copy=1:128 s6:hsa:cpu-c16.json:16:1e-2:1500:copy=1:128 \
       s7:hsa:cpu-c16.json:4:3e-3:3000:copy=1:128 s8:hsa:cpu-c32.json:16:3e-3:1500:copy=1:128 ;;
  build) ;;  # build only
  *) OUT=${OUT:-out/sweep}/custom scripts/gpu_sweep.sh "${@:2}" ;;
esac
