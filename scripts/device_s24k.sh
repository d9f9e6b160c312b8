#!/bin/bash
# Sixteenth session, call 11 (nvidia-h200): wgmma_probe's tensor-map kernel with the tile staged in shared memory
# and added by vector reductions (EPI 1) against one atomic a value (EPI 0, s24j) and no epilogue (KO 1), same call.
source scripts/device_lib.sh s24k
nvidia-smi -L
timeout 300 python3 -m scripts.wgmma_probe --configs tma:4:4:0:1,tma:2:6:0:1,tma:2:4:0:1,tma:4:4:0:0,tma:4:4:1 \
  --splits 1,2,4,8 --out $L/wgmma_probe.json > $L/wgmma_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-330 $L/wgmma_probe.log | tail -30; snap
echo "total $(( $(date +%s) - T0 )) s"
