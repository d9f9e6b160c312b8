#!/bin/bash
# Ran at commit 93a6157 (branch bulk); the bulk-copy tiles (QuantPlan.bulk, kernels/gemv_quant_bulk.cuh,
# scripts/bulk_probe.py) were removed after these calls: slower on every matrix, and their loads alone slower
# than the register loop's (benchmarks/results/twelfth_2026-11-30/README.md).
# Twelfth session (2026-11-30), nvidia-h200, < 9 minutes: the bulk-copy tiles (QuantPlan.bulk, off by default;
# kernels/gemv_quant_bulk.cuh). 1) tests/test_quant_bulk_gpu.py (every format, 5 configs, rings of 1-3 stages);
# 2) bench_quant --sweep bulk on the 7B int4 GEMVs (default plan first: the A/B of the same call); 3) 7B int4
# decode at prompt 10 / 500 with bulk 1 / 0 / 0 / 1, one process each.
source scripts/device_lib.sh s20a
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
ab() {  # preset fmt lens bulk secs
  fits $5 "e2e $1 $2 bulk $4" || return
  plan_bench e2e_${1}_$2_b$4_$(( $(date +%s) - T0 )) $5 $2 "mma=1, bulk=$4" $E2E --preset $1 --quant $2 --lengths $3
}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
t bulk_tests 170 -n 8 -x --tb=short tests/test_quant_bulk_gpu.py; snap
timeout 150 python3 -m scripts.bench_quant --formats int4 --sweep bulk --no-table --out $L/bench/sweep_bulk_int4.json \
  > $L/sweep_int4.log 2>&1; echo "=== sweep int4 rc $?"; grep "^sweep" $L/sweep_int4.log | sed 's/^sweep //'
grep -iE "error|Traceback" $L/sweep_int4.log | head -5; snap
for v in 1 0 0 1; do ab llama-2-7b int4 10,500 $v 55; done; snap
echo "total $(( $(date +%s) - T0 )) s"
