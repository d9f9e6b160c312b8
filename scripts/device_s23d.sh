#!/bin/bash
# Fifteenth session, call 4 (nvidia-h200-x2, < 9 min): today's main (decode attention early / cluster on one-wave
# key splits; 7B wo on (16, 1, 4)) in the paper protocol: GPU 0 7B fp16 (128 new tokens, 100 TTFT samples per
# length) while GPU 1 runs the engine / decode-graph / PDL GPU tests; then the two-GPU tests and 7B TP2 in the
# paper protocol at prompt 10 / 128 / 500.
source scripts/device_lib.sh s23d
nvidia-smi -L
( export CUDA_VISIBLE_DEVICES=1
  t engine 150 -rfE --tb=short -n 4 tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_pdl_gpu.py ) &
P=$!
CUDA_VISIBLE_DEVICES=0 timeout 200 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper \
  --new-tokens 128 --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -20
wait $P; snap
t tp 150 -rfE --tb=short tests/test_tp_gpu.py; snap
timeout 200 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper --tp 2 \
  --new-tokens 128 --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b_tp2 > $L/paper_tp2.log 2>&1
echo "=== paper tp2 rc $?"; grep -E '^\| cugraphllm' $L/paper_tp2.log | head -20; snap
echo "total $(( $(date +%s) - T0 )) s"
