#!/usr/bin/env bash
# GPU sweep for a recipe that trains a small HSA to needle retrieval within a CPU-sized token budget
# (~2.4 M tokens: about 10 minutes of this project's 2-core CPU machine for the d 64 configs). Each run is
# recorded in tokens; the GPU only makes the sweep fast. Waves 1-3: single runs at 512 and short-context copy
# runs; c1-c8: two-stage curricula (scripts/sweeps/curriculum.sh), the tables of docs/training.md.
# Usage (device machine): scripts/sweeps/cpu_recipe.sh WAVE|build
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
  c1)  # Wave 1 of the CPU-budget curriculum sweep (docs/training.md).
    N2=niah1=0.5,copy=0.5
    OUT=${OUT:-out/sweep}/curr1 scripts/sweeps/curriculum.sh \
    "P1:cpu-c16.json:64/32/600/copy=1+128/16/500/copy=1+256/8/500/copy=1+512/8/400/$N2" \
    "P2:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+512/8/500/$N2" \
    "P3:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+512/8/500/niah1=0.5,copy-wide=0.5" \
    "P4:cpu-c16.json:64/32/600/copy=1+128/16/600/copy=1+512/8/500/$N2" \
    "P5:cpu-c32.json:128/16/1200/copy=1/3e-3/1e-3+512/8/500/$N2" \
    "P6:cpu-c16.json:128/16/1200/copy-wide=0.5,copy=0.5/3e-3/1e-3+512/8/500/niah1=0.5,copy-wide=0.5" \
    "P7:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+256/8/600/copy=1+512/8/300/niah1=0.7,copy=0.3" \
    "P8:cpu-c16.json:64/32/600/copy=1+128/16/600/copy=1+512/8/500/niah1=1" ;;
  c2)  # Wave 2 of the CPU-budget curriculum sweep (docs/training.md): stage 2 length, mixture, top-k.
    # (A Q7 with ruler/niah_multiquery in stage 2 never ran: "/" separates a stage's fields.)
    S1=128/16/1200/copy=1/3e-3/1e-3; N2=niah1=0.5,copy=0.5
    OUT=${OUT:-out/sweep}/curr2 scripts/sweeps/curriculum.sh \
    "Q1:cpu-c16.json:$S1+512/8/1000/$N2" \
    "Q2:cpu-c16.json:$S1+512/8/1000/niah1=0.7,copy=0.3" \
    "Q3:cpu-c16-k8.json:$S1+512/8/1000/$N2" \
    "Q4:cpu-c16.json:$S1+512/16/500/$N2" \
    "Q5:cpu-c16.json:$S1+512/8/1000/niah1=1" \
    "Q6:cpu-c16.json:$S1+512/8/1000/$N2/2e-3/1e-3" \
    "Q8:cpu-c16.json:128/16/1800/copy=1/3e-3/1e-3+512/8/1000/$N2" ;;
  c3)  # Wave 3 of the CPU-budget curriculum sweep (docs/training.md): longer copy stages, niah-heavier stage 2.
    N7=niah1=0.7,copy=0.3; A=64/32/800/copy=1+128/16/800/copy=1/3e-3/1e-3; B=128/16/1800/copy=1/3e-3/1e-3
    KEEP=1 OUT=${OUT:-out/sweep}/curr3 scripts/sweeps/curriculum.sh \
    "R1:cpu-c16.json:$A+512/8/1000/$N7" \
    "R2:cpu-c16.json:128/16/2400/copy=1/3e-3/1e-3+512/8/1000/$N7" \
    "R3:cpu-c16.json:$B+512/16/600/$N7" \
    "R4:cpu-c16.json:$B+512/8/1500/$N7" \
    "R5:cpu-c16.json:$A+512/8/1000/niah1=0.85,copy=0.15" \
    "R6:cpu-c16-k8.json:$B+512/8/1000/$N7" \
    "R7:cpu-c16.json:$B+512/8/1000/niah1=0.7,copy-wide=0.3" \
    "R8:cpu-c16.json:$A+256/16/400/copy=1+512/8/800/$N7" ;;
  c4)  # Wave 4 of the CPU-budget curriculum sweep (docs/training.md): cheaper variants of the best wave-3 recipe (R7).
    W=niah1=0.7,copy-wide=0.3; A=64/32/800/copy=1+128/16/800/copy=1/3e-3/1e-3; B=128/16/1800/copy=1/3e-3/1e-3
    OUT=${OUT:-out/sweep}/curr4 scripts/sweeps/curriculum.sh \
    "T1:cpu-c16.json:$A+512/8/1000/$W" \
    "T2:cpu-c16.json:$B+512/8/700/$W" \
    "T3:cpu-c16.json:128/16/1200/copy=1/3e-3/1e-3+512/8/1000/$W" \
    "T4:cpu-c16.json:$A+512/8/700/$W" \
    "T5:cpu-c16.json:$B+512/8/1000/niah1=0.6,copy-wide=0.4" \
    "T6:cpu-c16.json:64/32/1200/copy=1/3e-3/1e-3+512/8/1000/$W" \
    "T7:cpu-c16.json:128/16/1800/copy-wide=0.5,copy=0.5/3e-3/1e-3+512/8/1000/$W" \
    "T8:cpu-c16-k8.json:$B+512/8/1000/$W" ;;
  c5)  # Wave 5 of the CPU-budget curriculum sweep (docs/training.md): seed robustness of the best recipe (R7) and
    W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3
    PRECISION=fp32 OUT=${OUT:-out/sweep}/curr5 scripts/sweeps/curriculum.sh \
    "Y1:cpu-c16.json:$B+512/8/1000/$W:1" "Y2:cpu-c16.json:$B+512/8/1000/$W:2" "Y3:cpu-c16.json:$B+512/8/1000/$W:3" \
    "Y4:cpu-c16.json:$B+512/8/1500/$W:1" "Y5:cpu-c16.json:$B+512/8/1500/$W:2" "Y6:cpu-c16.json:$B+512/8/1500/$W:3" \
    "Y7:cpu-c16.json:$B+512/8/1000/$W+512/8/500/$W/1e-3/3e-4:2" "Y8:cpu-c16.json:$B+512/8/1000/$W+512/8/500/$W/1e-3/3e-4:3" ;;
  c6)  # Wave 6 of the CPU-budget curriculum sweep (docs/training.md): token_shift_width 2, fp32, three seeds.
    W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3; A=64/32/1200/copy=1/3e-3/1e-3
    PRECISION=fp32 OUT=${OUT:-out/sweep}/curr6 scripts/sweeps/curriculum.sh \
    "Z1:cpu-c16-ts2.json:$B+512/8/1000/$W:1" "Z2:cpu-c16-ts2.json:$B+512/8/1000/$W:2" "Z3:cpu-c16-ts2.json:$B+512/8/1000/$W:3" \
    "Z4:cpu-c32-ts2.json:$B+512/8/1000/$W:1" "Z5:cpu-c32-ts2.json:$B+512/8/1000/$W:2" \
    "Z6:cpu-c16-ts2.json:$A+512/8/1000/$W:1" "Z7:cpu-c16-ts2.json:$A+512/8/1000/$W:2" "Z8:cpu-c16-ts2.json:$A+512/8/1000/$W:3" ;;
  c7)  # Wave 7 of the CPU-budget curriculum sweep (docs/training.md): 32-token chunks (fewer chunks to choose from
    W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3
    PRECISION=fp32 OUT=${OUT:-out/sweep}/curr7 scripts/sweeps/curriculum.sh \
    "V1:cpu-c32.json:$B+512/8/1000/$W:1" "V2:cpu-c32.json:$B+512/8/1000/$W:2" "V3:cpu-c32.json:$B+512/8/1000/$W:3" \
    "V4:cpu-c16.json:$B+256/16/400/copy=1+512/8/800/$W:1" "V5:cpu-c16.json:$B+256/16/400/copy=1+512/8/800/$W:2" \
    "V6:cpu-c16.json:$B+256/16/400/copy=1+512/8/800/$W:3" "V7:cpu-c32-ts2.json:$B+512/8/1000/$W:3" \
    "V8:cpu-c32.json:$B+256/16/400/copy=1+512/8/800/$W:1" ;;
  c8)  # Wave 8 of the CPU-budget curriculum sweep (docs/training.md): 32-token chunks, longer or wider second
    W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3
    PRECISION=fp32 OUT=${OUT:-out/sweep}/curr8 scripts/sweeps/curriculum.sh \
    "U1:cpu-c32.json:$B+512/8/1500/$W:2" "U2:cpu-c32.json:$B+512/8/1500/$W:3" "U3:cpu-c32.json:$B+512/8/1500/$W:4" \
    "U4:cpu-c32.json:$B+512/8/1000/$W:4" "U5:cpu-c32.json:$B+512/8/1000/$W:5" \
    "U6:cpu-c32.json:$B+512/16/700/$W:2" "U7:cpu-c32.json:$B+512/16/700/$W:3" "U8:cpu-c32.json:$B+512/8/1000/niah1=0.6,copy=0.4:2" ;;
  c9)  # Wave 9 of the CPU-budget curriculum sweep (docs/training.md): shifted retrieval keys (key_shift), five seeds,
    # without Gumbel-noised selection, and with 4 heads.
    W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3
    PRECISION=fp32 OUT=${OUT:-out/sweep}/curr9 scripts/sweeps/curriculum.sh \
    "K1:cpu-c32-ks.json:$B+512/8/1000/$W:1" "K2:cpu-c32-ks.json:$B+512/8/1000/$W:2" "K3:cpu-c32-ks.json:$B+512/8/1000/$W:3" \
    "K4:cpu-c32-ks.json:$B+512/8/1000/$W:4" "K5:cpu-c32-ks.json:$B+512/8/1000/$W:5" \
    "K6:cpu-c32-ks-off.json:$B+512/8/1000/$W:1" "K7:cpu-c32-ks-off.json:$B+512/8/1000/$W:2" "K8:cpu-c32-ks-h4.json:$B+512/8/1000/$W:1" ;;
  c10)  # Wave 10 of the CPU-budget curriculum sweep (docs/training.md): the selection auxiliary loss (selection_aux)
    # in stage 2 only (aux1.json override), five seeds and shorter second stages; from the start (cpu-c32-aux.json).
    W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3; X=3e-3/3e-4/aux1.json
    PRECISION=fp32 OUT=${OUT:-out/sweep}/curr10 scripts/sweeps/curriculum.sh \
    "A1:cpu-c32.json:$B+512/8/1000/$W/$X:1" "A2:cpu-c32.json:$B+512/8/1000/$W/$X:2" "A3:cpu-c32.json:$B+512/8/1000/$W/$X:3" \
    "A4:cpu-c32.json:$B+512/8/1000/$W/$X:4" "A5:cpu-c32.json:$B+512/8/1000/$W/$X:5" \
    "A6:cpu-c32.json:$B+512/8/600/$W/$X:2" "A7:cpu-c32.json:128/16/1200/copy=1/3e-3/1e-3+512/8/700/$W/$X:2" \
    "A8:cpu-c32-aux.json:128/16/1200/copy=1/3e-3/1e-3+512/8/700/$W:2" "A9:cpu-c32-aux.json:$B+512/8/1000/$W:3" \
    "A10:cpu-c32.json:$B+512/8/1000/$W/3e-3/3e-4/aux03.json:3" ;;
  c11)  # Wave 11 of the CPU-budget curriculum sweep (docs/training.md): seed robustness of three selection_aux recipes.
    W=niah1=0.7,copy-wide=0.3; B=128/16/1800/copy=1/3e-3/1e-3; S=128/16/1200/copy=1/3e-3/1e-3; X=3e-3/3e-4/aux1.json
    PRECISION=fp32 OUT=${OUT:-out/sweep}/curr11 scripts/sweeps/curriculum.sh \
    "RA1:cpu-c32-aux.json:$S+512/8/700/$W:1" "RA3:cpu-c32-aux.json:$S+512/8/700/$W:3" \
    "RA4:cpu-c32-aux.json:$S+512/8/700/$W:4" "RA5:cpu-c32-aux.json:$S+512/8/700/$W:5" \
    "RB1:cpu-c32-aux.json:$B+512/8/1000/$W:1" "RB2:cpu-c32-aux.json:$B+512/8/1000/$W:2" \
    "RB4:cpu-c32-aux.json:$B+512/8/1000/$W:4" "RB5:cpu-c32-aux.json:$B+512/8/1000/$W:5" \
    "RC1:cpu-c32.json:$S+512/8/700/$W/$X:1" "RC3:cpu-c32.json:$S+512/8/700/$W/$X:3" \
    "RC4:cpu-c32.json:$S+512/8/700/$W/$X:4" "RC5:cpu-c32.json:$S+512/8/700/$W/$X:5" ;;
  c12)  # Wave 12 (docs/training.md): the selection_aux recipe (aux from the start, 1200 + 700 steps) with
    # row-normalised loss, with a 1000-step second stage, and two more seeds.
    W=niah1=0.7,copy-wide=0.3; S=128/16/1200/copy=1/3e-3/1e-3
    export PRECISION=fp32
    TRAIN_ARGS="--loss-norm row" OUT=${OUT:-out/sweep}/curr12n scripts/sweeps/curriculum.sh \
      "N1:cpu-c32-aux.json:$S+512/8/700/$W:1" "N3:cpu-c32-aux.json:$S+512/8/700/$W:3" \
      "N4:cpu-c32-aux.json:$S+512/8/700/$W:4" "N5:cpu-c32-aux.json:$S+512/8/700/$W:5" &
    OUT=${OUT:-out/sweep}/curr12 scripts/sweeps/curriculum.sh \
      "L1:cpu-c32-aux.json:$S+512/8/1000/$W:1" "L4:cpu-c32-aux.json:$S+512/8/1000/$W:4" \
      "L5:cpu-c32-aux.json:$S+512/8/1000/$W:5" "S6:cpu-c32-aux.json:$S+512/8/700/$W:6" \
      "S7:cpu-c32-aux.json:$S+512/8/700/$W:7" "S8:cpu-c32-aux.json:$S+512/8/700/$W:8"
    wait ;;
  c13)  # Wave 13 (docs/training.md): the row-normalised selection_aux recipe on more seeds, and shorter.
    W=niah1=0.7,copy-wide=0.3; S=128/16/1200/copy=1/3e-3/1e-3; Q=128/16/900/copy=1/3e-3/1e-3
    PRECISION=fp32 TRAIN_ARGS="--loss-norm row" OUT=${OUT:-out/sweep}/curr13 scripts/sweeps/curriculum.sh \
      "M2:cpu-c32-aux.json:$S+512/8/700/$W:2" "M6:cpu-c32-aux.json:$S+512/8/700/$W:6" \
      "M7:cpu-c32-aux.json:$S+512/8/700/$W:7" "M8:cpu-c32-aux.json:$S+512/8/700/$W:8" \
      "H1:cpu-c32-aux.json:$S+512/8/500/$W:1" "H2:cpu-c32-aux.json:$S+512/8/500/$W:2" \
      "G1:cpu-c32-aux.json:$Q+512/8/500/$W:1" "G2:cpu-c32-aux.json:$Q+512/8/500/$W:2" ;;
  c14)  # Wave 14 (docs/training.md): row-normalised loss without selection_aux (ablation); the 900 + 500 recipe on
    # three more seeds; 600 + 300.
    W=niah1=0.7,copy-wide=0.3; S=128/16/1200/copy=1/3e-3/1e-3; Q=128/16/900/copy=1/3e-3/1e-3; R=128/16/600/copy=1/3e-3/1e-3
    PRECISION=fp32 TRAIN_ARGS="--loss-norm row" OUT=${OUT:-out/sweep}/curr14 scripts/sweeps/curriculum.sh \
      "J1:cpu-c32.json:$S+512/8/700/$W:1" "J2:cpu-c32.json:$S+512/8/700/$W:2" "J3:cpu-c32.json:$S+512/8/700/$W:3" \
      "G3:cpu-c32-aux.json:$Q+512/8/500/$W:3" "G4:cpu-c32-aux.json:$Q+512/8/500/$W:4" "G5:cpu-c32-aux.json:$Q+512/8/500/$W:5" \
      "F1:cpu-c32-aux.json:$R+512/8/300/$W:1" "F2:cpu-c32-aux.json:$R+512/8/300/$W:2" ;;
  build) ;;  # build only
  *) OUT=${OUT:-out/sweep}/custom scripts/gpu_sweep.sh "${@:2}" ;;
esac
