#!/bin/bash
# For the next session (nvidia-h200-x2, < 5 minutes): the two-GPU tests after the eleventh session's tp_engine
# changes (gemm_quant prefill buffers allocated once per GPU, counted in the pre-flight; Rank and its helpers moved
# to gpu/tp_rank.py, not GPU-run after the move): tests/test_tp_gpu.py whole, then the TP2 int4 prologue variants.
source scripts/device_lib.sh tp_next
T0=$(date +%s)
nvidia-smi -L
t tp 200 -rfE --tb=short tests/test_tp_gpu.py
t tpq 90 -rfE --tb=short tests/test_quant_prologue_tp_gpu.py -k tp2
echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/tp_next.tgz" -C /tmp tp_next
