#!/bin/bash
# Record: gemv16_plan_bench.py / attn_plan_bench.py, which this names, are scripts/plan_bench.py gemv16 / attn since 2026-12-01.
# Fourteenth session, call 8 (nvidia-h200-x2, < 8 min): decode attention plans on the H200 (the knobs were swept on
# the H100). GPU 1: scripts/bench_attention.py (every bucket, default and VARIANTS, graph-timed) while GPU 0 runs
# 7B fp16 decode at prompt 500 under the same variants, one process each (scripts/attn_plan_bench.py); then 7B TP2
# at prompt 128 / 500 under a few of them.
source scripts/device_lib.sh s22h
LIMIT=${LIMIT:-500}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
( CUDA_VISIBLE_DEVICES=1 timeout 240 python3 -m scripts.bench_attention --out $L/attention.json > $L/attention.log 2>&1
  echo "=== bench_attention rc $?" ) &
P=$!
V="0:- 3:- 4:- 0:unroll=4 0:n_warps=4 0:short_iters=4 0:short_iters=0 0:max_dsplit=4 0:-"
i=0; for v in $V; do i=$((i+1))
  CUDA_VISIBLE_DEVICES=0 attn_bench one_${i} 45 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 500; done
wait $P; tail -5 $L/attention.log; snap
i=0; for v in 0:- 4:- 0:unroll=4 0:n_warps=4 0:-; do i=$((i+1))
  attn_bench tp2_${i} 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 128,500 --tp 2; done; snap
echo "total $(( $(date +%s) - T0 )) s"
