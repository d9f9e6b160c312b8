#!/bin/bash
# Nsight Compute over the decode kernels (scripts/ncu_decode.py), one GPU per track: where the quantized GEMVs
# lose to the bare read of their bytes (stall reasons, issue, DRAM throughput), and what the sampler's two kernels
# cost each. ncu leaves the clocks alone (--clock-control none, METHOD.md).
source scripts/device_lib.sh ncu
NCU="ncu --clock-control none -k regex:gemv|sample|argmax --section SpeedOfLight --section WarpStateStats \
  --section Occupancy --section LaunchStats --section SchedulerStats --section MemoryWorkloadAnalysis"
which ncu || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
( export CUDA_VISIBLE_DEVICES=0
  for f in int4 fp16; do timeout 150 $NCU --launch-skip 2 --launch-count 30 \
      python3 -m scripts.ncu_decode --format $f --reps 3 > $L/ncu_$f.txt 2>&1; done
  timeout 100 $NCU --launch-skip 2 --launch-count 40 python3 -m scripts.ncu_decode --no-gemv --sample --reps 4 \
      > $L/ncu_sample.txt 2>&1
) &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 150 $NCU --launch-skip 2 --launch-count 30 python3 -m scripts.ncu_decode --format int4 --reps 3 \
      --plan mma_min_pairs=0,stages=4 > $L/ncu_int4_async.txt 2>&1
  for f in int8 fp8; do timeout 120 $NCU --launch-skip 2 --launch-count 30 \
      python3 -m scripts.ncu_decode --format $f --reps 3 > $L/ncu_$f.txt 2>&1; done
) &
P1=$!
wait $P0 $P1
for f in $L/ncu_*.txt; do echo "##### $f"; grep -E "^  [a-z_]+|Duration|DRAM Throughput" $f | head -40; done
tar -czf "$OUT/ncu.tgz" -C /tmp ncu
