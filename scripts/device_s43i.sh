#!/bin/bash
# Thirty-fifth session, call s43i (nvidia-h200, ~3 min): the prefill attention's key split with ranges of at least 4
# or 2 key tiles instead of 8 (bis/smt4, bis/smt2 = git archive 6e43085 of cugraphllm, kernels, setup.cfg, the
# benches and the prefill attention GPU tests, SPLIT_MIN_TILES sed-edited): 1) bis/smt4's prefill attention GPU tests;
# 2) the kernel alone, 16 / 64 / 128 rows from 0 / 300 / 1024 / 1852, 2 rounds alternating; 3) a 10-token chat turn
# after 0 / 300 / 1000 / 1900 / 3800 tokens, each tree once.
source scripts/device_lib.sh s43i
LIMIT=${LIMIT:-240}
(cd bis/smt4 && t smt4_tests 60 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py); snap
ab() {  # TREE STEM
  fits 30 $2 || return
  (cd $1 && timeout 30 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024,1852 \
    --buckets 16,64,128 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(python3 -c "import json; d=json.load(open('$L/$2.json')); print(' '.join(
    f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\" for r in d['prefill']))" 2>&1 | tail -1)"
}
for r in 1 2; do ab . main_$r; ab bis/smt4 smt4_$r; ab bis/smt2 smt2_$r; done; snap
turn_ab . turn_main 45; turn_ab bis/smt4 turn_smt4 45; turn_ab bis/smt2 turn_smt2 45; snap
