#!/bin/bash
# RECORD: the pipe knob was removed after this run (no end-to-end gain); its code and tests are at commit 2dce258.
# Fourteenth session, call 10 (nvidia-h200, < 5 min): the pipelined decode attention walk at unroll 8 on buckets
# of at most 512 keys only (bench_attention s22i: 64 / 256 / 512 keys 2.94 / 5.37 / 6.68 -> 2.65 / 4.23 / 6.26 us,
# longer buckets slower at 185 registers), 7B fp16 decode at prompt 10 / 500 against the default, one process
# each, alternating; then its same-bits GPU test at unroll 8.
source scripts/device_lib.sh s22j
LIMIT=${LIMIT:-280}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
for v in "0:-" "0:pipe=1,pipe_lmax=512" "0:-" "0:pipe=1,pipe_lmax=512"; do
  attn_bench p_$(( $(date +%s) - T0 )) 45 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 10,500; done; snap
t attn8 60 -rfE --tb=short tests/test_attention_gpu.py -k "pipe_same_bits"; snap
echo "total $(( $(date +%s) - T0 )) s"
