#!/bin/bash
# CUGRAPHLLM_QG_CURSOR (nvidia-h200, < 8 minutes): the int4 tile GEMVs' load path through per-lane cursors
# (kernels/gemv_quant_cursor.cuh, 1) against today's loop (0, the default).
#  1) tests/test_qg_cursor_gpu.py (0 vs 1 bit identity of the qkv / SiLU / logits tiles, 7B and awkward shapes; two
#     cases against float64) and tests/test_quant_gpu.py -k mma (the tile path's accuracy tests), -n 8;
#  2) scripts.int4_knockout (7B wqkv+norm / w13+norm graph-timed with phases knocked out, and the bare read floor)
#     under 0 and under 1;
#  3) the 7B int4 hybrid bench at prompts 10 / 500 (TPOT, GPU ms a step), one process each, alternating 0 / 1 / 1 / 0;
#  4) where time is left: tests/test_quant_gpu.py -k mma again with CUGRAPHLLM_QG_CURSOR=1 (the tile accuracy tests
#     on the cursor loop).
# A step that could pass the 470 s mark is skipped (said so). Results in $OUT/qg_cursor.tgz after each step.
source scripts/device_lib.sh qg_cursor
T0=$(date +%s)
snap() { tar -czf "$OUT/qg_cursor.tgz" -C /tmp qg_cursor; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le 470 ] || { echo "=== skipped ($2): would pass 470 s"; false; }; }
nvidia-smi -L
t tests 150 -n 8 -rfE --tb=short tests/test_qg_cursor_gpu.py tests/test_quant_gpu.py -k "qg_cursor or mma"
snap
for c in 0 1; do
  if fits 75 "knockout c$c"; then
    CUGRAPHLLM_QG_CURSOR=$c timeout 75 python3 -m scripts.int4_knockout --out $L/knockout_c$c.json \
      > $L/knockout_c$c.log 2>&1
    echo "=== int4_knockout QG_CURSOR=$c rc $?"; grep -E " us$" $L/knockout_c$c.log
  fi
  snap
done
for c in 0 1 1 0; do
  if fits 60 "bench c$c"; then
    stem=int4_c${c}_$(( $(date +%s) - T0 ))
    CUGRAPHLLM_QG_CURSOR=$c timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
      --lengths 10,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --quant int4 --no-plot --out $L/bench \
      --stem $stem > $L/$stem.log 2>&1
    echo "=== bench QG_CURSOR=$c rc $?: TPOT $(grep -E '^\| cugraphllm-hybrid \| (10|500) \| 64' $L/$stem.log \
      | cut -d'|' -f3,7 | tr '\n' ' ') GPU step $(grep -E '^\| cugraphllm-hybrid \| (10|500) \| [0-9.]+ / ' \
      $L/$stem.log | cut -d'|' -f3,5 | tr '\n' ' ')"
  fi
  snap
done
if fits 100 "quant mma tests under QG_CURSOR=1"; then
  export CUGRAPHLLM_QG_CURSOR=1
  t quant_mma_c1 95 -n 8 -rfE --tb=short tests/test_quant_gpu.py -k mma
  unset CUGRAPHLLM_QG_CURSOR
  snap
fi
echo "total $(( $(date +%s) - T0 )) s"
