#!/bin/bash
# Fourteenth session, call 11 (nvidia-h200, < 4 min): 7B fp16 in the paper protocol (bench --paper, hybrid, 128 new
# tokens, 3 runs, 100 TTFT samples a length) on today's main, for issue #13's decode / TTFT / P99 rows.
source scripts/device_lib.sh s22k
nvidia-smi -L
timeout 200 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper --new-tokens 128 \
  --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -20; snap
echo "total $(( $(date +%s) - T0 )) s"
