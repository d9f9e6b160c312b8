#!/bin/bash
# Sixth session (2026-11-30), one H200: the quantized GEMVs with each block's weight rows (and int4 scales / zeros)
# prefetched into L2 by the bulk-copy engine at launch (QuantPlan.l2pf). 1) end-to-end A/B, one process per
# setting: 7B int4 / fp8 / int8 and 13B int4 decode, default plan vs l2pf=1; 2) per-matrix sweep (bench_quant
# --sweep l2pf: default, l2pf, l2pf on the row-pair path, the row-pair path; same call); 3) the l2pf GPU test paths.
# Ran at commit 13c24af; QuantPlan.l2pf was removed after this call (slower on every matrix, +4-28%, and end to end:
# 7B int4 1.83 -> 2.21 ms/token, fp8 2.06 -> 2.47, int8 2.21 -> 2.52, 13B int4 3.76 -> 4.33;
# benchmarks/results/ab_2026-11-30g/).
source scripts/device_lib.sh l2pf
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
ab() {  # ab <preset> <format> <l2pf 0|1> <timeout>
  timeout $4 python3 - > $L/e2e_$1_$2_l2pf$3.log 2>&1 <<PY
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["$2"] = dataclasses.replace(g.QUANT_PLANS["$2"], l2pf=$3)
main("$E2E --preset $1 --quant $2 --prompt-lens 10,500 --stem e2e_$1_$2_l2pf$3".split())
PY
  echo "=== $1 $2 l2pf $3 rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|500) \| 64' $L/e2e_$1_$2_l2pf$3.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
}
for f in int4 fp8 int8; do ab llama-2-7b $f 0 50; ab llama-2-7b $f 1 50; done
ab llama-2-13b int4 0 70; ab llama-2-13b int4 1 70
timeout 120 python3 -m scripts.bench_quant --formats int4,fp8,int8 --sweep l2pf --no-table \
  --out $L/bench/sweep_l2pf.json > $L/sweep.log 2>&1; echo "=== sweep rc $?"; grep "^sweep" $L/sweep.log | sed 's/^sweep //'
t l2pf_tests 100 -n 8 tests/test_quant_gpu.py -k "l2pf"
tar -czf "$OUT/l2pf.tgz" -C /tmp l2pf
