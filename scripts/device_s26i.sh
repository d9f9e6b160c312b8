#!/bin/bash
# Eighteenth session, call 9 (nvidia-h200): the revised int4 wgmma tile rule (256-token tiles and the producer
# warpgroup from 512 rows on for wqkv / w13, from 129 for wo / w2): the int4 prefill + engine GPU tests, and 7B int4
# bench with the rule new / old / new (CUGRAPHLLM_W4_TILES), one process each.
source scripts/device_lib.sh s26i
nvidia-smi -L
t quant_int4 170 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py -k int4; snap
for v in 1 0 1; do
  env_bench bench_rule$v int4_rule$v 80 CUGRAPHLLM_W4_TILES=$v --preset llama-2-7b --quant int4 \
    --prompt-lens 10,128,256,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
