#!/bin/bash
# Thirty-sixth session, call s44a: 1) the prefill attention + engine GPU tests on main with the 16-row key-split
# ranges landed (revert of fdd01c7); 2) the kernel alone at 16 / 64 / 128 rows from 0 / 300 / 1024 / 1852 / 3800
# under the split caps 8 (default), 6 and 4 (CUGRAPHLLM_PREFILL_SPLIT), 2 rounds; 3) chat turns of 10 and 60 tokens
# after 0-3800 tokens, default then cap 4, 2 rounds.
source scripts/device_lib.sh s44a
LIMIT=${LIMIT:-420}
t main_tests 150 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_attention_prefill_split_cpu.py \
  tests/test_engine_gpu.py; snap
ab() { (export ${2:-X=1}; prefill_ab . $1 30 0,300,1024,1852,3800 16,64,128); }  # STEM [ENV=VALUE]
for r in 1 2; do ab cap8_$r; ab cap6_$r CUGRAPHLLM_PREFILL_SPLIT=6; ab cap4_$r CUGRAPHLLM_PREFILL_SPLIT=4; done; snap
turn() { fits 45 $1 || return; (export ${3:-X=1}; timeout 45 python3 -m scripts.turn_ttft --contexts 0,300,1000,1900,3800 \
  --reps 20 --turn $2 --out $L/$1.json > $L/$1.log 2>&1); echo "=== $1 rc $?"; grep '"context"' $L/$1.log | cut -c1-140; }
for r in 1 2; do turn t10_cap8_$r 10; turn t10_cap4_$r 10 CUGRAPHLLM_PREFILL_SPLIT=4; done; snap
for r in 1 2; do turn t60_cap8_$r 60; turn t60_cap4_$r 60 CUGRAPHLLM_PREFILL_SPLIT=4; done; snap
