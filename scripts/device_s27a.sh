#!/bin/bash
# Nineteenth session, call 1 (nvidia-h200): the wgmma kernel's K split summed serially (split z adds
# its partial after split z - 1, no workspace: CUGRAPHLLM_W4_SPLIT_SUM=serial) against the default park and the
# atomics, in one call: the probe (checks with bitwise repeats, wo / w2 at 128 / 512 rows), the int4 + int8 prefill
# and engine GPU tests under serial, and 7B int4 / int8 bench under each setting, one process each.
source scripts/device_lib.sh s27a
LIMIT=500
nvidia-smi -L
for how in serial park; do
  CUGRAPHLLM_W4_SPLIT_SUM=$how timeout 60 python3 -m scripts.w4_wgmma_probe --rows 512,128 --splits 1 \
    --configs auto --mats wo,w2 --out $L/w4_$how.json > $L/w4_$how.log 2>&1
  echo "=== probe $how rc $?"; grep -h -E '"mat"|error|config|differ' $L/w4_$how.log | cut -c1-300
done; snap
CUGRAPHLLM_W4_SPLIT_SUM=serial t quant_serial 150 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py \
  tests/test_quant_engine_gpu.py -k "int4 or int8"; snap
for how in serial park atomic serial; do
  env_bench bench_int8_$how int8_$how 45 CUGRAPHLLM_W4_SPLIT_SUM=$how --preset llama-2-7b --quant int8 \
    --prompt-lens 128,500
done; snap
env_bench bench_int4_serial int4_serial 45 CUGRAPHLLM_W4_SPLIT_SUM=serial --preset llama-2-7b --quant int4 \
  --prompt-lens 128,500; snap
echo "total $(( $(date +%s) - T0 )) s"
