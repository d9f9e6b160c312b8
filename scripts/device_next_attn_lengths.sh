#!/bin/bash
# Prepared in the thirty-second session, run in the thirty-third (thirtythird_2026-12-03/next_attn_lengths/): the
# decode attention's cost at the key
# counts decode actually runs at, each in its bucket (bench_attention --lengths; until now only the buckets' full
# lengths were timed): after a 500-token prompt decode runs 520-600 keys in the 1024-key bucket (8 splits of 128
# keys, ticket combine), a plan sized for 1024. Default plans beside
# unroll16_early (one 256-key trip a block, early loads), unroll4 (more, shorter splits) and bps3 (more blocks).
# Then 7B decode at prompt 130 (64 new tokens: every step in the 256-key bucket, so the global knobs change only
# that bucket's plan), the default (2-way key split, 3.84 us a launch in s40b) against unroll=16,early=1 (one trip,
# 3.59 us), one process each, alternating, 2 rounds; compare the first runs' median intervals (bench JSON samples).
source scripts/device_lib.sh next_attn_lengths
LIMIT=${LIMIT:-420}
fits 240 attn && { timeout 240 python3 -m scripts.bench_attention --no-variants --lengths \
  64,128,129,192,256,257,384,512,513,600,768,1024,1025,1500,2048,3900 --out $L/attn_default.json \
  > $L/attn_default.log 2>&1; echo "=== default rc $?"
  python3 -m scripts.bench_attention --summary $L/attn_default.json; snap; }
fits 200 variants && { timeout 200 python3 -m scripts.bench_attention --variants unroll16_early,unroll4,bps3 \
  --lengths 129,256,513,600,1025,2048,3900 --out $L/attn_var.json > $L/attn_var.log 2>&1
  echo "=== variants rc $?"; python3 -m scripts.bench_attention --summary $L/attn_var.json; snap; }
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 3 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
for r in 1 2; do for v in "0 -" "0 unroll=16,early=1"; do
  attn_bench b7_$(( $(date +%s) - T0 )) 50 $v $E2E --preset llama-2-7b --lengths 130; done; done; snap
