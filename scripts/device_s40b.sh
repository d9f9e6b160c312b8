#!/bin/bash
# Thirty-second session, s40b (nvidia-h200, ~6 min): the 256-key decode bucket. Decode alone (s39c itl_alone) steps
# from 3.30 to 3.36-3.37 ms a token exactly where the keys pass 128 (the 128 bucket: one trip, early loads; the 256
# bucket: two trips of 128 keys, no early loads, bench_attention 5.56 us a launch at 256 keys against 5.16 for
# the 512 bucket's 4-way key split). 1) bench_attention: the default plans beside short1 (a 2-way key split at 256
# keys: cluster combine, early loads), unroll16 and unroll16_early (one 256-key trip); 2) 7B fp16 decode at prompts
# 130 / 200 (64 new tokens: all in the 256 bucket), short_iters=1 (only the 256 bucket changes) against the default,
# one process each, alternating, 3 rounds; 3) the 1024-key bucket (8 splits of 128 keys, ticket combine, 9.39 us
# a launch at 1024 keys, of which the combine 2.5): blocks_per_sm 1 (4 splits of 256, cluster combine) at prompt
# 520, 2 rounds; 4) 13B at prompt 130 as 2), one round.
source scripts/device_lib.sh s40b
LIMIT=${LIMIT:-540}
attn_variants attn256 150 short1,unroll16,unroll16_early,bps1
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 3 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
for r in 1 2 3; do for v in "0 -" "0 short_iters=1"; do
  attn_bench b7_$(( $(date +%s) - T0 )) 50 $v $E2E --preset llama-2-7b --lengths 130,200; done; done; snap
for r in 1 2; do for v in "2 -" "1 -"; do
  attn_bench b1k_$(( $(date +%s) - T0 )) 50 $v $E2E --preset llama-2-7b --lengths 520; done; done; snap
for r in 1; do for v in "0 -" "0 short_iters=1"; do
  attn_bench b13_$(( $(date +%s) - T0 )) 60 $v $E2E --preset llama-2-13b --lengths 130; done; done
snap; echo "total $(( $(date +%s) - T0 )) s"
