#!/bin/bash
# Thirty-fifth session, call s43a (nvidia-h200, ~8 min): the prefill attention's MT 2 build (two 16-row tiles a warp,
# 128-row blocks; this tree, BN2 64) and the landed folded tile order (the thirty-fourth session's device_next_fold).
#   bis/before  = git archive f8f1cb0 (before the fold), bis/foldall = HEAD with FOLD_TILES 64 (device_next_fold.sh
#   says how), bis/bn32 = this tree with BN2 32 (MT 2 walks 32-key tiles)
# 1) prefill attention (incl. the MT 2 build on every case) + engine GPU tests; 2) the kernel alone, 32 layers, at
# 512 / 1024 / 2048 rows from 0 / 1024 / 1852: this tree with --mt2 (MT 1 and MT 2 in one process), bis/bn32 --mt2,
# bis/before, bis/foldall, this tree again.
source scripts/device_lib.sh s43a
LIMIT=${LIMIT:-520}
t prefill 170 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py; snap
ab() { prefill_ab $1 $2 $3 0,1024,1852 512,1024,2048 ${4:-}; }  # TREE STEM SECS [--mt2]
ab . main_1 90 --mt2; snap
ab bis/bn32 bn32_1 90 --mt2; snap
ab bis/before before_1 60
ab bis/foldall foldall_1 60; snap
ab . main_2 60 --mt2
ab bis/bn32 bn32_2 60 --mt2; snap
