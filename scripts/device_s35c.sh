#!/bin/bash
# A record: needs GEMV_W8 in kernels/gemv.cu (commit 9265006; removed after these runs).
# Twenty-seventh session (nvidia-h200, ~1 min): w8_probe without the norm gain (as if the producer of the activation
# had applied it), on the norm consumers wqkv / w13, engine and W8 alike.
source scripts/device_lib.sh s35c
timeout 200 python3 -m scripts.w8_probe --no-check --gain off --matrices wqkv+norm,w13+norm \
  --configs "16,1,2,2;8,1,4,0;8,2,2,0;8,2,1,0;8,1,2,0;4,2,1,0;8,1,1,0;16,1,1,2" --out $L/w8_nogain.json > $L/w8_nogain.log 2>&1
echo "w8_probe rc $?"; grep -E '"ok": false|Error|Traceback' $L/w8_nogain.log | head -8
python3 - "$L/w8_nogain.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["rows"]:
    if r["variant"] == "engine": print(f"{r['matrix']:10s} engine {r['us']:.2f} us  read {r['read_us']:.2f}")
    else: print(f"{r['matrix']:10s} w8 {r['config']} {r['us'] if r['us'] is None else round(r['us'], 2)} err {r['max_err_vs_engine']:.1e}")
PY
snap
