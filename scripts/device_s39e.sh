#!/bin/bash
# Thirty-first session, s39e (nvidia-h200, ~8 min): the prefill attention's key split (buckets of <= 2 query tiles
# over long cached prefixes: a chat turn) against the tree before it (bis/d924c8e: git archive d924c8e cugraphllm
# kernels setup.cfg + scripts/__init__.py, bench_attention.py, bench_attention_prefill.py, turn_ttft.py).
# 1) the kernel alone, 32 layer launches a graph, at 16 / 64 / 128 / 512 rows from positions 0 / 300 / 1024 / 1852,
# one process a tree, two rounds; 2) 7B TTFT of a 10-token turn after 0 / 300 / 1000 / 1900 / 3800 tokens of
# history (scripts/turn_ttft.py), one process a tree, two rounds; 3) GPU tests: prefill attention (float64
# reference, repeats, graph replay), memory estimate, engine.
LIMIT=${LIMIT:-560}
source scripts/device_lib.sh s39e
O=bis/d924c8e
attn() {  # TREE STEM
  fits 45 $2 || return
  (cd $1 && timeout 45 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024,1852 \
    --buckets 16,64,128,512 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(python3 -c "import json; print(' '.join(f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\"
    for r in json.load(open('$L/$2.json'))['prefill']))" 2>&1 | tail -1)"
}
turn() {  # TREE STEM
  fits 70 $2 || return
  (cd $1 && timeout 70 python3 -m scripts.turn_ttft --contexts 0,300,1000,1900,3800 --reps 20 --out $L/$2.json \
    > $L/$2.log 2>&1)
  echo "=== $2 rc $?"; grep '"context"' $L/$2.log | cut -c1-140
}
for r in 1 2; do attn . attn_new_r$r; attn $O attn_old_r$r; done; snap
for r in 1 2; do turn . turn_new_r$r; turn $O turn_old_r$r; done; snap
fits 200 tests && t tests 200 -n 8 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_memory_gpu.py \
  tests/test_engine_gpu.py; snap
