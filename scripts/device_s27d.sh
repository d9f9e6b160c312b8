#!/bin/bash
# Record of the call on 0d069a3 (the QG_XBATCH change, reverted after it: no gain).
# Nineteenth session, call 4 (nvidia-h200): 8-warp int4 tiles staging 4 activation chunks at a time
# (QG_XBATCH; CUGRAPHLLM_QG_XBATCH=0 as before): the quantized GEMV GPU tests, 13B int4 knockouts (whole kernel,
# prologue out) under each, and 13B int4 decode A/B end to end, one process each.
source scripts/device_lib.sh s27d
LIMIT=540
nvidia-smi -L
t quant_gemv 170 -rfE --tb=short -n 6 tests/test_quant_gpu.py -k "int4"; snap
for xb in 1 0; do
  fits 60 "ko xb $xb" && CUGRAPHLLM_QG_XBATCH=$xb timeout 90 python3 -m scripts.quant_knockout --preset llama-2-13b \
    --formats int4 --kos 0,1 --jobs 12 --out $L/ko13_xb$xb.json > $L/ko13_xb$xb.log 2>&1
  echo "=== ko 13b xbatch $xb rc $?"; tail -n 5 $L/ko13_xb$xb.log
done; snap
for xb in 1 0 1; do
  env_bench e2e_13b_int4_xb$xb 13b_int4_xb$xb 80 CUGRAPHLLM_QG_XBATCH=$xb --preset llama-2-13b --quant int4 \
    --prompt-lens 10,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
