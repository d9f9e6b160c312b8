#!/bin/bash
# A record: needs GEMV_W8 in kernels/gemv.cu (commit 9265006; removed after these runs).
# Twenty-seventh session (nvidia-h200, ~2-3 min): scripts/w8_probe.py, the 7B fp8 decode GEMVs in gemv.cu's design
# (GEMV_W8=1: no staging, the activation through L1, the gain in the loop) against the engine's, checked first.
source scripts/device_lib.sh s35b
timeout 240 python3 -m scripts.w8_probe --out $L/w8_probe.json > $L/w8_probe.log 2>&1
echo "w8_probe rc $?"; grep -E '"ok": false|Error|Traceback' $L/w8_probe.log | head -8
python3 - "$L/w8_probe.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
print("checks ok:", sum(r.get("ok", False) for r in rows if "check" in r), "/", sum("check" in r for r in rows))
for r in rows:
    if "check" in r: continue
    if r["variant"] == "engine": print(f"{r['matrix']:10s} engine {r['us']:.2f} us  read {r['read_us']:.2f}")
    else: print(f"{r['matrix']:10s} w8 {r['config']} {r['us'] if r['us'] is None else round(r['us'], 2)} err {r['max_err_vs_engine']:.1e}")
PY
snap
