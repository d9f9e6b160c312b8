#!/bin/bash
# For the next session (nvidia-h200, ~4 minutes): what --prefill-rows 2048 costs at start-up and in memory, before it
# can become the default (tenth session: 2048-row chunks cut 7B TTFT at 1000 / 2000 / 3900 tokens by 6-10%).
# scripts/startup.py cold + warm, 7B hybrid, context 4096, with 512 and 2048 rows; memory_report in each JSON.
source scripts/device_lib.sh rows_cost
for n in 512 2048; do
  timeout 150 python3 -m scripts.startup --prefill-rows $n --out $L/startup_rows$n.json > $L/startup_rows$n.log 2>&1
  echo "=== rows $n rc $?: $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: (round(d[k]['engine_startup_s'], 2), round(d[k]['total_s'], 2)) for k in ('cold', 'warm')}, d['warm']['memory'])" $L/startup_rows$n.json 2>&1 | cut -c1-600)"
done
tar -czf "$OUT/rows_cost.tgz" -C /tmp rows_cost
