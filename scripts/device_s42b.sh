#!/bin/bash
# Thirty-fourth session, call s42b (nvidia-h200, ~8 min). bis/main: HEAD 347afde (git archive cugraphllm kernels
# setup.cfg + scripts/{__init__,bench_sampler,bench_kernels,bench_attention}.py); "." the tree with the grid tickets
# of the v3 sampler's draw and of the decode attention's key-split combine handed out by __syncthreads_or /
# cuda.syncthreads_or (no shared word, one barrier), as the prefill attention's split entry since c2878c9.
# Result: no change in either (not taken; the two edits: tickets read by __syncthreads_or(mine) / cuda.syncthreads_or(last)
# in place of the shared word and second barrier, sampling_v3.cuh and gpu/decode_combine.py).
# 1) decode attention GPU tests (serial) and sampler GPU tests in "."; 2) bench_sampler (v3 only) and bench_attention
# (default plans, --lengths) in both trees, 2 rounds; 3) 7B fp16 decode at prompt 3900 in both trees, 2 rounds.
source scripts/device_lib.sh s42b
LIMIT=${LIMIT:-560}
t attn 150 -n 0 -rfE --tb=short tests/test_attention_gpu.py
t sampler 90 -n 4 -rfE --tb=short tests/test_sampling_gpu.py tests/test_sampling_v2_gpu.py tests/test_sampling_v3_gpu.py \
  tests/test_decode_graph_gpu.py; snap
for r in 1 2; do for tree in bis/main .; do s=$([ $tree = . ] && echo new || echo old)_$r
  fits 40 smp_$s && (cd $tree && timeout 40 python3 -m scripts.bench_sampler --samplers new --out $L/smp_$s.json \
    > $L/smp_$s.log 2>&1; echo "=== smp_$s rc $?: $(python3 -c "import json; print(' '.join(f\"{r['V']}/{r['logits']}/{r['case']}:{r['us']:.2f}\"
    for r in json.load(open('$L/smp_$s.json'))['rows']))" 2>&1 | tail -1)")
  fits 60 attn_$s && (cd $tree && timeout 60 python3 -m scripts.bench_attention --no-variants --out $L/attn_$s.json \
    > $L/attn_$s.log 2>&1; echo "=== attn_$s rc $?"; python3 -m scripts.bench_attention --summary $L/attn_$s.json)
done; snap; done
B="--backend cuda --preset llama-2-7b --modes hybrid --lengths 3900 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 2 --no-plot --out $L/bench"
for r in 1 2; do for tree in bis/main .; do s=d3900_$([ $tree = . ] && echo new || echo old)_$r
  fits 60 $s && (cd $tree && timeout 60 python3 -m cugraphllm bench $B --stem $s > $L/$s.log 2>&1; echo "=== $s rc $?"
    bench_rows $L/$s.log)
done; done; snap
