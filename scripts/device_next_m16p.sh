#!/bin/bash
# Prepared in the thirty-sixth session (its device time was spent), for the next session with device time (~1 min):
# scripts/m16_probe.py's persistent variant (m16_persist: a few blocks an SM, each streaming its 16-row tiles one
# after the other through one ring that runs on across tile boundaries), beside the per-tile tensor-map blocks, the
# engine's own 16-row kernel and a bare read, whole and as the bare stream (xc knockouts). s44b_cko found per-tile
# blocks 11-17% under the bare read even with nothing to compute; if the persistent stream reaches the read, a 16-row
# GEMM built that way (stream-K partial sums to balance wo / w2) is worth building for #13's TTFT at 10 tokens.
source scripts/device_lib.sh next_m16p
timeout 300 python3 -m scripts.m16_probe --rounds 2 --out $L/m16_probe.json > $L/m16_probe.log 2>&1
echo "=== m16_probe rc $?"; python3 - <<PY
import json
for r in json.load(open("$L/m16_probe.json"))["rows"]:
    print(r["shape"], {k: (round(v, 5) if isinstance(v, float) else v) for k, v in r["errors"].items()})
    print("   ", {k: v for k, v in r["us"].items()})
PY
tail -5 $L/m16_probe.log; snap
