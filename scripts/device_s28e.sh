#!/bin/bash
# Twentieth session, call e (nvidia-h200): the tile-contiguous layout's GPU tests again (the residual test's fixed
# copy of x), then int4 / int8 prefill on the wgmma path at small row counts too (CUGRAPHLLM_W4_SMALL 1 / 0, one
# process each) on 7B: TTFT at 10 / 128 / 500
source scripts/device_lib.sh s28e
LIMIT=570
nvidia-smi -L
t tiles 150 -rfE --tb=short -n 6 tests/test_quant_tiles_gpu.py; snap
for f in int4 int8; do
  for v in 1 0; do
    env_bench e2e_7b_${f}_s$v 7b_${f}_s$v 70 CUGRAPHLLM_W4_SMALL=$v --preset llama-2-7b --quant $f \
      --prompt-lens 10,128,500
  done; snap
done
echo "total $(( $(date +%s) - T0 )) s"
