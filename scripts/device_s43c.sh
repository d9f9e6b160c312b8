#!/bin/bash
# Thirty-fifth session, call s43c (nvidia-h200, ~6 min): the prefill attention's one-logic-op ldmatrix addresses
# (row_addr) and its MT 2 build, against the tree before the session (bis/head = git archive 275eb06 of cugraphllm,
# kernels, setup.cfg and scripts/{__init__,bench_attention_prefill,bench_attention,turn_ttft,prefill_drift}.py).
# 1) the kernel alone, 16 / 64 / 128 / 512 / 1024 / 2048 rows from 0 / 300 / 1024 / 1852, 2 rounds alternating (this
# tree with --mt2); 2) 7B fp16 TTFT at 1000 / 2000 / 3900 tokens (--prefill-rows 2048): bis/head, this tree with MT 2
# off, this tree with MT 2 from 2048 rows, 2 rounds; 3) a 10-token chat turn after 0 / 300 / 1000 / 1900 / 3800 tokens.
source scripts/device_lib.sh s43c
LIMIT=${LIMIT:-540}
ab() { prefill_ab $1 $2 $3 0,300,1024,1852 16,64,128,512,1024,2048 ${4:-}; }  # TREE STEM SECS [--mt2]
ab bis/head head_1 100; ab . main_1 100 --mt2; ab bis/head head_2 60; ab . main_2 60 --mt2; snap
long() {  # TREE STEM MT2_ROWS
  fits 60 $2 || return
  (cd $1 && CUGRAPHLLM_PREFILL_MT2_ROWS=$3 timeout 60 python3 -m cugraphllm bench --backend cuda --modes hybrid \
    --preset llama-2-7b --lengths 1000,2000,3900 --new-tokens 16 --reps 2 --warmup 1 --ttft-reps 8 --no-plot \
    --prefill-rows 2048 --max-seq-len 4096 --out $L/bench --stem $2 > $L/$2.log 2>&1)
  echo "=== $2 (MT2 rows $3) rc $?"; bench_rows $L/$2.log
}
for r in 1 2; do long bis/head lhead_$r 0; long . loff_$r 0; long . lon_$r 2048; snap; done
turn_ab bis/head turn_head 80; turn_ab . turn_main 80; snap
