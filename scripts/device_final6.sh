#!/bin/bash
# Last call of 2026-11-30's sixth session (nvidia-h200-x2): 1) the all-reduce GPU tests and the TP GPU tests on the
# final main (lamport the default; the tests' two-GPU helpers shared in tests/peer_helpers.py); 2) TP2 decode, 7B
# and 13B fp16, the 16-bit plan's wide launch shape from 4096 row pairs (default) vs 2048 (wqkv of 7B / 13B TP2 has
# 3072 / 3840 pairs a GPU), one process each, prompt 128, 64 new tokens.
source scripts/device_lib.sh final6
t allreduce_tests 80 tests/test_allreduce_gpu.py tests/test_allreduce_lamport_gpu.py; cp $L/*.log "$OUT/"
t tp_tests 140 tests/test_tp_gpu.py; cp $L/*.log "$OUT/"
for p in llama-2-13b llama-2-7b; do for wm in 4096 2048; do
  timeout 30 python3 - > $L/wide_${p}_$wm.log 2>&1 <<PY
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.GEMV_WIDE_MIN_PAIRS = $wm
main("bench --backend cuda --preset $p --tp 2 --modes hybrid --prompt-lens 128 --new-tokens 64 --reps 2 --warmup 1 --no-plot --out $L/bench --stem wide_${p}_$wm".split())
PY
  echo "=== $p wide from $wm rc $?: $(grep -E '^\| cugraphllm-hybrid-tp2 \| 128' $L/wide_${p}_$wm.log | cut -d'|' -f3,5,7 | head -1)"
done; done
tar -czf "$OUT/final6.tgz" -C /tmp final6
