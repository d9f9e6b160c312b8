#!/bin/bash
# Ran at commit 93a6157 (branch bulk); the bulk-copy tiles (QuantPlan.bulk, kernels/gemv_quant_bulk.cuh,
# scripts/bulk_probe.py) were removed after these calls: slower on every matrix, and their loads alone slower
# than the register loop's (benchmarks/results/twelfth_2026-11-30/README.md).
# Twelfth session (2026-11-30), nvidia-h200, < 8 minutes: 1) scripts/bulk_probe.py: the 7B int4 wqkv and w2 GEMVs
# under the default plan and four bulk plans (16 / 8 warps, one or two blocks an SM), real kernel vs loads only
# (QG_KO 7); 2) the prepared mma_waves check (scripts/device_next_waves.sh, shortened): its GPU tests and 13B int4
# decode with mma_waves 1 / 0, one process each.
source scripts/device_lib.sh s20c
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4"
ab() {  # preset lens mma_waves secs
  fits $4 "e2e $1 waves $3" || return
  plan_bench e2e_${1}_int4_w$3_$(( $(date +%s) - T0 )) $4 int4 "mma_waves=$3" $E2E --preset $1 --lengths $2
}
timeout 170 python3 -m scripts.bulk_probe --format int4 --out $L/bench/bulk_probe_int4.json > $L/probe.log 2>&1
echo "=== probe rc $?"; grep -E "^probe|ko " $L/probe.log | sed 's/^probe //'; grep -E "Error|Traceback" $L/probe.log | head -3; snap
t waves_tests 150 -n 8 -rfE --tb=short tests/test_int4_tile_waves_gpu.py tests/test_qg_cursor_gpu.py; snap
for v in 1 0; do ab llama-2-13b 10,500 $v 75; done; snap
echo "total $(( $(date +%s) - T0 )) s"
