#!/bin/bash
# Device call for issue 11 part 2 (nvidia-h200-x2): the tensor-parallel GPU tests, then `bench --tp 2` (hybrid,
# greedy, 128 new tokens, prompts 128 and 500) on dummy 7B, 13B and 70B, with TP=1 7B in the same call for the
# ratio. Everything under $OUT in 4 files (the device returns at most 8): gpu.txt, tp_tests.log, tp_bench.json
# (the bench documents, one per run), tp_bench.md. Timeouts sum to 575 s (every one hit: 9.6 minutes).
# Usage: bash scripts/device_tp.sh
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; B=/tmp/tp_bench; rm -rf "$B"; mkdir -p "$B"
T0=$(date +%s)
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nvidia-smi topo -m; } \
  2>&1 | tee "$OUT/gpu.txt"
timeout 235 python3 -m pytest -q -m gpu -p no:cacheprovider --durations=10 tests/test_tp_gpu.py 2>&1 \
  | tee "$OUT/tp_tests.log" | tail -25
# the ops whose arguments became a Residual, on one GPU, 16-bit and quantized weights (the split kernel test files)
timeout 30 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_norm_gpu.py tests/test_gemv_gpu.py \
  tests/test_fused_norm_gpu.py tests/test_decode_graph_gpu.py tests/test_quant_gpu.py \
  -k "residual or embedding or fused or norm_ or graph or reject" 2>&1 | tee -a "$OUT/tp_tests.log" | tail -4
bench() {  # bench <seconds> <preset> <tp> <stem>
  timeout "$1" python3 -m cugraphllm bench --backend cuda --preset "$2" --tp "$3" --modes hybrid \
    --lengths 128,500 --new-tokens 128 --reps 2 --warmup 1 --out "$B" --stem "$4" --no-plot 2>&1 \
    | tee -a "$OUT/tp_tests.log" | grep -E "TTFT|collectives|error|Error" | tail -4
  echo "[$4 done at $(( $(date +%s) - T0 )) s]"
}
bench 55 llama-2-7b 1 tp1_7b
bench 60 llama-2-7b 2 tp2_7b
bench 65 llama-2-13b 2 tp2_13b
bench 130 llama-2-70b 2 tp2_70b
python3 -m scripts.tp_bench_summary "$B" "$OUT"
echo "total $(( $(date +%s) - T0 )) s"
