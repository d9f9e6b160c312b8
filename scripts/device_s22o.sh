#!/bin/bash
# Fourteenth session, call 15 (nvidia-h200, < 3 min): the 16-bit GEMV tests with 7B wo on (16, 1, 4).
source scripts/device_lib.sh s22o
t gemv 110 -rfE --tb=short -n 8 tests/test_gemv_gpu.py tests/test_fused_norm_gpu.py tests/test_gemv_early_gpu.py; snap
