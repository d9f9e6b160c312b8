#!/bin/bash
# Sixth session (2026-11-30), one H200: the bulk-copy row-pair driver of the quantized GEMVs (QuantPlan.bulk,
# kernels/gemv_quant_bulk.cuh). 1) its GPU tests (the h2_bulk / f32_bulk paths of tests/test_quant_gpu.py);
# 2) per-matrix sweep of int4 / fp8 (bench_quant --sweep bulk: the default plan first, same call); 3) 7B decode
# A/B (int4, fp8), one process per setting: the default plan vs bulk=1 (row pairs everywhere, int4 without tiles).
# Ran at commit 85c2baf; the driver was removed after this call (slower everywhere: 7B int4 decode 1.84 -> 3.10
# ms/token, fp8 2.06 -> 2.77; int4 wqkv 12.7 -> 17.4-29.8 us; benchmarks/results/ab_2026-11-30f/).
source scripts/device_lib.sh bulk
t bulk_tests 130 -n 8 tests/test_quant_gpu.py -k "bulk"
timeout 110 python3 -m scripts.bench_quant --formats int4,fp8 --sweep bulk --no-table --out $L/bench/sweep_bulk.json \
  > $L/sweep.log 2>&1; echo "=== sweep rc $?"; grep "^sweep" $L/sweep.log | sed 's/^sweep //'
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
for f in int4 fp8; do for b in 0 1; do
  timeout 55 python3 - > $L/e2e_${f}_bulk$b.log 2>&1 <<PY
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
if $b:
    g.QUANT_PLANS["$f"] = dataclasses.replace(g.QUANT_PLANS["$f"], bulk=1, mma=0)
main("$E2E --preset llama-2-7b --quant $f --prompt-lens 10,500 --stem e2e_${f}_bulk$b".split())
PY
  echo "=== $f bulk $b rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|500) \| 64' $L/e2e_${f}_bulk$b.log | tr '\n' ' ')"
done; done
tar -czf "$OUT/bulk.tgz" -C /tmp bulk
