#!/bin/bash
# Fifteenth session, call 1 (nvidia-h200-x2, < 9 min): decode attention loading its first trip's K/V rows (those
# below the step's own row) before the PDL wait (DECODE_KNOBS early). GPU 1: its GPU tests (attention, decode graphs,
# engine: the step's own row read after the wait) while GPU 0 runs 7B fp16 decode at prompt 10 / 500 with early
# 1 / 0, one process each, alternating; then 7B TP2 at prompt 128 / 500, early 1 / 0.
source scripts/device_lib.sh s23a
LIMIT=${LIMIT:-520}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
( export CUDA_VISIBLE_DEVICES=1
  t attn 200 -rfE --tb=short tests/test_attention_gpu.py
  t graphs 150 -rfE --tb=short tests/test_decode_graph_gpu.py tests/test_engine_gpu.py ) &
P=$!
i=0; for v in early=1 early=0 early=1 early=0 early=1 early=0; do i=$((i+1))
  CUDA_VISIBLE_DEVICES=0 attn_bench one_${i}_${v#early=} 50 0 $v $E2E --preset llama-2-7b --lengths 10,500; done
wait $P; snap
i=0; for v in early=1 early=0 early=1 early=0; do i=$((i+1))
  attn_bench tp2_${i}_${v#early=} 60 0 $v $E2E --preset llama-2-7b --lengths 128,500 --tp 2; done; snap
echo "total $(( $(date +%s) - T0 )) s"
