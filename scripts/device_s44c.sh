#!/bin/bash
# Thirty-sixth session, call s44c: the GPU suites that prefill after a cached history or go through the engines
# (engine, prefill rows / norms, decode graphs, robustness, UX, server, sampling v3, memory), on main with the 16-row
# key-split ranges, split over 4 workers.
source scripts/device_lib.sh s44c
t suite 420 -n 4 -rfE --tb=short tests/test_engine_gpu.py tests/test_prefill_rows_gpu.py tests/test_prefill_norm_gpu.py \
  tests/test_decode_graph_gpu.py tests/test_robustness_gpu.py tests/test_ux_gpu.py tests/test_server_gpu.py \
  tests/test_sampling_v3_gpu.py tests/test_memory_gpu.py tests/test_attention_prefill_gpu.py tests/test_pdl_gpu.py
snap
