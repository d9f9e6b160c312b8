#!/bin/bash
# Twenty-second session, call 1 (nvidia-h200). What the 16-row prefill (TTFT at <= 16 tokens, #13) spends outside its
# GEMMs: 7B fp16 prefill graphs of 16 / 32 rows with the prefill RMSNorms knocked out (ko:norm) and the prefill
# attention knocked out (ko:attn), interleaved with the default; then 7B fp16 TTFT at 10 tokens (20 samples).
source scripts/device_lib.sh s30a
nvidia-smi -L
timeout 200 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,32 --reps 20 --rounds 3 \
  --order "tune1,tune1;ko:norm,tune1;ko:attn,tune1,tune1;ko:norm" --out $L/ab_7b_m16.json > $L/ab_7b_m16.log 2>&1
echo "=== ab m16 rc $?"; grep setting $L/ab_7b_m16.log | cut -c1-250; snap
timeout 90 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --lengths 10 \
  --new-tokens 32 --reps 2 --warmup 1 --ttft-reps 20 --out $L/bench --stem fp16_7b --no-plot > $L/fp16_7b.log 2>&1
echo "=== 7b fp16 rc $?"; grep -E '^\| cugraphllm-hybrid \| 10 ' $L/fp16_7b.log; snap
echo "total $(( $(date +%s) - T0 )) s"
