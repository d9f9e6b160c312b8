#!/bin/bash
# Thirty-fifth session, call s43b (nvidia-h200, ~9 min): the prefill attention with one-logic-op ldmatrix addresses
# (row_addr) and the MT 2 build at BN2 32 (this tree) or 64 (bis/bn64 = this tree with BN2 64).
# 1) prefill attention (MT 1 and MT 2 on every case) + engine GPU tests; 2) the kernel alone at 512 / 1024 / 2048 rows
# from 0 / 1024 / 1852, MT 1 and MT 2 in one process, this tree and bis/bn64; 3) 7B fp16 TTFT at 1000 / 2000 / 3900
# tokens (--prefill-rows 2048) with MT 2 off and on from ${MT2:-2048} rows (CUGRAPHLLM_PREFILL_MT2_ROWS), alternating.
source scripts/device_lib.sh s43b
LIMIT=${LIMIT:-560}
t prefill 170 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py; snap
ab() { prefill_ab $1 $2 $3 0,1024,1852 512,1024,2048 ${4:-}; }  # TREE STEM SECS [--mt2]
ab . main_1 90 --mt2; ab bis/bn64 bn64_1 90 --mt2; ab . main_2 60 --mt2; snap
long() {  # STEM MT2_ROWS
  env_bench $1 $1 110 CUGRAPHLLM_PREFILL_MT2_ROWS=$2 --preset llama-2-7b --lengths 1000,2000,3900 --new-tokens 16 \
    --prefill-rows 2048 --max-seq-len 4096; snap
}
long off_1 0; long on_1 ${MT2:-2048}; long off_2 0; long on_2 ${MT2:-2048}
