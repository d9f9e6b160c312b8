#!/bin/bash
# Session 18 call 5 (nvidia-h200, branch s18c, < 200 s), three runs side by side on the one GPU (correctness only):
# the fp8 prefill-rows diagnosis with the GEMM tuner's candidate check (scripts/fp8_rows_diag.py: check off / on /
# off with tuning off), tests/test_prefill_rows_gpu.py + tests/test_gemm_tune_gpu.py, and the one-GPU tests call 4
# did not reach (its suiteA cut; sampler tests excluded: they passed in call 3).
source scripts/device_lib.sh s18e
T0=$(date +%s)
( timeout 170 python3 -m scripts.fp8_rows_diag > $L/fp8diag.log 2>&1; echo "=== fp8 diag rc $? at $(( $(date +%s) - T0 )) s" ) &
P0=$!
t rows 170 -n 3 -rfE --tb=short tests/test_prefill_rows_gpu.py tests/test_gemm_tune_gpu.py &
P1=$!
t rest 175 -n 8 -rfE --tb=short $(cat benchmarks/results/tenth_2026-11-30/s18d/rest_not_sampling.txt) &
P2=$!
wait $P0; wait $P1; wait $P2
grep -E "rows|rejected|Error" $L/fp8diag.log | tail -n 14
echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/s18e.tgz" -C /tmp s18e
