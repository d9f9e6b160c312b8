#!/bin/bash
# Device call B: the 7B bench (paper protocol, all modes, beside the peers), start-up cold/warm, soak.
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
timeout 100 python3 scripts/startup.py --preset llama-2-7b --mode hybrid --out "$OUT/startup_7b.json" 2>&1 | tail -30
timeout 270 python3 -m cugraphllm bench --backend cuda --paper --new-tokens 128 --reps 3 --warmup 1 \
  --peers benchmarks/results/peers_2026-11-23.json --out "$OUT" --stem bench_7b_paper 2>&1 | grep -v "^\[bench" | tail -45
PYTHONPATH=/tmp/site:$PWD timeout 90 python3 scripts/soak.py --preset llama-2-7b --tokens 10000 --turn 250 --out "$OUT/soak_7b.json" 2>&1 | grep -v "^soak:" | tail -30
