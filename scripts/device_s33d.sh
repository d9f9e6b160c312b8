#!/bin/bash
# Twenty-fifth session, call d (nvidia-h200): the decode attention as committed (ticket combine with its loads at
# once and thread 0's fences; early loads on every key-split plan, DECODE_KNOBS early 3): every attention GPU test
# and the engine / decode-graph / PDL tests (in parallel), bench_attention (default vs the old early rule, early 2),
# then decode end to end against early 2, one process each, alternating: 7B fp16 at 1000 / 2000 / 3900, 70B int4 at
# 2000 / 3900 (8 KV heads: 256 blocks of 32 splits); early 1 (early loads on the unsplit buckets of <= 256 keys too)
# at 10 / 100 / 200; 13B fp16 at 3900, its 4096 bucket at 6 splits (one wave, the new rule) vs 7 (280 blocks).
source scripts/device_lib.sh s33d
LIMIT=${LIMIT:-200}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
t attn 130 -rfE --tb=short -n 4 tests/test_attention_gpu.py &
t engine 130 -rfE --tb=short -n 4 tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_pdl_gpu.py &
wait; snap
for v in "0:-" "0:n_split=7" "0:-" "0:n_split=7"; do  # 13B's 4096 bucket: 6 splits (one wave) vs 7 (280 blocks)
  attn_bench p13_$(( $(date +%s) - T0 )) 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-13b --lengths 3900; done; snap
attn_variants attention 60 early_wave
for v in "0:-" "0:early=2" "0:-" "0:early=2"; do
  attn_bench p7_$(( $(date +%s) - T0 )) 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 1000,2000,3900; done; snap
for v in "0:-" "0:early=1" "0:-" "0:early=1"; do  # early loads on the short (unsplit) buckets too
  attn_bench ps_$(( $(date +%s) - T0 )) 50 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 10,100,200; done; snap
for v in "0:-" "0:early=2"; do
  attn_bench p70_$(( $(date +%s) - T0 )) 120 ${v%%:*} ${v#*:} $E2E --preset llama-2-70b --quant int4 --lengths 2000,3900; done
echo "total $(( $(date +%s) - T0 )) s"
