#!/bin/bash
# Eighteenth session, call 11 (nvidia-h200): the wgmma kernel's K split summed in a fixed order (each split parks
# its tile, the last to arrive adds their sum: repeated launches and graph replays agree bit for bit): the int4 +
# int8 quantized prefill and engine GPU tests, 7B int8 and int4 bench, then the probe's checks (bitwise repeats).
# (Ran with CUGRAPHLLM_W4_FIXED_SUM=1, that variable's default, since renamed: CUGRAPHLLM_W4_SPLIT_SUM=park.)
source scripts/device_lib.sh s26k
LIMIT=300
nvidia-smi -L
t quant_int48 150 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py -k "int4 or int8"; snap
for f in int8 int4; do
  env_bench bench_$f $f 45 CUGRAPHLLM_W4_SPLIT_SUM=park --preset llama-2-7b --quant $f --prompt-lens 10,128,500
done; snap
if fits 45 "probe"; then
  timeout 45 python3 -m scripts.w4_wgmma_probe --rows 512,128 --splits 1 --configs auto --mats wo,w2 \
    --out $L/w4_probe.json > $L/w4_probe.log 2>&1
  echo "=== probe rc $?"; grep -h -E '"mat"|error|config|differ' $L/w4_probe.log | cut -c1-300
fi; snap
echo "total $(( $(date +%s) - T0 )) s"
