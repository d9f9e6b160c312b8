#!/bin/bash
# Sixteenth session, call 13 (nvidia-h200): wgmma_probe's tensor-map kernel at 16 tokens (wgmma m64n16k16) on the
# 7B shapes of the 16-row prefill bucket, against cuBLAS and, for the residual op, the engine's own kernel.
source scripts/device_lib.sh s24l
nvidia-smi -L
timeout 200 python3 -m scripts.wgmma_probe --configs tma:2:8:0:1:16,tma:4:6:0:1:16,tma:2:8:1:1:16 --splits 1,2,4 \
  --shapes 16:4096:4096,16:4096:11008,16:12288:4096,16:22016:4096 --out $L/wgmma_probe.json > $L/wgmma_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-330 $L/wgmma_probe.log | tail -16; snap
echo "total $(( $(date +%s) - T0 )) s"
