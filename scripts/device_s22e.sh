#!/bin/bash
# RECORD: QuantPlan.tpipe was removed after this run (slower); its code and GPU tests are at commit f475ae6.
# Fourteenth session, call 5 (nvidia-h200, < 5 min): the int4 cursor tiles with two fragments in a ring
# (QuantPlan.tpipe / QG_TPIPE, kernels/gemv_quant_cursor.cuh tile_cursor2: both rounds loaded before the PDL
# wait, one round in flight during the products). 7B int4 decode with tpipe 0 / 1 / 2, twice, one process each
# (prompt 10, 500), then the tpipe GPU tests.
source scripts/device_lib.sh s22e
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
nvidia-smi -L
for v in "tpipe=0" "tpipe=1" "tpipe=2" "tpipe=0" "tpipe=1" "tpipe=2"; do e2e_ab int4 "$v" 60 llama-2-7b 10,500; done; snap
t tpipe 150 -rfE --tb=short tests/test_qg_tpipe_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
