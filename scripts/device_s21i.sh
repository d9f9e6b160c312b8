#!/bin/bash
# Thirteenth session, call 9 (nvidia-h200, < 6 min): 7B decode at prompt 10 under QuantPlan variants, one process
# each (the isolated GEMV sweeps have not predicted the decode step: s21g's hacc=1 saved 1.05 us a layer in
# bench_quant and nothing end to end), fp8 / int8 / int4, the default first and last.
source scripts/device_lib.sh plans
LIMIT=${LIMIT:-330}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
ab() { fits $3 "e2e $1 $2" || return; plan_bench e2e_7b_$1_$(( $(date +%s) - T0 )) $3 $1 "$2" $E2E --preset llama-2-7b --quant $1 --lengths 10; }
for v in "pipe=1" "unroll=4" "unroll=1" "warps=8" "pipe=0" "ksplit=1" "hacc=1, unroll=4" "persist=1" "pipe=1"; do ab fp8 "$v" 30; done; snap
for v in "hacc=1" "unroll=4" "pipe=1" "warps=8" "hacc=1"; do ab int8 "$v" 30; done; snap
for v in "hacc=1" "unroll=4" "unroll=1" "mma_min_pairs=1 << 30, mma_shapes=()" "mma_min_pairs=0" "warps=8" "hacc=1"; do ab int4 "$v" 30; done; snap
echo "total $(( $(date +%s) - T0 )) s"
