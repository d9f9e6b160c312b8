#!/bin/bash
# Ninth session, call 5 (nvidia-h200-x2), short, four pytest runs side by side, all under the new fp8 default
# (CUGRAPHLLM_FP8_FUSE_ACTQ=2): A both GPUs: TP quantized tests; B GPU 1: fp8 cuBLASLt + quantized prefill op tests
# (pinned to 0 by their fixture); C GPU 0: quantized tensor-core, engine and load tests; D GPU 0: the two prologue
# variants call 4 did not reach (.device/plg). Logs in $OUT/s17e.tgz.
source scripts/device_lib.sh s17e
t tpq 190 -rfE --tb=short tests/test_tp_gpu.py -k quantized &
PA=$!
CUDA_VISIBLE_DEVICES=1 t fp8 190 -n 6 -rfE --tb=short tests/test_fp8_lt_gpu.py tests/test_quant_prefill_gpu.py &
PB=$!
CUDA_VISIBLE_DEVICES=0 t quant 190 -n 6 -rfE --tb=short tests/test_quant_tc_gpu.py tests/test_quant_engine_gpu.py \
  tests/test_quant_load_gpu.py &
PC=$!
( cd .device/plg && CUDA_VISIBLE_DEVICES=0 t plg2 150 -rA --tb=line tests/test_quant_prologue_tp_gpu.py \
    -k "head-8-warps or wqkv-only-tiles" ) &
PD=$!
wait $PA; wait $PB; wait $PC; wait $PD
grep -E "^(PASSED|FAILED)|AssertionError" $L/plg2.log | head -8
tar -czf "$OUT/s17e.tgz" -C /tmp s17e
