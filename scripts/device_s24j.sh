#!/bin/bash
# Sixteenth session, call 10 (nvidia-h200): wgmma_probe's tensor-map variant (a producer warp issuing TMA copies
# into an mbarrier ring, consumers keeping one wgmma batch in flight), with and without its epilogue (KO 1: no
# atomics), against s24g's cp.async kernel, same call.
source scripts/device_lib.sh s24j
nvidia-smi -L
timeout 300 python3 -m scripts.wgmma_probe --configs tma:4:4:0,tma:4:4:1,tma:2:6:0,4:128:4:1:0 --splits 2,4,8 \
  --out $L/wgmma_probe.json > $L/wgmma_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-330 $L/wgmma_probe.log | tail -30; snap
echo "total $(( $(date +%s) - T0 )) s"
