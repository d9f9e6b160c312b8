#!/bin/bash
# Fifteenth session, call 8 (nvidia-h200, < 3 min): 7B fp16 in the paper protocol on today's main with nothing else
# running (s23d's one-GPU run shared the host with GPU tests on the other GPU: its host TTFT / inter-token figures
# carried that CPU contention).
source scripts/device_lib.sh s23h
nvidia-smi -L
timeout 150 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper \
  --new-tokens 128 --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -20; snap
echo "total $(( $(date +%s) - T0 )) s"
