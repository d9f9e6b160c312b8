#!/bin/bash
# Eighteenth session, call 10 (nvidia-h200): int8 prefill on the wgmma kernel (FMT 8: exact integers in the A
# fragments, the row scale in the epilogue): the probe (checks against NumPy float64, 7B shapes at 512 / 128 rows),
# the int4 + int8 quantized prefill and engine GPU tests, and 7B int8 bench with the path on / off / on.
source scripts/device_lib.sh s26j
nvidia-smi -L
timeout 100 python3 -m scripts.w4_wgmma_probe --fmt int8 --rows 512,128 --splits 1 --configs auto,wg3:bt128 \
  --out $L/w8_probe.json > $L/w8_probe.log 2>&1
echo "=== probe rc $?"; grep -h -E '"mat"|error|config' $L/w8_probe.log | cut -c1-330; snap
t quant_int48 200 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py -k "int4 or int8"; snap
for v in 1 0 1; do
  env_bench bench_wg$v int8_wg$v 75 CUGRAPHLLM_W4_WGMMA=$v --preset llama-2-7b --quant int8 --prompt-lens 10,128,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
