#!/bin/bash
# Twenty-ninth session, s37j (nvidia-h200, ~1.5 min): bench's new --idle-ms on 7B fp16 and int8 at prompt 10 / 128 /
# 500 (30 TTFT samples a length, 8 new tokens), 100 ms idle before each timed run against back to back, one process
# each, alternating.
source scripts/device_lib.sh s37j
B="--backend cuda --modes hybrid --preset llama-2-7b --lengths 10,128,500 --new-tokens 8 --reps 2 --warmup 1 --ttft-reps 30 --no-plot --out $L/bench"
for v in "fp16 0" "fp16 100" "int8 0" "int8 100"; do
  set -- $v; s=$1_idle$2; Q=""; [ $1 = fp16 ] || Q="--quant $1"
  timeout 80 python3 -m cugraphllm bench $B $Q --idle-ms $2 --stem $s > $L/$s.log 2>&1
  echo "=== $s rc $?: $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9.]+ / ' $L/$s.log | cut -d'|' -f3,4 | tr '\n' ' ')"
  grep -E "Error|Traceback" $L/$s.log | head -3
done
snap
