#!/bin/bash
# Prepared in the twenty-seventh session (nvidia-h200, ~4-6 min): scripts/wg8_probe.py after s35f / s35g: one
# warpgroup a block with the K split over blocks (grids of one even wave), chunks in flight a thread, packed plane
# stores; fp8 (e4m3 x e4m3), int8 (s8 x s8 planes) and int4 (nibbles widened to u8 x s8 planes, group scale / zero
# on the CUDA cores). Under the 600 s limit: 330 + 130 + 80 s.
# Each config is checked against NumPy float64 first; then us beside the engine's op and the bare read.
source scripts/device_lib.sh next_wg8
timeout 330 python3 -m scripts.wg8_probe --out $L/wg8.json > $L/wg8.log 2>&1
echo "wg8_probe rc $?"; grep -vE "Warning|warn" $L/wg8.log | cut -c1-170 | tail -60; snap
timeout 130 python3 -m scripts.wg8_probe --formats fp8,int4 --matrices wqkv+norm,wo+ss --configs "1,4,2;1,8,2" --ko 1,2 \
  --out $L/wg8_ko.json > $L/wg8_ko.log 2>&1
echo "wg8_probe ko rc $?"; grep -vE "Warning|warn" $L/wg8_ko.log | cut -c1-170 | tail -20
timeout 80 python3 -m scripts.wg8_probe --formats int4 --matrices wqkv+norm --configs "1,4,2" --gain \
  --out $L/wg8_gain.json > $L/wg8_gain.log 2>&1
echo "wg8_probe gain rc $?"; grep -vE "Warning|warn" $L/wg8_gain.log | cut -c1-170 | tail -4
snap
