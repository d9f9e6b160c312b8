#!/bin/bash
# Thirty-fifth session, call s43h (nvidia-h200, ~3 min): the prefill attention's K / V tile copies through one stepped
# pointer (207 registers instead of 234) against 218074b (bis/ra = git archive of cugraphllm, kernels, setup.cfg and
# scripts/{__init__,bench_attention_prefill,bench_attention,turn_ttft}.py): 1) prefill attention GPU tests; 2) the
# kernel alone, 16-2048 rows from 0 / 300 / 1024 / 1852, 2 rounds alternating; 3) a 10-token chat turn after
# 0 / 300 / 1000 / 1900 / 3800 tokens, each tree once.
source scripts/device_lib.sh s43h
LIMIT=${LIMIT:-300}
t prefill 120 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py; snap
ab() { prefill_ab $1 $2 40 0,300,1024,1852 16,64,128,512,1024,2048; }  # TREE STEM
for r in 1 2; do ab bis/ra ra_$r; ab . ld_$r; done; snap
turn_ab bis/ra turn_ra 70; turn_ab . turn_ld 70; snap
