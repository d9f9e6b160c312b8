#!/bin/bash
# Twenty-ninth session, s37d (nvidia-h200, ~2 min): the decode attention's split-K grid size at 3900 cached tokens
# (7B fp16; 4096-key bucket: BPS 2 = 8 splits / 256 blocks, the default; 3 = 11 splits / 352; 4 = 16 / 512), with
# 8 and 4 warps a block, one bench process a variant, alternating with the default.
source scripts/device_lib.sh s37d
LIMIT=${LIMIT:-400}
E2E="--backend cuda --modes hybrid --new-tokens 128 --reps 3 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
for v in "2 -" "3 -" "4 -" "3 n_warps=4" "2 -" "4 n_warps=4" "3 -" "4 -" "2 -"; do
  attn_bench b_$(( $(date +%s) - T0 )) 60 $v $E2E --preset llama-2-7b --lengths 3900; done
snap; echo "total $(( $(date +%s) - T0 )) s"
