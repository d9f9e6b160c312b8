#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2: 7B / 13B TP2 decode with the 16-bit GEMV per-shape overrides off / on
# (gemv_plan.GEMV_SHAPES = {} or the table), one process each, two rounds, prompt 128, 64 new tokens; then the TP
# GPU tests on this main. Results in $OUT/tpshapes.tgz.
source scripts/device_lib.sh tpshapes
T0=$(date +%s)
for round in 1 2; do for p in llama-2-7b llama-2-13b; do for s in off on; do
  timeout 60 python3 - > $L/${p}_${s}_$round.log 2>&1 <<PY
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
if "$s" == "off":
    g.GEMV_SHAPES = {}
main("bench --backend cuda --preset $p --tp 2 --modes hybrid --prompt-lens 128 --new-tokens 64 --reps 2 --warmup 1 --no-plot --out $L/bench --stem ${p}_${s}_$round".split())
PY
  echo "=== $p shapes $s round $round rc $?: $(grep -E '^\| cugraphllm-hybrid-tp2 \| 128' $L/${p}_${s}_$round.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
done; done; done
t tp_tests 150 tests/test_tp_gpu.py tests/test_gemv_config.py
echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/tpshapes.tgz" -C /tmp tpshapes
