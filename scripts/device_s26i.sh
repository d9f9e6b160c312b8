#!/bin/bash
# Eighteenth session, call 9 (nvidia-h200): the revised int4 wgmma tile rule (256-token tiles and the producer
# warpgroup from 512 rows on for wqkv / w13, from 129 for wo / w2): the int4 prefill + engine GPU tests, and 7B int4
# bench with the rule new / old / new (CUGRAPHLLM_W4_TILES), one process each.
source scripts/device_lib.sh s26i
nvidia-smi -L
t quant_int4 170 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py -k int4; snap
B="--backend cuda --preset llama-2-7b --quant int4 --modes hybrid --prompt-lens 10,128,256,500 --new-tokens 32 --reps 2 --warmup 1 --ttft-reps 5 --no-plot --out $L/bench"
for v in 1 0 1; do
  fits 80 "bench rule=$v" || break
  CUGRAPHLLM_W4_TILES=$v timeout 80 python3 -m cugraphllm bench $B --stem int4_rule${v}_$(( $(date +%s) - T0 )) > $L/bench_rule$v.log 2>&1
  echo "=== rule=$v rc $?"; grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+' $L/bench_rule$v.log | cut -d'|' -f3,5,6,7 | tr '\n' ' '; echo
  grep -E "Error|Traceback" $L/bench_rule$v.log | head -3
done; snap
echo "total $(( $(date +%s) - T0 )) s"
