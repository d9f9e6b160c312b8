#!/bin/bash
# Prepared for the next session (nvidia-h200, ~8 min): what device_s33d.sh could not do. The decode attention as
# committed in the twenty-fifth session (ticket combine with its loads at once and thread 0's fences, early loads on
# every key-split plan, key splits capped at one wave) against the float64 reference, then the engine tests, one
# pytest at a time (s33d's two concurrent `-n 4` sessions never got past starting their workers); then decode A/B
# one process each: 13B fp16 at 3900 (6 splits, the new cap, vs 7), 7B fp16 at 1000 / 2000 / 3900 (default vs the
# old early rule 2), 70B int4 at 2000 / 3900 (default vs early 2).
source scripts/device_lib.sh next_attn
LIMIT=${LIMIT:-540}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
t attn 180 -rfE --tb=short tests/test_attention_gpu.py; snap
t engine 150 -rfE --tb=short tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_pdl_gpu.py; snap
for v in "0:-" "0:n_split=7" "0:-" "0:n_split=7"; do
  attn_bench p13_$(( $(date +%s) - T0 )) 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-13b --lengths 3900; done; snap
for v in "0:-" "0:early=2"; do
  attn_bench p7_$(( $(date +%s) - T0 )) 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 1000,2000,3900; done
for v in "0:-" "0:early=2"; do
  attn_bench p70_$(( $(date +%s) - T0 )) 120 ${v%%:*} ${v#*:} $E2E --preset llama-2-70b --quant int4 --lengths 2000,3900; done
echo "total $(( $(date +%s) - T0 )) s"
