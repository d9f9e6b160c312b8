#!/bin/bash
# Twenty-ninth session, s37b (nvidia-h200, ~5 min): what the decode attention's key-split combine and key walk cost
# inside the 7B fp16 decode step at 3900 cached tokens (#13: 3.79-3.80 ms/token against 3.75, read floor 3.66).
# One bench process a variant, alternating: default, ko=1 (partials written, no ticket / combine: output wrong by
# design), ko=2 (no key walk: no K/V read), ko=3 (neither), default.
source scripts/device_lib.sh s37b
LIMIT=${LIMIT:-540}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
for v in - ko=1 ko=2 ko=3 - ko=1; do
  attn_bench k_$(( $(date +%s) - T0 )) 80 0 $v $E2E --preset llama-2-7b --lengths 3900; done
snap; echo "total $(( $(date +%s) - T0 )) s"
