#!/bin/bash
# Twenty-second session, call 3 (nvidia-h200). The fused prefill norms (M <= 16 rows; gpu/ops.py "prefill norms"):
# 1) their GPU tests and the prefill / engine files they touch; 2) 7B fp16 prefill graphs of 16 / 32 rows with
# ops.PREFILL_NORM off / on, interleaved; 3) 7B fp16 TTFT at 10 / 16 tokens, CUGRAPHLLM_PREFILL_NORM 0 / 1 / 0 / 1,
# one process each.
source scripts/device_lib.sh s30c
LIMIT=${LIMIT:-540}
nvidia-smi -L
t pnorm 200 -n 8 -rfE --tb=short tests/test_prefill_norm_gpu.py tests/test_gemm_gpu.py tests/test_engine_gpu.py \
  tests/test_fused_norm_gpu.py; snap
P=ops.PREFILL_NORM
timeout 150 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,32 --reps 20 --rounds 3 \
  --order "tune1;$P=False,tune1;$P=True,tune1;$P=False,tune1;$P=True" --out $L/ab_pnorm.json > $L/ab_pnorm.log 2>&1
echo "=== ab pnorm rc $?"; grep setting $L/ab_pnorm.log | cut -c1-250; grep -E "Error|Trace" $L/ab_pnorm.log | head; snap
for v in 0 1 0 1; do
  env_bench ttft_$v e2e_pnorm$v 60 CUGRAPHLLM_PREFILL_NORM=$v --preset llama-2-7b --lengths 10,16 --ttft-reps 20
done; snap
echo "total $(( $(date +%s) - T0 )) s"
