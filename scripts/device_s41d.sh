#!/bin/bash
# Thirty-third session, call s41d (nvidia-h200, ~5 min), the tree at be581bf: 1) GPU tests of the engine, the decode
# graph and the samplers (the one_trip decode plan and the env.py knob parsers inside the engine); 2) bench --paper
# (hybrid, 7B fp16, 128 new tokens, 3 runs, 100 TTFT samples a length), the standing figures of issue #13;
# 3) bench_attention at the key counts decode runs at (the 256-key bucket now one trip).
source scripts/device_lib.sh s41d
LIMIT=${LIMIT:-420}
t engine 130 -n 6 -rfE --tb=short tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_sampling_gpu.py \
  tests/test_sampling_v3_gpu.py; snap
B="--backend cuda --preset llama-2-7b --modes hybrid --no-plot --out $L/bench"
run_bench paper 160 --paper --new-tokens 128 --reps 3; snap
fits 40 attn && { timeout 40 python3 -m scripts.bench_attention --no-variants --lengths 64,128,129,192,256,257,512 \
  --out $L/attn.json > $L/attn.log 2>&1; echo "=== attn rc $?"; python3 -m scripts.bench_attention --summary $L/attn.json; snap; }
