#!/bin/bash
# Twenty-ninth session, s37e (nvidia-h200, ~4 min): standing figures on this tree, one process each: 7B fp16 at
# prompt 10 / 128 / 500 (128 new tokens, 3 runs, 20 TTFT samples a length), 7B int4 / fp8 / int8 and 13B int4 at
# 10 / 500 (64 new tokens, 2 runs, 5 TTFT samples).
source scripts/device_lib.sh s37e
LIMIT=${LIMIT:-400}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv
B="--backend cuda --modes hybrid --warmup 1 --no-plot --out $L/bench"
run_bench fp16_7b 120 --preset llama-2-7b --lengths 10,128,500 --new-tokens 128 --reps 3 --ttft-reps 20; snap
for q in int4 fp8 int8; do
  run_bench ${q}_7b 70 --preset llama-2-7b --quant $q --lengths 10,500 --new-tokens 64 --reps 2 --ttft-reps 5; done
run_bench int4_13b 90 --preset llama-2-13b --quant int4 --lengths 10,500 --new-tokens 64 --reps 2 --ttft-reps 5
snap; echo "total $(( $(date +%s) - T0 )) s"
