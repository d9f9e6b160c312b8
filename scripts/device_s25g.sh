#!/bin/bash
# Seventeenth session, call 8 (nvidia-h200): the final code: scripts/w4_wgmma_probe.py, now timing the engine's
# kernel (gemm_w4.run) under auto and explicit tile configs, and the int4 fp16 quantized prefill GPU tests.
source scripts/device_lib.sh s25g
nvidia-smi -L
t quant_int4 150 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py -k "int4"; snap
timeout 240 python3 -m scripts.w4_wgmma_probe --configs auto,wg2:bt128,wg3:bt128 --splits 1,2 --rows 512,128 \
  --out $L/w4_probe.json > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-500 $L/w4_probe.log | tail -11; snap
echo "total $(( $(date +%s) - T0 )) s"
