#!/bin/bash
# Nineteenth session, call 5 (nvidia-h200): Nsight Compute source counters (stall samples per SASS instruction) of
# the int4 decode GEMVs whose prologue costs most in the knockouts (s27b): 13B w2 (tiles, 7.3 us of 20.5) and 13B
# w13 (tiles, K 5120), 70B w2 (half2, 4.2 of 43.5); each kernel replayed by ncu (caches flushed), clocks untouched.
source scripts/device_lib.sh s27e
LIMIT=400
which ncu >/dev/null || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
nvidia-smi -L
prof() {  # prof NAME PRESET MATRIX KERNEL
  timeout 150 ncu --clock-control none -k regex:$4 --launch-skip 2 --launch-count 1 --section SourceCounters \
    --section WarpStateStats --section SpeedOfLight --section LaunchStats --section Occupancy \
    --import-source no -o $L/$1 python3 -m scripts.ncu_decode --format int4 --reps 4 --preset $2 --matrices $3 \
    > $L/$1_run.log 2>&1
  echo "=== $1 rc $?"; tail -n 2 $L/$1_run.log
  ncu -i $L/$1.ncu-rep --page source --csv --print-source sass > $L/$1_sass.csv 2> $L/$1_src.err
  ncu -i $L/$1.ncu-rep --page details > $L/$1_details.txt 2>&1
  grep -E "Duration|Registers Per|Achieved Occupancy|Memory Throughput|Issue Slots Busy|Block Limit Reg|Waves Per SM" \
    $L/$1_details.txt | head -12
  gzip -f $L/$1_sass.csv; rm -f $L/$1.ncu-rep; snap
}
prof w2_13b llama-2-13b w2+ss qgemv_residual_ss
prof w13_13b llama-2-13b w13+norm qgemv_silu_norm
prof w2_70b llama-2-70b w2+ss qgemv_residual_ss
echo "total $(( $(date +%s) - T0 )) s"
