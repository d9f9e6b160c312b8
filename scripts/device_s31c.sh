#!/bin/bash
# Record: needs the tree of 62ef9f6 (in main's history, reverted by e19da68); the code it measures was not merged
# (benchmarks/results/twentythird_2026-12-02/s31c). Twenty-third session, call c (nvidia-h200): the fused
# short-prefill attention with K / V straight from L2 (6 KB of static shared memory instead of 23): its GPU tests
# and the engine tests, then 7B TTFT at 10 / 16 tokens (GPU prefill time at position 0) under CUGRAPHLLM_QKV_ATTN=1
# / 0, alternating processes.
source scripts/device_lib.sh s31c
nvidia-smi -L
t qattn 200 -n 8 -rfE --tb=short tests/test_qkv_attn_gpu.py; snap
t engine 150 -n 8 -rfE --tb=short tests/test_engine_gpu.py tests/test_prefill_norm_gpu.py; snap
for s in 1 0 1 0 1 0; do env_bench ttft_$s b 50 CUGRAPHLLM_QKV_ATTN=$s --preset llama-2-7b --lengths 10,16 --ttft-reps 20; done
snap; echo "total $(( $(date +%s) - T0 )) s"
