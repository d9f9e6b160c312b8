#!/bin/bash
# Twenty-eighth session, s36c (nvidia-h200, ~6 min): GPU tests of the engine_load / ops_gemv split (no kernel or
# launch changed: the same launchers moved between modules), then 7B fp16 / int4 bench rows as a sanity check.
source scripts/device_lib.sh s36c
LIMIT=${LIMIT:-520}
t split 330 -n 8 -rfE --tb=short tests/test_decode_graph_gpu.py tests/test_engine_gpu.py tests/test_fused_norm_gpu.py \
  tests/test_gemv_gpu.py tests/test_memory_gpu.py tests/test_pdl_gpu.py tests/test_prefill_norm_gpu.py \
  tests/test_prefill_rows_gpu.py tests/test_quant_engine_gpu.py tests/test_quant_load_gpu.py \
  tests/test_robustness_gpu.py tests/test_ux_gpu.py tests/test_sampling_gpu.py; snap
env_bench fp16_7b fp16_7b 60 CUGRAPHLLM_NONE=0 --preset llama-2-7b --lengths 10,128,500
env_bench int4_7b int4_7b 60 CUGRAPHLLM_NONE=0 --preset llama-2-7b --quant int4 --lengths 10,500
snap; echo "total $(( $(date +%s) - T0 )) s"
