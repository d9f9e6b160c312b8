#!/bin/bash
# Prepared in the twenty-seventh session (nvidia-h200, ~2-3 min): scripts/wgh_probe.py, the short prefill's 7B
# fp16 GEMMs (10 / 16 tokens) on wgmma m64n16k16 with the weight rows as A straight from their loads, each config
# checked against NumPy float64, then timed beside the engine's M-row GEMM (gpu/gemm.py, its epilogue included) and
# the bare read (issue #13: TTFT at 10 tokens 3.99-4.01 ms against 3.9).
source scripts/device_lib.sh next_wgh
timeout 240 python3 -m scripts.wgh_probe --out $L/wgh.json > $L/wgh.log 2>&1
echo "wgh_probe rc $?"; grep -vE "Warning|warn" $L/wgh.log | cut -c1-170 | tail -50
snap
