#!/bin/bash
# Thirtieth session, s38d (nvidia-h200, ~2 min): where the 7B fp16 prefill graphs spend their time from idle, with
# the knockouts as fixed this session (ko:norm on the binding the prefill norms call; ko:epi, the stand-alone
# epilogues after cuBLAS), token 0 and random ids (--random), 100 ms idle before each timed replay; and the GEMM tuner
# timing 32 cuBLASLt heuristic algorithms a shape instead of 8.
source scripts/device_lib.sh s38d
timeout 240 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,128,512 --reps 10 --rounds 2 --gap-ms 100 \
  --random --order "tune1,tune1;ko:gemm,tune1;ko:attn,tune1;ko:norm,tune1;ko:epi,tune1;ko:norm;ko:epi,tune1;gemm_tune.TUNE_ALGOS=32,tune1" \
  --out $L/anatomy.json > $L/anatomy.log 2>&1
echo "=== anatomy rc $?"; grep -E "prefill_ms" $L/anatomy.log | cut -c1-330; grep -E "Error|Trace" $L/anatomy.log | head
snap
