#!/bin/bash
# Prepared for the next session that gets nvidia-h200-x2, not yet run: test_allreduce_gpu.py's
# test_7b_width_logits_custom_against_nccl as fixed after the twenty-first session's last call (lamport's bitwise
# comparison with f32 prefill partials, its 16-bit default against NCCL within tolerance), then the rest of the
# two-GPU suite (all-reduce, TP, TP quantized, the prologue under TP).
source scripts/device_lib.sh next_x2
LIMIT=${LIMIT:-520}
nvidia-smi -L
t fixed 90 -rfE --tb=short tests/test_allreduce_gpu.py -k test_7b_width_logits_custom_against_nccl; snap
REST=$(( LIMIT - $(date +%s) + T0 - 15 ))
t suite $REST -rfE --tb=short tests/test_allreduce_gpu.py tests/test_allreduce_lamport_gpu.py tests/test_tp_gpu.py \
  tests/test_tp_quant.py tests/test_quant_prologue_tp_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
