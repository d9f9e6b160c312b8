#!/bin/bash
# Thirty-fifth session, call s43d (nvidia-h200, ~5 min): 1) prefill attention + engine GPU tests on a4e9fad (row_addr,
# MT 2 from 2048 rows, the dispatch test); 2) the kernel alone, 16-2048 rows from 0 / 300 / 1024 / 1852, this tree
# (MT 1 and MT 2) against MT 1 with 32-key tiles: bis/bn32m3 (3 blocks an SM: __launch_bounds__(128, 3), 168
# registers) and bis/bn32m2 (2 blocks), both = this tree with BN 32; 2 rounds.
source scripts/device_lib.sh s43d
LIMIT=${LIMIT:-480}
t prefill 170 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py; snap
ab() { prefill_ab $1 $2 $3 0,300,1024,1852 16,64,128,512,1024,2048 ${4:-}; }  # TREE STEM SECS [--mt2]
for r in 1 2; do ab . main_$r 100 --mt2; ab bis/bn32m3 m3_$r 100; ab bis/bn32m2 m2_$r 100; snap; done
