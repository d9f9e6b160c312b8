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
for r in 1 2; do attn_prefill_ab . attn_new_r$r 45; attn_prefill_ab $O attn_old_r$r 45; done; snap
for r in 1 2; do turn_ab . turn_new_r$r 70; turn_ab $O turn_old_r$r 70; done; snap
fits 200 tests && t tests 200 -n 8 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_memory_gpu.py \
  tests/test_engine_gpu.py; snap
