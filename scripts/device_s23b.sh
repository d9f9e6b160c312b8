#!/bin/bash
# Fifteenth session, call 2 (nvidia-h200-x2, < 9 min): decode attention's key splits combined in a thread block
# cluster through distributed shared memory (DECODE_KNOBS cluster, decode_combine.py) against the atomic ticket, and
# the early K/V loads now triggering wo's launch before reading pos. GPU 1: attention GPU tests (cluster / ticket /
# early plans), decode graphs, engine; GPU 0: 7B fp16 decode at prompt 500 / 2000 under cluster 1 / 0 and early 1,
# one process each, alternating; then 7B TP2 at prompt 128 / 500 under the same three.
source scripts/device_lib.sh s23b
LIMIT=${LIMIT:-530}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
( export CUDA_VISIBLE_DEVICES=1
  t attn 240 -rfE --tb=short tests/test_attention_gpu.py
  t graphs 150 -rfE --tb=short tests/test_decode_graph_gpu.py tests/test_engine_gpu.py ) &
P=$!
V="cluster=1 cluster=0 cluster=1,early=1"
for r in 1 2; do for v in $V; do
  CUDA_VISIBLE_DEVICES=0 attn_bench one_${r}_${v//[=,]/} 55 0 $v $E2E --preset llama-2-7b --lengths 500,2000; done; done
wait $P; snap
for r in 1 2; do for v in $V; do
  attn_bench tp2_${r}_${v//[=,]/} 50 0 $v $E2E --preset llama-2-7b --lengths 128,500 --tp 2; done; done; snap
echo "total $(( $(date +%s) - T0 )) s"
