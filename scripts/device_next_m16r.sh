#!/bin/bash
# Prepared in the thirty-seventh session (its device time was spent), for the next session with device time (~1 min):
# scripts/m16r_probe.py, a 16-token GEMM + residual whose weight loads each span one row (512 bytes a warp load; the
# fragments move between lanes through a per-warp shared-memory buffer), beside the engine's own 16-row kernel and a
# bare read, 7B shapes, each config checked against float64 first; rk configs are the loads + buffer round trip alone.
# If it runs near the read (s45_rowgeo: loads alone in this geometry 9.8 / 22.4 / 24.4 / 42.2 us for wo / w2 / wqkv
# / w13), build the engine's 16-row GEMMs (kernels/gemm.cu, with their fused epilogues) this way: up to ~0.5 ms off
# #13's TTFT at 10 tokens. Results in $OUT/next_m16r.tgz.
source scripts/device_lib.sh ${1:-next_m16r}
timeout ${LIMIT:-200} python3 -m scripts.m16r_probe --rounds 2 --out $L/m16r.json > $L/m16r.log 2>&1
echo "=== m16r rc $?"; python3 - <<PY
import json
for r in json.load(open("$L/m16r.json"))["rows"]:
    print(r["shape"], {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r["errors"].items()})
    print("   ", r["us"])
PY
tail -3 $L/m16r.log; snap
