#!/bin/bash
# Thirty-first session, s39c (nvidia-h200, ~6 min): standing figures on main after the RMSNorm register rows, and
# where the decode's inter-token tail comes from. 1) scripts/itl_drift (every interval kept in its JSON): 7B fp16
# decode alone (4 runs of 128 tokens after a 10-token prompt, 0.5 s apart), then each run after 20 prefills of
# 500 tokens; 2) bench --paper (hybrid, 7B fp16, 128 new tokens, 3 runs, 100 TTFT samples a length); 3) bench at
# 10 / 128 / 500 with --idle-ms 100; 4) 7B fp8 / int8 / int4 at 10 / 500 (64 new tokens, 2 runs, 5 TTFT samples).
LIMIT=${LIMIT:-540}
source scripts/device_lib.sh s39c
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem,power.limit --format=csv,noheader
timeout 90 python3 -m scripts.itl_drift --runs 4 --out $L/itl_alone.json > $L/itl_alone.log 2>&1
echo "=== itl alone rc $?"; cut -c1-200 $L/itl_alone.log | grep -v "^\[" | head -6
timeout 90 python3 -m scripts.itl_drift --runs 3 --prefills 20 --out $L/itl_pf20.json > $L/itl_pf20.log 2>&1
echo "=== itl after 20 prefills rc $?"; cut -c1-200 $L/itl_pf20.log | grep -v "^\[" | head -8; snap
B="--backend cuda --preset llama-2-7b --modes hybrid --no-plot --out $L/bench"
run_bench paper 150 --paper --new-tokens 128 --reps 3; snap
run_bench idle100 80 --lengths 10,128,500 --new-tokens 128 --reps 3 --ttft-reps 20 --idle-ms 100; snap
for q in fp8 int8 int4; do run_bench $q 60 --quant $q --lengths 10,500 --new-tokens 64 --reps 2 --ttft-reps 5; done; snap
# 5) the tensor-core prefill attention alone (graphs of 32 layer launches, keys past L2): 512 / 2048-row chunks at
#    the positions of a 3900-token prompt, and the paper lengths' buckets from position 0
fits 60 attn && { timeout 60 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,1024,1852,2048 \
  --buckets 16,128,512,2048 --out $L/attn_prefill.json > $L/attn_prefill.log 2>&1
  echo "=== attn prefill rc $?"; grep -o '"M": [0-9]*, "pos": [0-9]*, "ours_ms_32_layers": [0-9.]*\|"ours_TFLOPs": [0-9.]*' \
    $L/attn_prefill.log | paste - - | cut -c1-120; snap; }
