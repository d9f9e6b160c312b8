#!/bin/bash
# Fifteenth session, call 9 (nvidia-h200, < 4 min): the GPU test files s23g's limit did not reach (quantized
# engines: decode graphs with the attention default of this session; quantized GEMV prologues), 4 workers.
source scripts/device_lib.sh s23i
nvidia-smi -L
t quant_rest 170 -rfE --tb=short -n 4 tests/test_quant_engine_gpu.py tests/test_quant_prologue_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
