#!/bin/bash
# Twenty-ninth session, s37g (nvidia-h200, ~2 min): SM clock and power while 7B int8 / int4 / fp16 prefill 500-token
# prompts (bench, 30 TTFT samples, 8 new tokens; nvidia-smi sampled every 20 ms beside each process), to see whether
# int8's TTFT at 500 tokens (12.4 ms on 2026-12-01's machines, 14.1-15.8 on today's with every tree since the
# twentieth session: s37f) follows the clock under the 700 W limit.
source scripts/device_lib.sh s37g
LIMIT=${LIMIT:-300}
B="--backend cuda --modes hybrid --preset llama-2-7b --lengths 500 --new-tokens 8 --reps 1 --warmup 1 --ttft-reps 30 --no-plot --out $L/bench"
for q in int8 fp16 int4 int8; do
  s=${q}_$(( $(date +%s) - T0 ))
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader -lms 20 > $L/$s.smi &
  P=$!
  if [ $q = fp16 ]; then Q=""; else Q="--quant $q"; fi
  timeout 100 python3 -m cugraphllm bench $B $Q --stem $s > $L/$s.log 2>&1
  kill $P
  echo "=== $s: $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+' $L/$s.log | cut -d'|' -f3,5 | tr '\n' ' ')"
  python3 - $L/$s.smi <<'PY'
import sys, statistics as st
rows = [l.split(", ") for l in open(sys.argv[1]) if l.count(",") >= 3]
hot = [(int(r[1].split()[0]), float(r[2].split()[0])) for r in rows if float(r[2].split()[0]) > 400]
if hot:
    print(f"    samples over 400 W: {len(hot)} of {len(rows)}; SM clock median {st.median(c for c, _ in hot)} MHz "
          f"(min {min(c for c, _ in hot)}), power median {st.median(p for _, p in hot):.0f} W")
PY
done
snap; echo "total $(( $(date +%s) - T0 )) s"
