#!/bin/bash
# RECORD: QuantPlan.tpipe was removed after these runs (no gain; slower in its ring form, device_s22e.sh); its code and
# GPU tests are at commit f475ae6. Running this on a later tree fails at the tpipe field.
# Fourteenth session, call 2 (nvidia-h200, < 9 min): the pipelined cursor tiles (QuantPlan.tpipe / QG_TPIPE,
# kernels/gemv_quant_cursor.cuh). 7B int4 decode with tpipe 0 / 1 / 0 / 1 / 0, one process each (prompt 10, 500),
# then the tpipe GPU tests (bit-identical to the cursor loop; 7B w13 against float64), then the boundary probe
# the thirteenth session prepared (scripts/boundary_probe.py) if time is left.
source scripts/device_lib.sh s22b
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
nvidia-smi -L
for v in "tpipe=0" "tpipe=1" "tpipe=0" "tpipe=1" "tpipe=0"; do e2e_ab int4 "$v" 60 llama-2-7b 10,500; done; snap
t tpipe 150 -rfE --tb=short tests/test_qg_tpipe_gpu.py; snap
if fits 130 boundary; then
  timeout 120 python3 -m scripts.boundary_probe --out $L/boundary.json > $L/boundary.log 2>&1
  echo "=== boundary rc $?"; tail -14 $L/boundary.log; snap
fi
echo "total $(( $(date +%s) - T0 )) s"
