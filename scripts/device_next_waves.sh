#!/bin/bash
# For the next session (nvidia-h200, < 8 minutes): int4 tile configs by wave fill (QuantPlan.mma_waves=1, branch
# next-s20; off by default). 1) its GPU tests (tests/test_int4_tile_waves_gpu.py: the three configs where it departs
# from the fixed rule, against float64) with the cursor bit-identity file; 2) 13B int4 decode at prompt 10 / 500,
# mma_waves 1 / 0 / 0 / 1, one process each (the rule moves 13B's wqkv to 16 warps, 4 a tile: 21.09 -> 16.67 us a
# call in the s19f sweep); 3) 70B int4 at 10 / 128, 1 / 0 (the rule changes nothing there on one GPU: a control).
source scripts/device_lib.sh waves
T0=$(date +%s)
snap() { tar -czf "$OUT/waves.tgz" -C /tmp waves; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le 450 ] || { echo "=== skipped ($2): would pass 450 s"; false; }; }
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4"
ab() {  # preset lens mma_waves secs
  fits $4 "e2e $1 waves $3" || return
  local stem=e2e_${1}_int4_w$3_$(( $(date +%s) - T0 ))
  timeout $4 python3 - > $L/$stem.log 2>&1 <<PY
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["int4"] = dataclasses.replace(g.QUANT_PLANS["int4"], mma_waves=$3)
sys.exit(main("$E2E --preset $1 --lengths $2 --stem $stem".split()))
PY
  echo "=== $1 waves $3 rc $?: TPOT $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| 64' $L/$stem.log | cut -d'|' -f3,7 | tr '\n' ' ')"
}
t tests 150 -n 8 -rfE --tb=short tests/test_int4_tile_waves_gpu.py tests/test_qg_cursor_gpu.py; snap
for v in 1 0 0 1; do ab llama-2-13b 10,500 $v 70; done; snap
for v in 1 0; do ab llama-2-70b 10,128 $v 80; done; snap
echo "total $(( $(date +%s) - T0 )) s"
