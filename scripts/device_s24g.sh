#!/bin/bash
# Sixteenth session, call 7 (nvidia-h200): wgmma_probe with one wgmma batch in flight across k-tiles (PIPE 1)
# against s24f's loop (PIPE 0), same call: correctness first, then the residual shapes against cuBLAS.
source scripts/device_lib.sh s24g
nvidia-smi -L
timeout 300 python3 -m scripts.wgmma_probe --configs 2:128:4:0,2:128:4:1,4:128:4:1,4:128:3:1 --splits 2,4,8 \
  --out $L/wgmma_probe.json > $L/wgmma_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-330 $L/wgmma_probe.log | tail -30; snap
echo "total $(( $(date +%s) - T0 )) s"
