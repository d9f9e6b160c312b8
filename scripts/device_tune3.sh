#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2. The prefill GEMM tuner with its timing queued before one sync:
# GPU tests, then the captured prefill graphs off / on (scripts/prefill_ab.py) for 7B on GPU 0 while GPU 1 runs
# scripts/bench_gemm.py at 16 / 32 / 64 rows with the own kernel's (WM, WK, STAGES) sweep; then 70B TP2 off / on.
source scripts/device_lib.sh tune3
T0=$(date +%s)
( export CUDA_VISIBLE_DEVICES=0
  t gemm_tests 120 -n 4 tests/test_gemm_tune_gpu.py tests/test_gemm_gpu.py
  timeout 150 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,64,128,256,512 \
    --order tune0,tune1,tune0,tune1 --out $L/ab_7b.json > $L/ab_7b.log 2>&1
  echo "=== 7b rc $? at $(( $(date +%s) - T0 )) s"; grep setting $L/ab_7b.log
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 200 python3 -m scripts.bench_gemm --ms 16,32,64 --tune --out $L/gemm_small.json > $L/gemm_small.log 2>&1
  echo "=== bench_gemm rc $? at $(( $(date +%s) - T0 )) s"; grep -E "^M=|summary" $L/gemm_small.log
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
timeout 200 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,256,512 --reps 5 \
  --order tune0,tune1 --out $L/ab_70b_tp2.json > $L/ab_70b.log 2>&1
echo "=== 70b tp2 rc $? at $(( $(date +%s) - T0 )) s"; grep setting $L/ab_70b.log
tar -czf "$OUT/tune3.tgz" -C /tmp tune3
