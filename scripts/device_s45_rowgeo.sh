#!/bin/bash
# Thirty-seventh session (nvidia-h200): scripts/rowgeo_probe.py, loads only of 16-row tiles by warp-load geometry
# (R rows a load) and layout, beside the own 16-row kernel and a bare read, 7B shapes, each config sum-checked first.
source scripts/device_lib.sh s45_rowgeo
timeout ${LIMIT:-150} python3 -m scripts.rowgeo_probe --rounds 2 --out $L/rowgeo.json > $L/rowgeo.log 2>&1
echo "=== rowgeo rc $?"; python3 - <<PY
import json
for r in json.load(open("$L/rowgeo.json"))["rows"]:
    print(r["shape"], "checks", all(r["checks"].values()), {k: v for k, v in r["checks"].items() if not v})
    print("   ", {k: v for k, v in r["us"].items()})
PY
tail -3 $L/rowgeo.log; snap
