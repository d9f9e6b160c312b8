#!/bin/bash
# Twenty-sixth session, call b (nvidia-h200, ~7 min): decode A/B of the attention plan's switches, one process each,
# alternating: 7B fp16 at prompt 10 / 100 / 200 (buckets 64 / 128 / 256 keys, unsplit) with early=4 (early loads
# on the unsplit buckets of <= 128 keys too) against the default (3: key-split plans only); 13B fp16 at 3900 with
# the old 7 splits against the one-wave cap's 6; 7B fp16 at 1000 / 2000 / 3900 with early=2 against the default.
source scripts/device_lib.sh s34b
LIMIT=${LIMIT:-560}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
for v in "0:-" "0:early=4" "0:-" "0:early=4" "0:-" "0:early=4"; do
  attn_bench p7s_$(( $(date +%s) - T0 )) 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 10,100,200; done; snap
for v in "0:-" "0:n_split=7" "0:-" "0:n_split=7"; do
  attn_bench p13_$(( $(date +%s) - T0 )) 70 ${v%%:*} ${v#*:} $E2E --preset llama-2-13b --lengths 3900; done; snap
for v in "0:-" "0:early=2" "0:-" "0:early=2"; do
  attn_bench p7l_$(( $(date +%s) - T0 )) 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 1000,2000,3900; done
snap; echo "total $(( $(date +%s) - T0 )) s"
