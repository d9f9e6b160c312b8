#!/bin/bash
# Twelfth session (2026-11-30), nvidia-h200-x2, < 8 minutes: the two-GPU tests with int4's mma_waves=1 default
# (and the eleventh session's tp_rank move / gemm_quant.allocate_layers, not GPU-run before): tests/test_tp_gpu.py
# whole, the TP2 int4 prologue variants; then 13B int4 --tp 2 decode with mma_waves 1 / 0 (the rule moves 13B TP2's
# w13 to 16 warps, 4 a tile), one process each.
source scripts/device_lib.sh s20d
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4 --tp 2"
ab() {  # preset lens mma_waves secs
  fits $4 "e2e $1 waves $3" || return
  plan_bench e2e_${1}_tp2_int4_w$3_$(( $(date +%s) - T0 )) $4 int4 "mma_waves=$3" $E2E --preset $1 --lengths $2
}
nvidia-smi -L
t tp 220 -rfE --tb=short tests/test_tp_gpu.py; snap
t tpq 90 -rfE --tb=short tests/test_quant_prologue_tp_gpu.py -k tp2; snap
for v in 1 0; do ab llama-2-13b 128,500 $v 90; done; snap
echo "total $(( $(date +%s) - T0 )) s"
