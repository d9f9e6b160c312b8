#!/bin/bash
# Thirteenth session, call 8 (nvidia-h200, < 3 min): scripts/mma8_probe.py, decode GEMVs on tensor cores from
# fragment-packed weights, W8A8: int8 (IMMA, native) and fp8 (e4m3 mma.sync: F2FP + HMMA on sm_90), 7B shapes.
source scripts/device_lib.sh mma8
timeout 240 python3 -m scripts.mma8_probe --out $L/mma8.json > $L/mma8.log 2>&1; echo "=== probe rc $?"
grep -v "^\s*$" $L/mma8.log | cut -c1-140; snap
