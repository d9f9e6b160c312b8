#!/bin/bash
# Record: gemv16_plan_bench.py / attn_plan_bench.py, which this names, are scripts/plan_bench.py gemv16 / attn since 2026-12-01.
# Fourteenth session, call 14 (nvidia-h200, < 3 min): wo's launch config, confirmation: default / (16, 1, 4) /
# (8, 1, 4), three rounds, one process each, 7B fp16 at prompt 10 and 500 (s22m: 3.31 / 3.29 / 3.29 at 10).
source scripts/device_lib.sh s22n
LIMIT=${LIMIT:-170}
E2E="--backend cuda --modes hybrid --new-tokens 128 --reps 3 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
W=gemv_residual_ss:4096:2048
for r in 1 2 3; do for c in - 16:1:4 8:1:4; do
  fits 20 "r$r $c" || break
  s=wo_${r}_${c//:/}; timeout 20 python3 -m scripts.gemv16_plan_bench "$([ $c = - ] && echo - || echo $W=$c)" $E2E \
    --preset llama-2-7b --lengths 10,500 --stem $s > $L/$s.log 2>&1
  tpot $? "$s" "$c"
done; done; snap
