#!/bin/bash
# Thirteenth session, call 7 (nvidia-h200, < 6 min): bench_quant --sweep fp8h (half2 products, 16 warps, K over 2
# warps a pair) for fp8 and int8, then 7B decode A/B, one process each.
source scripts/device_lib.sh fp8h
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
ab() { fits $3 "e2e $1 $2" || return; plan_bench e2e_7b_$1_$(( $(date +%s) - T0 )) $3 $1 "$2" $E2E --preset llama-2-7b --quant $1 --lengths 10,500; }
for f in fp8 int8; do
  timeout 100 python3 -m scripts.bench_quant --formats $f --sweep fp8h --no-table --out $L/bench/sweep_fp8h_$f.json \
    > $L/sweep_$f.log 2>&1; echo "=== sweep $f rc $?"; grep "^sweep" $L/sweep_$f.log | sed 's/^sweep //'; snap
done
for v in "pipe=1" "hacc=1, ksplit=2" "hacc=1, pipe=0, ksplit=2" "hacc=1" "pipe=1"; do ab fp8 "$v" 45; done; snap
for v in "hacc=1" "ksplit=2" "pipe=1, ksplit=2" "hacc=1"; do ab int8 "$v" 45; done; snap
echo "total $(( $(date +%s) - T0 )) s"
