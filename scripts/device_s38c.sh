#!/bin/bash
# Thirtieth session, s38c (nvidia-h200, ~1 min; run inline in the call, recorded here): s38b's 7B fp16 prefill graphs
# from idle (each replay from position 0 after 100 ms) with bench's random prompt ids beside token 0 in every row
# (--random): the 512-row graph's GEMMs take ~9% longer on random ids (the GPU at its power limit).
source scripts/device_lib.sh s38c
timeout 200 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,128,512 --reps 10 --rounds 2 --gap-ms 100 \
  --random --order "tune1,tune1;ko:gemm,tune1;ko:attn,tune1" --out $L/idle_random.json > $L/idle_random.log 2>&1
echo rc $?; grep -E "prefill_ms" $L/idle_random.log | cut -c1-400; grep -E "Error|Trace" $L/idle_random.log | head
snap
