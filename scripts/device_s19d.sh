#!/bin/bash
# Eleventh session, fourth call (nvidia-h200, < 9.5 minutes): int4 QuantPlan.mma_shapes (7B / 13B wo and w2, 70B
# wqkv on the tiles) against the plan without them (mma_shapes=()), one process each, alternating, quiet GPU:
# 7B prompt 10 / 500 (new, old, old, new), 13B 10 / 500 and 70B 10 / 128 (new, old); then the int4 GPU tests:
# test_quant_gpu (every path; 13B wo / w2 shapes added), the engine, cursor and knockout files, the 70B qkv
# (big) test on the default plan, and where time is left the PDL / TP1-variant files.
source scripts/device_lib.sh s19d
T0=$(date +%s)
snap() { tar -czf "$OUT/s19d.tgz" -C /tmp s19d; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le 560 ] || { echo "=== skipped ($2): would pass 560 s"; false; }; }
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4"
ab() {  # preset lens variant(new|old) secs
  fits $4 "e2e $1 $3" || return
  local stem=e2e_${1}_int4_$3_$(( $(date +%s) - T0 ))
  timeout $4 python3 - > $L/$stem.log 2>&1 <<PY
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
if "$3" == "old":
    g.QUANT_PLANS["int4"] = dataclasses.replace(g.QUANT_PLANS["int4"], mma_shapes=())
sys.exit(main("$E2E --preset $1 --lengths $2 --stem $stem".split()))
PY
  echo "=== $1 $3 rc $?: TPOT $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| 64' $L/$stem.log | cut -d'|' -f3,7 | tr '\n' ' ')"
}
nvidia-smi -L
for v in new old old new; do ab llama-2-7b 10,500 $v 45; done; snap
for v in new old; do ab llama-2-13b 10,500 $v 70; done; snap
for v in new old; do ab llama-2-70b 10,128 $v 80; done; snap
t quant 200 -n 8 -rfE --tb=short tests/test_quant_gpu.py tests/test_quant_engine_gpu.py tests/test_qg_cursor_gpu.py \
  tests/test_quant_knockout_gpu.py; snap
if fits 60 "70B qkv"; then
  timeout -s INT 60 python3 -m pytest -q -m big -p no:cacheprovider -rfE --tb=short tests/test_quant_gpu.py \
    -k "norm_qkv_rope and 70B and int4" > $L/big_qkv.log 2>&1; echo "=== big qkv: $(tail -n 1 $L/big_qkv.log)"; snap
fi
if fits 100 "pdl / prologue tp"; then
  t pdl 95 -n 8 -rfE --tb=short tests/test_pdl_gpu.py tests/test_quant_prologue_tp_gpu.py -k "int4 or tp1"; snap
fi
echo "total $(( $(date +%s) - T0 )) s"
