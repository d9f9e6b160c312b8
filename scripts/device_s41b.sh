#!/bin/bash
# Thirty-third session, call s41b (nvidia-h200, ~7 min). bis/main: the tree before the session (72d0b5a); bis/new:
# HEAD fe08d90 (one_trip 256-key decode plan) plus rmsnorm_unit_fp8 taking x from registers for its amax and codes.
# 1) fp8 GPU tests of the fused fp8 norm (bit equality against the unfused ops) in bis/new; 2) 13B fp16 decode at
# prompt 130 (every step in the 256-key bucket), bis/main vs bis/new, one process each; 3) decode alone across the
# 128-key edge (itl_drift, prompt 10, 128 tokens), both trees, 2 rounds; 4) 7B fp8 GPU prefill of 500 tokens from
# idle (prefill_drift --gap-ms 100), both trees alternating, 2 rounds.
source scripts/device_lib.sh s41b
LIMIT=${LIMIT:-520}
(cd bis/new && t fp8a 100 -n 4 -rfE --tb=short tests/test_fp8_actq_gpu.py
 t fp8b 100 -n 4 -rfE --tb=short tests/test_quant_prefill_gpu.py -k fp8); snap
B="--backend cuda --modes hybrid --new-tokens 64 --reps 3 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench --preset llama-2-13b"
(cd bis/main && run_bench main13 100 --lengths 130); (cd bis/new && run_bench new13 100 --lengths 130); snap
for r in 1 2; do for tree in bis/new bis/main; do n=$(basename $tree)
  fits 50 itl_${r}_$n && (cd $tree && timeout 50 python3 -m scripts.itl_drift --runs 3 \
    --out $L/itl_${r}_$n.json > $L/itl_${r}_$n.log 2>&1)
  python3 -c "
import json, statistics as st
d = json.load(open('$L/itl_${r}_$n.json'))
print('=== itl $r $n:', ' | '.join('%.3f %.3f' % (st.median(x['itl_ms'][:110]), st.median(x['itl_ms'][120:]))
      for x in d['runs']))" 2>&1 | tail -1
done; done; snap
for r in 1 2; do for tree in bis/main bis/new; do s=pf_${r}_$(basename $tree)
  fits 45 $s || continue
  (cd $tree && timeout 90 python3 -m scripts.prefill_drift --quant fp8 --length 500 --samples 20 --gap-ms 100 \
    --out $L/$s.json > $L/$s.log 2>&1)
  echo "=== $s rc $?: $(python3 -c "import json; d=json.load(open('$L/$s.json')); print(d['median_all'], d['series'][:6])" 2>&1)"
done; done; snap
