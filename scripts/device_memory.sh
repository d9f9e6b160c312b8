#!/bin/bash
# Device call for issue 11 part 1 (one H200): the memory GPU tests, the 13B streaming measurement, and 70B fp16 at
# context 4096 through the CLI's bench. Logs and JSON under $OUT. Usage: bash scripts/device_memory.sh
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider --durations=10 tests/test_memory_gpu.py \
  tests/test_fused_norm_gpu.py -k "memory or fold or upload or norm_" 2>&1 | tee "$OUT/memory_tests.log" | tail -30
timeout 240 python3 -m scripts.mem_13b --json "$OUT/mem_13b.json" 2>&1 | tail -5
timeout 110 python3 -m cugraphllm bench --preset llama-2-70b --modes hybrid --prompt-lens 128 --new-tokens 32 \
  --reps 1 --max-seq-len 4096 --out "$OUT" --stem bench_70b_1gpu --no-plot 2>&1 | tail -15
