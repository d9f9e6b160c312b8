#!/bin/bash
# Eighth session (2026-11-30), nvidia-h200, third call. 1) The sampler GPU tests (v1 and the new v2 kernels, v2
# against v1 token for token; graphs) and the engine / decode-graph tests. 2) The sampler, old vs new, graph-timed
# (scripts/bench_sampler.py). 3) The 7B fp16 decode step's anatomy with the new sampler (greedy vs sampling step).
# 4) The GEMV / GEMM / PDL GPU tests (code moved in the seventh session's review pass). 5) cuBLASLt's first 32
# heuristic algorithms for the 7B prefill GEMMs at 512 rows (does a later one beat the first 8?). 6) The fp8
# prefill products scaled vs unscaled at 192 / 256 / 384 rows (the crossover). 7) Inter-token intervals vs SM clock.
# Results in $OUT/samp.tgz, refreshed after each step.
source scripts/device_lib.sh samp
T0=$(date +%s)
snap() { tar -czf "$OUT/samp.tgz" -C /tmp samp; echo "[at $(( $(date +%s) - T0 )) s]"; }
t samp_tests 140 -n 8 tests/test_sampling_gpu.py tests/test_sampling_v2_gpu.py tests/test_decode_graph_gpu.py \
  tests/test_engine_gpu.py; snap
timeout 70 python3 -m scripts.bench_sampler --samplers new,old --out $L/sampler.json > $L/sampler.log 2>&1
echo "=== sampler rc $?"; tail -n 14 $L/sampler.log; snap
timeout 40 python3 -m scripts.bench_fp8_ab --ms 192,256,384 --out $L/fp8_ab_mid.json > $L/fp8_ab_mid.log 2>&1
echo "=== fp8 mid rc $?"; grep -E "summary" $L/fp8_ab_mid.log | cut -c1-400; snap
timeout 60 python3 -m scripts.itl_drift --runs 4 --out $L/itl_drift.json > $L/itl_drift.log 2>&1
echo "=== itl drift rc $?"; cat $L/itl_drift.log | cut -c1-600; snap
timeout 100 python3 -m scripts.decode_anatomy --dtypes float16 --pos 10,500 --out $L/anatomy.json > $L/anatomy.log 2>&1
echo "=== anatomy rc $?"; tail -n 8 $L/anatomy.log; snap
t rest_tests 120 -n 8 tests/test_gemv_gpu.py tests/test_gemm_gpu.py tests/test_pdl_gpu.py; snap
timeout 70 python3 -m scripts.bench_gemm_lt --sets 7b --ms 512 --algos 32 --out $L/gemm_lt32.json > $L/gemm_lt32.log 2>&1
echo "=== gemm_lt32 rc $?"; tail -n 8 $L/gemm_lt32.log; snap
