#!/bin/bash
# Sixteenth session, calls 8 and 9 (nvidia-h200; call 9 after the partial tile went token-major): wgmma_probe with the split-K partials summed in a thread block cluster
# through DSMEM (CLUSTER 1, deterministic) against the atomics (s24g's best config), same call.
source scripts/device_lib.sh s24h
nvidia-smi -L
timeout 300 python3 -m scripts.wgmma_probe --configs 4:128:4:1:1,2:128:4:1:1,4:128:4:1:0 --splits 2,4,8 \
  --out $L/wgmma_probe.json > $L/wgmma_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-330 $L/wgmma_probe.log | tail -30; snap
echo "total $(( $(date +%s) - T0 )) s"
