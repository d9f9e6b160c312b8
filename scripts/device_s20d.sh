#!/bin/bash
# Twelfth session (2026-11-30), nvidia-h200-x2, < 8 minutes: the two-GPU tests with int4's mma_waves=1 default
# (and the eleventh session's tp_rank move / gemm_quant.allocate_layers, not GPU-run before): tests/test_tp_gpu.py
# whole, the TP2 int4 prologue variants; then 13B int4 --tp 2 decode with mma_waves 1 / 0 (the rule moves 13B TP2's
# w13 to 16 warps, 4 a tile), one process each.
source scripts/device_lib.sh s20d
T0=$(date +%s)
snap() { tar -czf "$OUT/s20d.tgz" -C /tmp s20d; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le 530 ] || { echo "=== skipped ($2): would pass 530 s"; false; }; }
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4 --tp 2"
ab() {  # preset lens mma_waves secs
  fits $4 "e2e $1 waves $3" || return
  local stem=e2e_${1}_tp2_int4_w$3_$(( $(date +%s) - T0 ))
  timeout $4 python3 - > $L/$stem.log 2>&1 <<PY
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["int4"] = dataclasses.replace(g.QUANT_PLANS["int4"], mma_waves=$3)
sys.exit(main("$E2E --preset $1 --lengths $2 --stem $stem".split()))
PY
  echo "=== $1 tp2 waves $3 rc $?: TPOT $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| 64' $L/$stem.log | cut -d'|' -f3,7 | tr '\n' ' ')"
  grep -E "Error|Traceback" $L/$stem.log | head -3
}
nvidia-smi -L
t tp 220 -rfE --tb=short tests/test_tp_gpu.py; snap
t tpq 90 -rfE --tb=short tests/test_quant_prologue_tp_gpu.py -k tp2; snap
for v in 1 0; do ab llama-2-13b 128,500 $v 90; done; snap
echo "total $(( $(date +%s) - T0 )) s"
