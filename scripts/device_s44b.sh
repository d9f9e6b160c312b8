#!/bin/bash
# Thirty-sixth session, call s44b: scripts/m16_probe.py, the 16-token GEMM + residual with bulk-copied weight rows,
# beside the engine's own 16-row kernel and a bare read, on the 7B shapes (each config checked against float64 first),
# with the probe's default configs of the tree it runs in (meta.json gives each call's tree).
source scripts/device_lib.sh ${1:-s44b}  # the log folder / tarball name (device_next_m16p.sh passes its own)
timeout 300 python3 -m scripts.m16_probe --rounds 2 --out $L/m16_probe.json > $L/m16_probe.log 2>&1
echo "=== m16_probe rc $?"; python3 - <<PY
import json
for r in json.load(open("$L/m16_probe.json"))["rows"]:
    print(r["shape"], {k: (round(v, 5) if isinstance(v, float) else v) for k, v in r["errors"].items()})
    print("   ", {k: v for k, v in r["us"].items()})
PY
tail -5 $L/m16_probe.log; snap
