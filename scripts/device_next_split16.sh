#!/bin/bash
# Prepared in the thirty-fifth session (its device time was spent), for the next session with device time (~3 min):
# the key split's ranges of >= 2 key tiles in buckets of <= 16 rows (80fc750, reverted on main by fdd01c7; s43i timed
# SPLIT_MIN_TILES 2 for every bucket: 10-token chat turns 0.06-0.26 ms faster after 300-3800 tokens, 64 / 128-row
# buckets after 300 keys 25-45% slower, hence the 16-row rule). Build the tree first:
#   rm -rf bis && mkdir -p bis/split16 && git archive 80fc750 cugraphllm kernels setup.cfg scripts/__init__.py \
#     scripts/turn_ttft.py scripts/bench_attention_prefill.py scripts/bench_attention.py tests/conftest.py \
#     tests/attention_helpers.py tests/test_attention_prefill_gpu.py tests/test_attention_prefill_split_cpu.py \
#     tests/test_engine_gpu.py | tar -x -C bis/split16
#   bash scripts/device_next_split16.sh
# 1) bis/split16's prefill attention and engine GPU tests; 2) the kernel alone (16 / 64 / 128 rows from 0 / 300 /
# 1024 / 1852) and a 10-token chat turn after 0 / 300 / 1000 / 1900 / 3800 tokens, main then bis/split16, 2 rounds.
# If it holds, `git revert fdd01c7` lands it.
source scripts/device_lib.sh next_split16
LIMIT=${LIMIT:-300}
(cd bis/split16 && t split16_tests 150 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py \
  tests/test_attention_prefill_split_cpu.py tests/test_engine_gpu.py); snap
ab() { prefill_ab $1 $2 30 0,300,1024,1852 16,64,128; }  # TREE STEM
for r in 1 2; do ab . main_$r; ab bis/split16 split16_$r; done; snap
for r in 1 2; do turn_ab . turn_main_$r 45; turn_ab bis/split16 turn_split16_$r 45; done; snap
