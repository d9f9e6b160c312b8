#!/bin/bash
# Eighteenth session, call 8 (nvidia-h200): the new int4 wgmma tile rule (gpu/gemm_w4.config: 256-token tiles and a
# register-giving producer warpgroup above 128 rows) against the seventeenth session's (CUGRAPHLLM_W4_TILES=0) at
# 256 / 512 rows, the int4 prefill GPU tests under it, and 7B int4 bench (TTFT) with the rule new / old / new.
source scripts/device_lib.sh s26h
nvidia-smi -L
for r in 1; do
  CUGRAPHLLM_W4_TILES=$r timeout 90 python3 -m scripts.w4_wgmma_probe --rows 256,512 --splits 1,2 \
    --configs auto,wg3:bt128,wg2:bt128 --out $L/w4_rule$r.json > $L/w4_rule$r.log 2>&1
  echo "=== rule $r rc $?"; grep -h -E '"mat"|error' $L/w4_rule$r.log | cut -c1-400
done; snap
t quant_int4 170 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py -k int4; snap
for v in 1 0; do
  env_bench bench_rule$v int4_rule$v 80 CUGRAPHLLM_W4_TILES=$v --preset llama-2-7b --quant int4 \
    --prompt-lens 10,128,256,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
