#!/bin/bash
# Record: gemv16_plan_bench.py / attn_plan_bench.py, which this names, are scripts/plan_bench.py gemv16 / attn since 2026-12-01.
# Fourteenth session, call 13 (nvidia-h200, < 5 min): 7B fp16 decode at prompt 10 with other launch configs for
# wo (gemv_residual_ss, K 4096, 2048 pairs; today the residual rule's 8 warps, unroll 2, 2 warps a pair: 9.55 us
# a call in the step against 7.9 for its bytes, s22l), one process each (scripts/gemv16_plan_bench.py).
source scripts/device_lib.sh s22m
LIMIT=${LIMIT:-250}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
g16() {  # stem shapes
  fits 30 "$1" || return
  timeout 30 python3 -m scripts.gemv16_plan_bench "$2" $E2E --preset llama-2-7b --lengths 10 --stem $1 > $L/$1.log 2>&1
  tpot $? "$1" "$2"
}
W=gemv_residual_ss:4096:2048
i=0; for c in - 16:2:8 8:1:4 8:2:4 16:1:4 16:2:4 8:1:8 32:1:16 -; do i=$((i+1))
  g16 wo_$i "$([ $c = - ] && echo - || echo $W=$c)"; done; snap
echo "total $(( $(date +%s) - T0 )) s"
