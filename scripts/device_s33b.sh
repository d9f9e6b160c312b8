#!/bin/bash
# Twenty-fifth session, call b (nvidia-h200): the decode attention knockouts of device_s33a.sh again (its bench_attention
# run stopped in launch_overhead: fixed in the commit before this script).
source scripts/device_lib.sh s33b
LIMIT=400
timeout 300 python3 -m scripts.bench_attention --variants ko_combine,ko_walk,ko_both,cluster_on,early_on,batch_combine \
  --out $L/attn_ko.json > $L/attn_ko.log 2>&1
echo "=== attn_ko rc $?"; tail -3 $L/attn_ko.log | cut -c1-300; python3 - $L/attn_ko.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["decode"]:
    print(r["length"], r["plan"]["n_split"], " ".join(f"{k[:-3]} {v:.2f}" for k, v in r.items() if k.endswith("_us")))
PY
snap
