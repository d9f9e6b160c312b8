#!/bin/bash
# Twentieth session, call k (nvidia-h200): the final tree's GPU tests of what the review touched (tile-contiguous,
# staging variants, plan) and the quantized GEMV / knockout tests
source scripts/device_lib.sh s28k
LIMIT=300
nvidia-smi -L
t final 280 -rfE --tb=short -n 8 tests/test_quant_tiles_gpu.py tests/test_qg_stage_gpu.py tests/test_quant_knockout_gpu.py \
  tests/test_qg_cursor_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
