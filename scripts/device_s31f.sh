#!/bin/bash
# Twenty-third session, call f (nvidia-h200): the final tree (ops.py split into ops_norm / ops_tp). The GPU tests
# of the norm, embedding, PDL, fused-norm, engine, decode-graph and fp8 activation paths, then 7B fp16 in the paper
# protocol (128 new tokens, 3 runs, 100 TTFT samples a length) for #13's table.
source scripts/device_lib.sh s31f
LIMIT=400
nvidia-smi -L
t tests 170 -n 12 -rfE --tb=short tests/test_norm_gpu.py tests/test_pdl_gpu.py tests/test_fused_norm_gpu.py \
  tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_prefill_norm_gpu.py tests/test_fp8_actq_gpu.py; snap
fits 200 paper && { timeout 200 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper \
  --new-tokens 128 --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
  echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -20; snap; }
echo "total $(( $(date +%s) - T0 )) s"
