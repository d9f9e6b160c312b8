#!/bin/bash
# Prepared in the thirty-fifth session (its device time was spent), for the next session with device time (~4 min):
# the prefill attention's W16 entry for buckets of <= 16 rows (3b6c8a9, reverted on main by f79a94e): the block's four
# warps split each key tile instead of one warp walking them all. Build the tree first:
#   rm -rf bis && mkdir -p bis/w16 && git archive 3b6c8a9 cugraphllm kernels setup.cfg scripts/__init__.py \
#     scripts/turn_ttft.py scripts/bench_attention_prefill.py scripts/bench_attention.py tests/conftest.py \
#     tests/attention_helpers.py tests/test_attention_prefill_gpu.py tests/test_attention_prefill_split_cpu.py \
#     tests/test_engine_gpu.py | tar -x -C bis/w16
#   bash scripts/device_next_w16.sh
# 1) bis/w16's prefill attention and engine GPU tests (its new test routes 16-row buckets both ways); 2) the kernel
# alone at 16 / 64 rows from 0 / 300 / 1024 / 1852 / 3800: bis/w16, bis/w16 with CUGRAPHLLM_PREFILL_W16=0 (the same
# binary on the old entries), main; W16 under split caps 4 and 2 (CUGRAPHLLM_PREFILL_SPLIT); 3) a 10-token chat turn
# after 0 / 300 / 1000 / 1900 / 3800 tokens, main then bis/w16, 2 rounds. If it holds, `git revert f79a94e` lands it
# (then also try it with device_next_split16.sh's ranges).
source scripts/device_lib.sh next_w16
LIMIT=${LIMIT:-330}
(cd bis/w16 && t w16_tests 150 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py \
  tests/test_attention_prefill_split_cpu.py tests/test_engine_gpu.py); snap
ab() { (export ${3:-X=1}; prefill_ab $1 $2 30 0,300,1024,1852,3800 16,64); }  # TREE STEM [ENV=VALUE]
for r in 1 2; do ab bis/w16 w16_$r; ab bis/w16 w16off_$r CUGRAPHLLM_PREFILL_W16=0; ab . main_$r; done
ab bis/w16 w16cap4 CUGRAPHLLM_PREFILL_SPLIT=4; ab bis/w16 w16cap2 CUGRAPHLLM_PREFILL_SPLIT=2; snap
for r in 1 2; do turn_ab . turn_main_$r 45; turn_ab bis/w16 turn_w16_$r 45; done; snap
