#!/bin/bash
# Device call A: every gpu-marked test, engine first, logs under $OUT. Usage: bash scripts/device_final_tests.sh
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 370 python3 -m pytest -q -m gpu -p no:cacheprovider --durations=15 \
  tests/test_engine_gpu.py tests/test_norm_gpu.py tests/test_gemv_gpu.py tests/test_fused_norm_gpu.py \
  tests/test_sampling_gpu.py tests/test_decode_graph_gpu.py tests/test_gemm_gpu.py tests/test_attention_gpu.py \
  tests/test_attention_prefill_gpu.py tests/test_robustness_gpu.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -60
