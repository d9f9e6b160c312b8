#!/bin/bash
# Fifteenth session, call 7 (nvidia-h200-x2, < 7 min): the wider GPU suite on today's main (pdl.launch now builds its
# attribute list per call; decode attention early / cluster): GPU 0 the GEMV / quantized / norm kernels (all PDL
# launches), GPU 1 sampling, prefill, robustness, UX and server, 4 workers each.
source scripts/device_lib.sh s23g
nvidia-smi -L
( export CUDA_VISIBLE_DEVICES=1
  t rest 380 -rfE --tb=short -n 4 tests/test_sampling_gpu.py tests/test_sampling_v2_gpu.py tests/test_sampling_v3_gpu.py \
    tests/test_attention_prefill_gpu.py tests/test_prefill_rows_gpu.py tests/test_robustness_gpu.py tests/test_ux_gpu.py \
    tests/test_server_gpu.py tests/test_gemm_gpu.py ) &
P=$!
CUDA_VISIBLE_DEVICES=0 t kernels 380 -rfE --tb=short -n 4 tests/test_gemv_gpu.py tests/test_gemv_early_gpu.py \
  tests/test_fused_norm_gpu.py tests/test_norm_gpu.py tests/test_quant_gpu.py tests/test_quant_engine_gpu.py \
  tests/test_quant_prologue_gpu.py
wait $P; snap
echo "total $(( $(date +%s) - T0 )) s"
