#!/bin/bash
# Record: needs the tree of 62ef9f6 (in main's history, reverted by e19da68); the code it measures was not merged
# (benchmarks/results/twentythird_2026-12-02/s31b). Twenty-third session, call b (nvidia-h200): the fused
# short-prefill attention (gpu/qkv_attn.py). 1) its GPU tests, then the engine / prefill / gemm / attention tests
# with it on (the default); 2) 7B fp16 16-row prefill graphs, fused (default) vs qkv_attn.ENABLED=False,
# interleaved; 3) bench TTFT at 10 tokens under CUGRAPHLLM_QKV_ATTN=1 / 0.
source scripts/device_lib.sh s31b
nvidia-smi -L
t qattn 200 -n 8 -rfE --tb=short tests/test_qkv_attn_gpu.py; snap
t rest 200 -n 10 -rfE --tb=short tests/test_engine_gpu.py tests/test_prefill_norm_gpu.py tests/test_decode_graph_gpu.py \
  tests/test_attention_prefill_gpu.py tests/test_prefill_rows_gpu.py; snap
Q=qkv_attn.ENABLED
timeout 150 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16 --reps 30 --rounds 5 --random \
  --order "tune1,tune1;$Q=False,tune1,tune1;$Q=False,tune1" --out $L/ab_qattn.json > $L/ab_qattn.log 2>&1
echo "=== ab qattn rc $?"; grep setting $L/ab_qattn.log | cut -c1-200; grep -E "Error|Trace" $L/ab_qattn.log | head; snap
for s in 1 0 1 0; do env_bench ttft_$s b 60 CUGRAPHLLM_QKV_ATTN=$s --preset llama-2-7b --lengths 10 --ttft-reps 20; done
snap; echo "total $(( $(date +%s) - T0 )) s"
