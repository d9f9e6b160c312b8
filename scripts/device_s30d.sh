#!/bin/bash
# Twenty-second session, call 4 (nvidia-h200). The fused prefill norms with ss copied into shared memory by
# cp.async before the consumer's main loop and summed after it (s30c waited for ss before the loop): 1) their GPU
# tests and gemm / engine files; 2) 7B fp16 prefill graphs of 16 rows, PREFILL_NORM off / on x3 and off with the
# norms knocked out (the ceiling), interleaved; 3) 7B fp16 TTFT at 10 tokens, CUGRAPHLLM_PREFILL_NORM 0 / 1 x3.
source scripts/device_lib.sh s30d
LIMIT=${LIMIT:-540}
nvidia-smi -L
t pnorm 200 -n 8 -rfE --tb=short tests/test_prefill_norm_gpu.py tests/test_gemm_gpu.py tests/test_engine_gpu.py \
  tests/test_fused_norm_gpu.py tests/test_memory_gpu.py; snap
P=ops.PREFILL_NORM
timeout 200 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16 --reps 30 --rounds 5 \
  --order "tune1;$P=False,tune1;$P=True,tune1;$P=False;ko:norm,tune1;$P=False,tune1;$P=True,tune1;$P=False,tune1;$P=True" \
  --out $L/ab_pnorm.json > $L/ab_pnorm.log 2>&1
echo "=== ab pnorm rc $?"; grep setting $L/ab_pnorm.log | cut -c1-250; grep -E "Error|Trace" $L/ab_pnorm.log | head; snap
for v in 0 1 0 1 0 1; do
  env_bench ttft_$v e2e_pnorm$v 50 CUGRAPHLLM_PREFILL_NORM=$v --preset llama-2-7b --lengths 10 --ttft-reps 30
done; snap
# 4) #13's table on today's main: 7B fp16 in the paper protocol (128 new tokens, 3 runs, 100 TTFT samples a
# length), then decode at 3900 cached tokens
fits 200 paper && { timeout 200 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper \
  --new-tokens 128 --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
  echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -20; snap; }
fits 90 long && { timeout 90 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
  --lengths 3900 --max-seq-len 4096 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench \
  --stem long_7b > $L/long.log 2>&1; echo "=== long rc $?"; grep -E '^\| cugraphllm' $L/long.log | head; snap; }
echo "total $(( $(date +%s) - T0 )) s"
