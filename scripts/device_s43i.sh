#!/bin/bash
# Thirty-fifth session, call s43i (nvidia-h200, ~3 min): the prefill attention's key split with ranges of at least 4
# or 2 key tiles instead of 8 (bis/smt4, bis/smt2 = git archive 6e43085 of cugraphllm, kernels, setup.cfg, the
# benches and the prefill attention GPU tests, SPLIT_MIN_TILES sed-edited): 1) bis/smt4's prefill attention GPU tests;
# 2) the kernel alone, 16 / 64 / 128 rows from 0 / 300 / 1024 / 1852, 2 rounds alternating; 3) a 10-token chat turn
# after 0 / 300 / 1000 / 1900 / 3800 tokens, each tree once.
source scripts/device_lib.sh s43i
LIMIT=${LIMIT:-240}
(cd bis/smt4 && t smt4_tests 60 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py); snap
ab() { prefill_ab $1 $2 30 0,300,1024,1852 16,64,128; }  # TREE STEM
for r in 1 2; do ab . main_$r; ab bis/smt4 smt4_$r; ab bis/smt2 smt2_$r; done; snap
turn_ab . turn_main 45; turn_ab bis/smt4 turn_smt4 45; turn_ab bis/smt2 turn_smt2 45; snap
