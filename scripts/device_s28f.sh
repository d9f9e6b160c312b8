#!/bin/bash
# Twentieth session, call f (nvidia-h200): 70B int4 with the tile-contiguous layout on / off (CUGRAPHLLM_QG_TILED,
# one process each; decode at prompt 10 / 128), then the int4 prefill / engine GPU tests under int4's wgmma path at
# small row counts (gemm_w4.small)
source scripts/device_lib.sh s28f
LIMIT=570
nvidia-smi -L
for v in 1 0; do
  env_bench e2e_70b_t$v 70b_int4_t$v 200 CUGRAPHLLM_QG_TILED=$v --preset llama-2-70b --quant int4 --prompt-lens 10,128
  snap
done
t quant 140 -rfE --tb=short -n 8 -k "int4" tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
