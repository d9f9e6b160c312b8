#!/bin/bash
# Seventeenth session, call 7 (nvidia-h200): the int4 wgmma prefill path in the engine (gpu/gemm_w4.py,
# kernels/gemm_w4_wgmma.cu): the quantized prefill op tests (every path against NumPy float64, graph replay) and
# the quantized engine tests; then 7B int4 bench with the path on / off / on (CUGRAPHLLM_W4_WGMMA), one process each.
source scripts/device_lib.sh s25f
nvidia-smi -L
t quant_prefill 200 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py; snap
B="--backend cuda --preset llama-2-7b --quant int4 --modes hybrid --prompt-lens 10,128,500 --new-tokens 32 --reps 2 --warmup 1 --ttft-reps 5 --no-plot --out $L/bench"
for v in 1 0 1; do
  fits 90 "bench wg=$v" || break
  CUGRAPHLLM_W4_WGMMA=$v timeout 90 python3 -m cugraphllm bench $B --stem int4_wg${v}_$(( $(date +%s) - T0 )) > $L/bench_wg$v.log 2>&1
  echo "=== wg=$v rc $?"; grep -E '^\| cugraphllm' $L/bench_wg$v.log | head -4; grep -E "Error|Traceback" $L/bench_wg$v.log | head -3
done; snap
echo "total $(( $(date +%s) - T0 )) s"
