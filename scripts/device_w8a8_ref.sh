#!/bin/bash
# For the next session (nvidia-h200, < 3 minutes; correctness only): the CUDA engine's two fp8 prefill products
# (CUGRAPHLLM_FP8_OUTER_SCALE=1 / 0) against the NumPy model of the W8A8 prefill (quant/w8a8_ref.py) and the
# weight-only NumPy reference at 7B width, 2 layers, 300 / 500 tokens: scripts/fp8_w8a8_compare.py and, side by
# side on the one GPU, tests/test_w8a8_ref_gpu.py (its tolerance, 2x the measured amplification floor, is not yet
# measured on a GPU). NumPy part: ~45 s on 2 CPU cores here (float64 products of 7B-width layers).
source scripts/device_lib.sh w8a8_ref
T0=$(date +%s)
( timeout 170 python3 -m scripts.fp8_w8a8_compare > $L/compare.log 2>&1; echo "=== compare rc $? at $(( $(date +%s) - T0 )) s" ) &
P0=$!
t w8a8 170 -s -rfE --tb=short tests/test_w8a8_ref_gpu.py &
P1=$!
wait $P0; wait $P1
tail -n 6 $L/compare.log
grep -E "vs w8a8 model|scaled vs unscaled" $L/w8a8.log
echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/w8a8_ref.tgz" -C /tmp w8a8_ref
