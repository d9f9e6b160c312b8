#!/bin/bash
# Thirteenth session, call 4 (nvidia-h200, < 5 min): scripts/ring_probe.py, a per-warp cp.async ring against the
# register loop of the half2 row-pair GEMV (int4, fp8; 7B shapes; loads-only variants and a linear read beside).
source scripts/device_lib.sh ring
timeout 400 python3 -m scripts.ring_probe --out $L/ring_probe.json > $L/ring_probe.log 2>&1; echo "=== probe rc $?"
grep -v "^\s*$" $L/ring_probe.log | tail -n 120; snap
