#!/bin/bash
# Seventh session (2026-11-30), the last call, nvidia-h200-x2: the prefill GEMM GPU tests with the 16-row configs
# adopted (GPU 0) and the engine / decode-graph GPU tests (GPU 1) on the final main. Logs in $OUT/last7.tgz.
source scripts/device_lib.sh last7
( CUDA_VISIBLE_DEVICES=0 t gemm_tests 150 -n 6 tests/test_gemm_gpu.py tests/test_gemm_tune_gpu.py ) > $L/gpu0.txt 2>&1 &
( CUDA_VISIBLE_DEVICES=1 t engine_tests 150 -n 6 tests/test_engine_gpu.py tests/test_decode_graph_gpu.py ) > $L/gpu1.txt 2>&1 &
wait
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/last7.tgz" -C /tmp last7
