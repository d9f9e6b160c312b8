#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2, one GPU per track. GPU 0: the prefill GEMM GPU tests (the own
# kernel's new knobs, branch m16 merged), then 7B fp16 prefill graphs of 128 / 512 rows full and with 12 padding
# rows, against generate()'s GPU prefill time of the same prompt (scripts/prefill_ab.py --partial 12), then 7B fp16
# bench at 10 / 128 / 500 tokens on this main. GPU 1: scripts/bench_gemm.py at 16 rows, all own-kernel configs.
source scripts/device_lib.sh m16
T0=$(date +%s)
( export CUDA_VISIBLE_DEVICES=0
  t gemm_tests 150 -n 6 tests/test_gemm_gpu.py tests/test_gemm_tune_gpu.py
  timeout 60 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,128,512 --order tune1 --partial 12 \
    --out $L/ab_7b_partial.json > $L/ab_7b_partial.log 2>&1
  echo "=== partial rc $? at $(( $(date +%s) - T0 )) s"; grep setting $L/ab_7b_partial.log
  timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --lengths 10,128,500 \
    --new-tokens 64 --reps 2 --ttft-reps 10 --warmup 1 --out $L/bench --stem fp16_7b --no-plot > $L/fp16_7b.log 2>&1
  echo "=== 7b fp16 rc $? at $(( $(date +%s) - T0 )) s"; grep -E "^\| cugraphllm-hybrid \| (10|128|500) " $L/fp16_7b.log
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 200 python3 -m scripts.bench_gemm --ms 16 --tune --out $L/gemm_m16.json > $L/gemm_m16.log 2>&1
  echo "=== bench_gemm m16 rc $? at $(( $(date +%s) - T0 )) s"; grep -E "^M=|summary" $L/gemm_m16.log | cut -c1-2500
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/m16.tgz" -C /tmp m16
