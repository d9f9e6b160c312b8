#!/bin/bash
# Prepared in the twenty-seventh session (nvidia-h200, ~2 min): scripts/wg8_probe.py with the K split over blocks,
# P chunks in flight a thread and packed plane stores (after s35f / s35g), float64-checked, beside the engine's fp8
# ops and the bare read; then the knockouts of the best-looking configs.
source scripts/device_lib.sh next_wg8
timeout 200 python3 -m scripts.wg8_probe --out $L/wg8.json > $L/wg8.log 2>&1
echo "wg8_probe rc $?"; grep -vE "Warning|warn" $L/wg8.log | tail -40
timeout 120 python3 -m scripts.wg8_probe --matrices wqkv+norm,wo+ss --configs "1,4,2;1,8,2;2,1,2" --ko 1,2 \
  --out $L/wg8_ko.json > $L/wg8_ko.log 2>&1
echo "wg8_probe ko rc $?"; grep -vE "Warning|warn" $L/wg8_ko.log | tail -16
snap
