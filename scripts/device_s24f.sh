#!/bin/bash
# Sixteenth session, call 6 (nvidia-h200): scripts/wgmma_probe.py, a Hopper wgmma residual GEMM (sm_90a, cp.async
# ring, split-K by atomics) checked against NumPy float64, then timed against cuBLAS at the 7B / 70B-TP2 residual
# shapes (128 / 512 rows).
source scripts/device_lib.sh s24f
nvidia-smi -L
timeout 300 python3 -m scripts.wgmma_probe --configs 2:128:4,2:64:6,4:128:3 --splits 1,2,4,8 --out $L/wgmma_probe.json \
  > $L/wgmma_probe.log 2>&1
echo "=== probe rc $?"; cat $L/wgmma_probe.log | cut -c1-400 | tail -30; snap
echo "total $(( $(date +%s) - T0 )) s"
