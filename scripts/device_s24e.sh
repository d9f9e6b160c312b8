#!/bin/bash
# Sixteenth session, call 5 (nvidia-h200): long-context decode with the key split fixed at 4 blocks a KV head
# (n_split=4: 128 blocks, one wave at one block an SM, so early loads and the cluster combine turn on) against the
# default plan (8 splits, 256 blocks, ticket combine), one process each, alternating: 7B fp16 at prompt 2000 / 3900.
source scripts/device_lib.sh s24e
LIMIT=${LIMIT:-400}
E2E="--backend cuda --preset llama-2-7b --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
for r in 1 2; do for k in n_split=4 -; do
  attn_bench one_${r}_${k%%=*} 80 0 $k $E2E --lengths 2000,3900; done; done; snap
echo "total $(( $(date +%s) - T0 )) s"
