#!/bin/bash
# Eighteenth session, call 1 (nvidia-h200): Nsight Compute on the int4 wgmma prefill kernel (7B w2 / w13 / wqkv at
# 512 rows) beside cuBLAS fp16 on the same shapes: tensor-pipe activity, L2 throughput, stall reasons.
source scripts/device_lib.sh s26a
nvidia-smi -L
which ncu || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
NCU="ncu --clock-control none -k regex:w4_wgmma --launch-count 12 --section SpeedOfLight \
  --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
  --section Occupancy --section LaunchStats --metrics lts__t_bytes.sum.per_second,lts__t_sectors_srcunit_tex.sum,smsp__inst_executed.sum"
timeout 300 $NCU python3 -m scripts.w4_ncu --cases w2:wg2:bt128,w13:wg3:bt128,wqkv:wg3:bt128,w2:wg2:bt64 \
  > $L/ncu.txt 2>&1
echo "=== ncu rc $?"
grep -E "^  [a-zA-Z_0-9]+.*\(|Duration|Throughput|lts__t|inst_executed|Registers|Warp Cycles|Issued Ipc|No Eligible|Tensor|Pipe|Stall|Active Warps" $L/ncu.txt | head -150
snap
echo "total $(( $(date +%s) - T0 )) s"
