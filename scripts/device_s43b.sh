#!/bin/bash
# Thirty-fifth session, call s43b (nvidia-h200, ~9 min): the prefill attention with one-logic-op ldmatrix addresses
# (row_addr) and the MT 2 build at BN2 32 (this tree) or 64 (bis/bn64 = this tree with BN2 64).
# 1) prefill attention (MT 1 and MT 2 on every case) + engine GPU tests; 2) the kernel alone at 512 / 1024 / 2048 rows
# from 0 / 1024 / 1852, MT 1 and MT 2 in one process, this tree and bis/bn64; 3) 7B fp16 TTFT at 1000 / 2000 / 3900
# tokens (--prefill-rows 2048) with MT 2 off and on from ${MT2:-2048} rows (CUGRAPHLLM_PREFILL_MT2_ROWS), alternating.
source scripts/device_lib.sh s43b
LIMIT=${LIMIT:-560}
t prefill 170 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py; snap
ab() {  # TREE STEM SECS [--mt2]
  fits $3 $2 || return
  (cd $1 && timeout $3 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,1024,1852 \
    --buckets 512,1024,2048 --out $L/$2.json ${4:-} > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(python3 -c "import json; d=json.load(open('$L/$2.json')); print(' '.join(
    f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\" + (f\"/{r['mt2_ms_32_layers']:.3f}({r['mt2_max_abs_diff']:.1e})\"
    if 'mt2_ms_32_layers' in r else '') for r in d['prefill']), d['kernel'])" 2>&1 | tail -1)"
}
ab . main_1 90 --mt2; ab bis/bn64 bn64_1 90 --mt2; ab . main_2 60 --mt2; snap
long() {  # STEM MT2_ROWS
  env_bench $1 $1 110 CUGRAPHLLM_PREFILL_MT2_ROWS=$2 --preset llama-2-7b --lengths 1000,2000,3900 --new-tokens 16 \
    --prefill-rows 2048 --max-seq-len 4096; snap
}
long off_1 0; long on_1 ${MT2:-2048}; long off_2 0; long on_2 ${MT2:-2048}
