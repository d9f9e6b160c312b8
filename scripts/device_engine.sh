#!/bin/bash
# One device call: engine GPU tests, then the 7B bench (all modes) side by side with the peers, start-up, soak.
# Usage on the device machine (repo root):  bash scripts/device_engine.sh [quick]
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
python3 -m pytest -q -x tests/test_engine_gpu.py 2>&1 | tail -25 | tee "$OUT/engine_tests.log"
if [ "${1:-}" = quick ]; then
  python3 -m cugraphllm bench --backend cuda --prompt-lens 10,128,500 --new-tokens 64 --reps 3 --warmup 1 \
    --peers benchmarks/results/peers_2026-11-23.json --out "$OUT" --no-plot 2>&1 | tail -40
fi
