#!/bin/bash
# Thirty-fifth session, call s43h (nvidia-h200, ~3 min): the prefill attention's K / V tile copies through one stepped
# pointer (207 registers instead of 234) against 218074b (bis/ra = git archive of cugraphllm, kernels, setup.cfg and
# scripts/{__init__,bench_attention_prefill,bench_attention,turn_ttft}.py): 1) prefill attention GPU tests; 2) the
# kernel alone, 16-2048 rows from 0 / 300 / 1024 / 1852, 2 rounds alternating; 3) a 10-token chat turn after
# 0 / 300 / 1000 / 1900 / 3800 tokens, each tree once.
source scripts/device_lib.sh s43h
LIMIT=${LIMIT:-300}
t prefill 120 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py; snap
ab() {  # TREE STEM
  fits 40 $2 || return
  (cd $1 && timeout 40 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024,1852 \
    --buckets 16,64,128,512,1024,2048 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(python3 -c "import json; d=json.load(open('$L/$2.json')); print(' '.join(
    f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\" for r in d['prefill']), d['kernel'])" 2>&1 | tail -1)"
}
for r in 1 2; do ab bis/ra ra_$r; ab . ld_$r; done; snap
turn_ab bis/ra turn_ra 70; turn_ab . turn_ld 70; snap
