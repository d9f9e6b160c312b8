#!/bin/bash
# Thirteenth session, call 10 (nvidia-h200, < 5 min): int8's plan with the pipelined loop (new default) against the
# old one (pipe=0), 7B decode at prompts 10 / 500, alternating, one process each; int4 with pipe=1 once; then the
# quantized GEMV GPU tests of int8 under the new default and the pipe paths.
source scripts/device_lib.sh pipe8
LIMIT=${LIMIT:-280}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
ab() { fits $3 "e2e $1 $2" || return; plan_bench e2e_7b_$1_$(( $(date +%s) - T0 )) $3 $1 "$2" $E2E --preset llama-2-7b --quant $1 --lengths 10,500; }
for v in "pipe=1" "pipe=0" "pipe=1" "pipe=0"; do ab int8 "$v" 40; done; snap
for v in "pipe=1" "pipe=0"; do ab int4 "$v" 40; done; snap
t q8 100 -n 8 -rfE --tb=short tests/test_quant_gpu.py -k "int8 or h2_pipe"; snap
echo "total $(( $(date +%s) - T0 )) s"
