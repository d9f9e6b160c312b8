#!/bin/bash
# For the next session (nvidia-h200, ~2 minutes): the fp8 sensitivity question (scripts/fp8_sensitivity.py; see
# benchmarks/results/tenth_2026-11-30/s18e): relative logit moves under a 1e-3 embedding perturbation, fp16 and both
# fp8 products, beside the 7% between the products.
source scripts/device_lib.sh fp8sens
timeout 240 python3 -m scripts.fp8_sensitivity > $L/fp8_sensitivity.log 2>&1
echo "=== rc $?"; tail -n 8 $L/fp8_sensitivity.log
tar -czf "$OUT/fp8sens.tgz" -C /tmp fp8sens
