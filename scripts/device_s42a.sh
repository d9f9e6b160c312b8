#!/bin/bash
# Thirty-fourth session, call s42a (nvidia-h200, ~8 min). bis/main: HEAD 4c06c89 (git archive cugraphllm kernels
# setup.cfg + scripts/{__init__,turn_ttft,prefill_drift,bench_attention_prefill,bench_attention}.py); "." the tree
# with (a) the prefill attention's split ticket handed out by __syncthreads_or (s41h's probe 2, PTX identical to it),
# (b) kernels/fp8_actq.cu's two row kernels through one quant_row template (PTX differs: same bits expected).
# 1) GPU tests of both in "."; 2) the prefill attention alone in both trees; 3) 7B fp8 GPU prefill of 500 tokens
# from idle, both trees alternating, 2 rounds; 4) chat-turn TTFT in both trees, 2 rounds.
source scripts/device_lib.sh s42a
LIMIT=${LIMIT:-560}
t prefill 120 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py
t fp8 120 -n 4 -rfE --tb=short tests/test_fp8_actq_gpu.py tests/test_quant_prefill_gpu.py -k fp8; snap
attn_prefill_ab . attn_new 45; attn_prefill_ab bis/main attn_old 45; snap
for r in 1 2; do for tree in bis/main .; do s=pf_${r}_$([ $tree = . ] && echo new || echo old)
  fits 45 $s || continue
  (cd $tree && timeout 90 python3 -m scripts.prefill_drift --quant fp8 --length 500 --samples 20 --gap-ms 100 \
    --out $L/$s.json > $L/$s.log 2>&1)
  echo "=== $s rc $?: $(python3 -c "import json; d=json.load(open('$L/$s.json')); print(d['median_all'], d['series'][:6])" 2>&1)"
done; done; snap
for r in 1 2; do turn_ab . turn_new_$r 45; turn_ab bis/main turn_old_$r 45; done; snap
