#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2, one GPU per track. GPU 1: the 16-bit decode GEMVs at the per-GPU
# shapes of 7B / 13B TP2 under launch-shape variants (scripts/sweep_tp_gemv.py). GPU 0: the decode GEMVs of 7B
# against a bare read of the same bytes and cuBLAS (scripts/bench_kernels.py, fp16), the per-matrix floors of issue
# 13's decode row. Results in $OUT/tpgemv.tgz.
source scripts/device_lib.sh tpgemv
T0=$(date +%s)
( CUDA_VISIBLE_DEVICES=0 timeout 200 python3 -m scripts.bench_kernels --dtype float16 --out $L/kernels.json \
    > $L/kernels.log 2>&1; echo "=== bench_kernels rc $? at $(( $(date +%s) - T0 )) s"; tail -30 $L/kernels.log ) > $L/gpu0.txt 2>&1 &
P0=$!
( CUDA_VISIBLE_DEVICES=1 timeout 200 python3 -m scripts.sweep_tp_gemv --out $L/sweep_tp_gemv.json \
    > $L/sweep.log 2>&1; echo "=== sweep rc $? at $(( $(date +%s) - T0 )) s"; cat $L/sweep.log | tail -30 ) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/tpgemv.tgz" -C /tmp tpgemv
