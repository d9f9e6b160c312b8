#!/bin/bash
# Thirty-third session, call s41c (nvidia-h200, ~4 min). bis/main: HEAD be7c7a4; bis/new: the same with
# kernels/fp8_actq.cu's rows kept in registers between the amax and code passes (silu_mul_quant_rows,
# w8a8_silu_quant_rows, quant_act_fp8_v; at most 4 pieces of 8 columns a thread, __launch_bounds__(512, 2)).
# 1) fp8 GPU tests (bit equality of the fused producers against the unfused ops) in bis/new; 2) 7B fp8 GPU prefill
# of 500 tokens from idle (prefill_drift --gap-ms 100), both trees alternating, 3 rounds.
source scripts/device_lib.sh s41c
LIMIT=${LIMIT:-400}
(cd bis/new && t fp8a 100 -n 4 -rfE --tb=short tests/test_fp8_actq_gpu.py
 t fp8b 100 -n 4 -rfE --tb=short tests/test_quant_prefill_gpu.py -k fp8); snap
for r in 1 2 3; do for tree in bis/main bis/new; do s=pf_${r}_$(basename $tree)
  fits 45 $s || continue
  (cd $tree && timeout 90 python3 -m scripts.prefill_drift --quant fp8 --length 500 --samples 20 --gap-ms 100 \
    --out $L/$s.json > $L/$s.log 2>&1)
  echo "=== $s rc $?: $(python3 -c "import json; d=json.load(open('$L/$s.json')); print(d['median_all'], d['series'][:6])" 2>&1)"
done; done; snap
