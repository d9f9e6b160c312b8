#!/bin/bash
# Sixteenth session, call 4 (nvidia-h200): the residual GEMMs (wo, w2) at 128 / 512 rows as cuBLAS(Lt) runs them
# today (f32 output accumulated, beta 1) against a 16-bit output (set 7b-res16), each shape's heuristic algorithms.
source scripts/device_lib.sh s24d
nvidia-smi -L
timeout 300 python3 -m scripts.bench_gemm_lt --sets 7b,7b-res16 --ms 128,512 --algos 8 --out $L/gemm_lt_res16.json \
  > $L/gemm_lt_res16.log 2>&1
echo "=== lt rc $?"; grep -v "^ " $L/gemm_lt_res16.log | tail -30; snap
echo "total $(( $(date +%s) - T0 )) s"
