#!/bin/bash
# Twentieth session, call d (nvidia-h200): the tile-contiguous int4 layout (gpu/quant_tiles.py): its GPU tests, the
# int4 GEMV / prefill / engine tests under the new kernels, then decode + TTFT A/B (CUGRAPHLLM_QG_TILED 1 / 0, one
# process each) on 13B and 7B int4
source scripts/device_lib.sh s28d
LIMIT=570
nvidia-smi -L
t tiles 150 -rfE --tb=short -n 6 tests/test_quant_tiles_gpu.py; snap
t quant 170 -rfE --tb=short -n 8 -k "int4 or tiles" tests/test_quant_gpu.py tests/test_quant_prefill_gpu.py \
  tests/test_quant_engine_gpu.py tests/test_qg_cursor_gpu.py tests/test_qg_stage_gpu.py; snap
for v in 1 0; do
  env_bench e2e_13b_t$v 13b_int4_t$v 75 CUGRAPHLLM_QG_TILED=$v --preset llama-2-13b --quant int4 --prompt-lens 10,500
done; snap
for v in 1 0; do
  env_bench e2e_7b_t$v 7b_int4_t$v 60 CUGRAPHLLM_QG_TILED=$v --preset llama-2-7b --quant int4 --prompt-lens 10,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
