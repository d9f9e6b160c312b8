#!/bin/bash
# Device call for the custom all-reduce (gpu/allreduce.py, kernels/allreduce.cu) on nvidia-h200-x2: its GPU tests,
# the nccl / custom-unfused / custom A/B on dummy 7B TP2 (scripts/bench_allreduce.py), then the existing TP tests on
# the default backend (custom where the GPUs have peer access). Three steps of < 3 min each (timeouts 170 s, 510 s
# in all); logs and the A/B JSON under $OUT. Needs .device/ as in scripts/device_tp.sh.
# Usage: bash scripts/device_allreduce.sh
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$(date +%s)
nvidia-smi topo -m 2>&1 | tee "$OUT/gpu.txt"
timeout 170 python3 -m pytest -q -m gpu -p no:cacheprovider --durations=8 tests/test_allreduce_gpu.py 2>&1 \
  | tee "$OUT/allreduce_tests.log" | tail -20
echo "[tests done at $(( $(date +%s) - T0 )) s]"
timeout 170 python3 -m scripts.bench_allreduce --preset llama-2-7b --tp 2 --out "$OUT/allreduce_ab_7b.json" 2>&1 \
  | tee "$OUT/allreduce_ab.log" | grep -v "^\[bench_allreduce" | tail -8
echo "[A/B done at $(( $(date +%s) - T0 )) s]"
timeout 170 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_tp_gpu.py 2>&1 | tee "$OUT/tp_tests.log" | tail -6
echo "total $(( $(date +%s) - T0 )) s"
