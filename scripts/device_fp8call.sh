#!/bin/bash
# Eighth session (2026-11-30), nvidia-h200, second call. 1) The fp8 prefill GPU tests (cuBLASLt outer-vector scales,
# FP8 algo tuning) and the gemm_tune tests. 2) fp8 prefill graphs, old path vs new (scripts/prefill_ab.py, 7B, 128 /
# 512 rows and generate()'s GPU prefill of 116 / 500 tokens), then per op (scripts/bench_fp8_ab.py). 3) 7B fp16, the
# paper protocol alone on the GPU (100 TTFT samples, 3 runs of 128 tokens per paper length): P99 / P50 ratios.
# Results in $OUT/fp8call.tgz, refreshed after each step.
source scripts/device_lib.sh fp8call
T0=$(date +%s)
snap() { tar -czf "$OUT/fp8call.tgz" -C /tmp fp8call; echo "[at $(( $(date +%s) - T0 )) s]"; }
t fp8_tests 150 -n 8 tests/test_fp8_lt_gpu.py tests/test_quant_prefill_gpu.py tests/test_gemm_tune_gpu.py; snap
timeout 110 python3 -m scripts.prefill_ab --quant fp8 --buckets 128,512 --partial 12 --reps 5 --rounds 3 \
  --order "tune0;CUGRAPHLLM_FP8_OUTER_SCALE=0,tune1;CUGRAPHLLM_FP8_OUTER_SCALE=1,tune0;CUGRAPHLLM_FP8_OUTER_SCALE=0,tune1;CUGRAPHLLM_FP8_OUTER_SCALE=1" \
  --out $L/fp8_prefill_ab.json > $L/fp8_prefill_ab.log 2>&1
echo "=== fp8 prefill_ab rc $?"; grep setting $L/fp8_prefill_ab.log; snap
timeout 60 python3 -m scripts.bench_fp8_ab --ms 128,512 --out $L/fp8_ab.json > $L/fp8_ab.log 2>&1
echo "=== fp8 ops rc $?"; tail -n 12 $L/fp8_ab.log; snap
timeout 140 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper --new-tokens 128 \
  --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -20; snap
