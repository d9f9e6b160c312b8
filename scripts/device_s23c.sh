#!/bin/bash
# Fifteenth session, call 3 (nvidia-h200-x2, < 8 min): the decode attention default "early 2, cluster 2" (loads
# before the PDL wait and the cluster combine, both only on key-split plans of one wave) against both off, one
# process each, alternating: GPU 0 7B fp16 at prompt 500 / 2000 while GPU 1 runs the attention GPU tests; then 7B
# TP2 at prompt 128 / 500 / 2000.
source scripts/device_lib.sh s23c
LIMIT=${LIMIT:-500}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
( export CUDA_VISIBLE_DEVICES=1; t attn 240 -rfE --tb=short tests/test_attention_gpu.py ) &
P=$!
for r in 1 2 3; do for v in - early=0,cluster=0; do
  CUDA_VISIBLE_DEVICES=0 attn_bench one_${r}_${v//[=,]/} 50 0 $v $E2E --preset llama-2-7b --lengths 500,2000; done; done
wait $P; snap
for r in 1 2 3; do for v in - early=0,cluster=0; do
  attn_bench tp2_${r}_${v//[=,]/} 50 0 $v $E2E --preset llama-2-7b --lengths 128,500,2000 --tp 2; done; done; snap
echo "total $(( $(date +%s) - T0 )) s"
