#!/bin/bash
# Record: needs the tree of f02f61e (in main's history, reverted by 4d80e77); the code it measures was not merged
# (benchmarks/results/twentythird_2026-12-02/s31e). Twenty-third session, call e (nvidia-h200): the short prefill
# attention (gpu/attention_short.py). Its GPU tests; the engine, quantized-engine, decode-graph and prefill-rows
# tests with it on (the default); then 7B TTFT at 10 / 16 tokens (GPU prefill at position 0) under
# CUGRAPHLLM_SHORT_ATTN=1 / 0, alternating processes.
source scripts/device_lib.sh s31e
nvidia-smi -L
t short 150 -n 8 -rfE --tb=short tests/test_attention_short_gpu.py; snap
t rest 230 -n 12 -rfE --tb=short tests/test_engine_gpu.py tests/test_quant_engine_gpu.py tests/test_decode_graph_gpu.py \
  tests/test_prefill_rows_gpu.py tests/test_attention_prefill_gpu.py; snap
for s in 1 0 1 0 1 0; do env_bench ttft_$s b 45 CUGRAPHLLM_SHORT_ATTN=$s --preset llama-2-7b --lengths 10,16 --ttft-reps 30; done
snap; echo "total $(( $(date +%s) - T0 )) s"
cd $L && for f in bench/b_*.json; do python3 -c "
import json
d=json.load(open('$f'))
for r in d['systems'][0]['results']:
    print('$f', r['prompt_len'], 'ttft', round(r['ttft_ms']['median'],3), 'gpu', round(r['gpu_prefill_ms']['median'],3), round(r['gpu_prefill_ms']['min'],3), 'graphs', d['systems'][0]['memory']['n_graphs'])"; done
