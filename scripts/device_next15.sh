#!/bin/bash
# For the next session's first call (nvidia-h200, < 5 min; not run yet): 7B fp16 in the paper protocol on the
# fourteenth session's final main (7B wo on (16, 1, 4), GEMV_SHAPES), the figure issue #13's decode rows need, then
# the 16-bit decode-graph tests beside it (the wo change's GPU tests ran in s22o: 133 passed).
source scripts/device_lib.sh next15
nvidia-smi -L
timeout 200 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --paper --new-tokens 128 \
  --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
echo "=== paper rc $?"; grep -E '^\| cugraphllm' $L/paper.log | head -20; snap
t engine 120 -rfE --tb=short -n 8 tests/test_engine_gpu.py tests/test_decode_graph_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
