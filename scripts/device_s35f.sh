#!/bin/bash
# A record: ran as s35f / s35g at 2a5f126 (its --wgs option is gone: wg8_probe now takes --configs).
# Twenty-seventh session (nvidia-h200, ~1-2 min): scripts/wg8_probe.py, the 7B fp8 decode GEMVs with their products
# on wgmma m64n8k32 e4m3 (weights as loaded, the activation as three e4m3 planes), float64-checked, then timed
# beside the engine's fp8 ops and the bare read.
source scripts/device_lib.sh s35f
timeout ${WG8_SECS:-150} python3 -m scripts.wg8_probe --matrices ${WG8_MATS:-wqkv+norm,w13+norm,w2+ss,wo+ss} \
  --wgs ${WG8_WGS:-2,4,8} --ko ${WG8_KO:-0} --out $L/wg8.json > $L/wg8.log 2>&1
echo "wg8_probe rc $?"; grep -vE "Warning|warn" $L/wg8.log | tail -20
snap
