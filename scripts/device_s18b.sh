#!/bin/bash
# Session 18 call 2 (nvidia-h200-x2, branch s18 = main + prologue-fix with QG_LDCG on + gemv-early-epi).
# GPU 1: scripts/device_gemv_early.sh (GEMV_EARLY 0 / 1: its GPU tests, then decode_anatomy and the 7B fp16 bench
# alternating; < 470 s). GPU 0: the quantized GPU tests under the merged defaults, then 7B decode per quantized
# format (one process each). Both GPUs at the end, if the clock allows: the TP quantized tests.
source scripts/device_lib.sh s18b
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
( CUDA_VISIBLE_DEVICES=1 bash scripts/device_gemv_early.sh > $L/gemv_early_run.txt 2>&1 ) &
PG=$!
sleep 25  # its wheel install into /tmp/site first
( export CUDA_VISIBLE_DEVICES=0
  t quant 200 -n 6 -rfE --tb=short tests/test_quant_gpu.py tests/test_quant_tc_gpu.py tests/test_quant_engine_gpu.py \
    tests/test_quant_load_gpu.py tests/test_quant_prologue_gpu.py
  for q in int4 fp8 int8; do
    if [ $(( $(el) + 55 )) -gt 500 ]; then echo "=== $q skipped at $(el) s"; continue; fi
    timeout 50 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --lengths 10,500 \
      --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --stem q_$q --quant $q \
      > $L/q_$q.log 2>&1
    echo "=== 7B $q rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|500) ' $L/q_$q.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
  done ) > $L/gpu0.txt 2>&1
cat $L/gpu0.txt
tar -czf "$OUT/s18b.tgz" -C /tmp s18b
wait $PG
cat $L/gemv_early_run.txt
echo "[gemv early done at $(el) s]"
if [ $(el) -lt 440 ]; then t tpq 120 -rfE --tb=short tests/test_tp_gpu.py -k quantized; fi
echo "total $(el) s"
tar -czf "$OUT/s18b.tgz" -C /tmp s18b
