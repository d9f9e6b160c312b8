#!/bin/bash
# Twelfth session (2026-11-30), nvidia-h200, < 7 minutes: GPU tests of the int4 tile paths under the new default
# (mma_waves=1) and after the bulk code was removed: the waves and cursor files, test_quant_gpu.py on its mma and
# half2 paths, the prologue tests; then 7B int4 decode as a control (its configs do not change).
source scripts/device_lib.sh s20e
t waves 120 -n 8 -rfE --tb=short tests/test_int4_tile_waves_gpu.py tests/test_qg_cursor_gpu.py; snap
t quant 200 -n 8 -rfE --tb=short tests/test_quant_gpu.py -k "mma or h2acc"; snap
t prologue 90 -n 8 -rfE --tb=short tests/test_quant_prologue_gpu.py; snap
timeout 60 python3 -m cugraphllm bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 \
  --no-plot --out $L/bench --quant int4 --preset llama-2-7b --lengths 10,500 --stem e2e_7b_int4 > $L/e2e_7b.log 2>&1
echo "=== 7b int4 rc $?: TPOT $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| 64' $L/e2e_7b.log | cut -d'|' -f3,7 | tr '\n' ' ')"
snap; echo "total $(( $(date +%s) - T0 )) s"
