#!/bin/bash
# Fifteenth session, call 5 (nvidia-h200-x2, < 7 min): long-context decode with the split-K grid at one block an SM
# (blocks_per_sm 1: one wave, so DECODE_KNOBS early / cluster 2 turn on) against the default 2, one process each,
# alternating: GPU 0 7B fp16 at prompt 2000 / 3900 while GPU 1 runs 13B at prompt 2000; then 7B TP2 at 2000 / 3900.
source scripts/device_lib.sh s23e
LIMIT=${LIMIT:-420}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
( for r in 1 2 3; do for b in 1 0; do
    CUDA_VISIBLE_DEVICES=1 attn_bench b13_${r}_${b} 60 $b - $E2E --preset llama-2-13b --lengths 2000; done; done ) &
P=$!
for r in 1 2 3; do for b in 1 0; do
  CUDA_VISIBLE_DEVICES=0 attn_bench one_${r}_${b} 60 $b - $E2E --preset llama-2-7b --lengths 2000,3900; done; done
wait $P; snap
for r in 1 2; do for b in 1 0; do
  attn_bench tp2_${r}_${b} 60 $b - $E2E --preset llama-2-7b --lengths 2000,3900 --tp 2; done; done; snap
echo "total $(( $(date +%s) - T0 )) s"
