#!/bin/bash
# Twenty-sixth session, call e (nvidia-h200, ~5 min): standing figures on this tree, one process each: 7B fp16 at
# prompt 10 / 128 / 500 / 3900 (128 new tokens, 3 runs, 20 TTFT samples a length), 13B fp16 at 3900 (7 key splits
# again), 7B fp8 / int8 at 10 / 500.
source scripts/device_lib.sh s34e
LIMIT=${LIMIT:-420}
nvidia-smi -L
B="--backend cuda --modes hybrid --warmup 1 --no-plot --out $L/bench"
run_bench fp16_7b 150 --preset llama-2-7b --lengths 10,128,500,3900 --new-tokens 128 --reps 3 --ttft-reps 20; snap
run_bench fp16_13b 90 --preset llama-2-13b --lengths 3900 --new-tokens 64 --reps 2 --ttft-reps 1; snap
for q in fp8 int8; do
  run_bench ${q}_7b 70 --preset llama-2-7b --quant $q --lengths 10,500 --new-tokens 64 --reps 2 --ttft-reps 5; done
snap; echo "total $(( $(date +%s) - T0 )) s"
