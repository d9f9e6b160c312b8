#!/bin/bash
# Twelfth session (2026-11-30), nvidia-h200, < 3 minutes: 7B fp16 under the paper protocol (bench --paper, 128 new
# tokens) on today's main (last measured in the eighth session, before GEMV_EARLY's residual bit), then bf16 at
# prompt 10 / 500 in a process of its own.
source scripts/device_lib.sh s20f
timeout 100 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper --new-tokens 128 \
  --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -8
timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --dtype bfloat16 \
  --new-tokens 128 --reps 3 --warmup 1 --ttft-reps 20 --lengths 10,500 --no-plot --out $L/bench --stem bf16_7b \
  > $L/bf16.log 2>&1
echo "=== bf16 rc $?"; grep -E '^\| cugraphllm-hybrid \| [0-9]+ \|' $L/bf16.log | head -3
tar -czf "$OUT/s20f.tgz" -C /tmp s20f; echo "total $(( $(date +%s) - T0 )) s"
