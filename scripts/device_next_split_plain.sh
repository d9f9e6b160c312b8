#!/bin/bash
# Prepared in the thirty-second session, run in the thirty-third (results: thirtythird_2026-12-03/next_split_plain/;
# the candidate was no faster than main, not taken):
# the prefill attention's split entry running the plain block's code where one key range covers a (head, tile)
# (7948173, reverted on main). s40f measured the split entry ~15% slower than the plain kernel on the same keys
# whatever its z (16 / 64 / 128 rows after 300 keys: 0.332 / 0.390 / 0.438 ms for 32 layers, caps 8 and 4 alike,
# against 0.286 / 0.333 / 0.372 plain); chat-turn TTFT after 300 tokens 4.29 vs 4.23 ms.
#   rm -rf bis && mkdir -p bis/c && git archive 7948173 cugraphllm kernels scripts tests setup.cfg | tar -x -C bis/c
#   bash scripts/device_next_split_plain.sh bis/c
# 1) the candidate's prefill attention GPU tests (float64 reference, 2-4 ranges, repeats, graph replay); 2) the
# kernel alone (16 / 64 / 128 / 512 rows from positions 0 / 300 / 1024 / 1852) in the candidate, on main and on
# main with CUGRAPHLLM_PREFILL_SPLIT=0; 3) chat-turn TTFT in the candidate and on main, 2 rounds.
source scripts/device_lib.sh next_split_plain
LIMIT=${LIMIT:-300}
(cd $1 && t prefill 90 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py); snap
attn_prefill_ab $1 attn_cand 45; attn_prefill_ab . attn_main 45
CUGRAPHLLM_PREFILL_SPLIT=0 attn_prefill_ab . attn_cap0 45; snap
for r in 1 2; do turn_ab $1 turn_cand_$r 45; turn_ab . turn_main_$r 45; done; snap
