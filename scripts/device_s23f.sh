#!/bin/bash
# Fifteenth session, call 6 (nvidia-h200-x2, < 8 min): 70B fp16 TP2 (4 KV heads and 8 query heads a KV head per
# GPU: key splits of one wave, so the decode attention's early loads are on, the cluster combine off beyond 8
# splits) with today's default against early 0 / cluster 0, one process each, alternating, prompt 128 / 500.
source scripts/device_lib.sh s23f
LIMIT=${LIMIT:-450}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
nvidia-smi -L
for r in 1 2; do for v in - early=0,cluster=0; do
  attn_bench tp2_${r}_${v//[=,]/} 100 0 $v $E2E --preset llama-2-70b --lengths 128,500 --tp 2; done; done; snap
grep -hE "^\| cugraphllm-hybrid-tp2 \| (128|500) \| " $L/tp2_*.log | head -8
echo "total $(( $(date +%s) - T0 )) s"
