#!/bin/bash
# Seventeenth session, call 1 (nvidia-h200): the int4 wgmma prefill GEMM probe (scripts/w4_wgmma_probe.py), checked
# against NumPy float64 at group sizes 128 / 32 / per row, then timed at 7B's shapes at 128 / 512 rows against the
# engine's int4 path (slabs + cuBLAS) and cuBLAS fp16.
source scripts/device_lib.sh s25a
nvidia-smi -L
timeout 400 python3 -m scripts.w4_wgmma_probe --configs 2:128:4,2:64:6,2:256:3,2:128:4:1 --splits 1,2 \
  --rows 128,512 --out $L/w4_probe.json > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-400 $L/w4_probe.log | tail -30; snap
echo "total $(( $(date +%s) - T0 )) s"
