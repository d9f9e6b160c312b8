#!/bin/bash
# Ninth session, call 4 (nvidia-h200-x2), short: GPU 0 runs the prologue branch's TP1 localization tests
# (.device/plg: the one-GPU int4 engine vs NumPy under plan variants, the TP1 chains) while GPU 1 runs the fp8
# prefill / engine tests under the new default (CUGRAPHLLM_FP8_FUSE_ACTQ=2); then 7B fp8 bench with the default
# alone on GPU 0 (10 / 128 / 500 tokens, 64 new). Results in $OUT/s17d.tgz.
source scripts/device_lib.sh s17d
T0=$(date +%s)
snap() { tar -czf "$OUT/s17d.tgz" -C /tmp s17d; echo "[at $(( $(date +%s) - T0 )) s]"; }
( cd .device/plg && CUDA_VISIBLE_DEVICES=0 t plg 170 -rA --tb=line tests/test_quant_prologue_tp_gpu.py \
    -k "tp1_int4_engine_variants or (engine_order_chain and (tp1_w13 or tp1_head))" ) &
PA=$!
CUDA_VISIBLE_DEVICES=1 t fp8 170 -n 6 -rfE --tb=short tests/test_fp8_actq_gpu.py tests/test_fp8_lt_gpu.py \
  tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py &
PB=$!
wait $PA; wait $PB
grep -E "^(PASSED|FAILED|ERROR)" $L/plg.log | head -20; grep -E "^/.*(Error|assert)" $L/plg.log | head -12; snap
CUDA_VISIBLE_DEVICES=0 timeout 70 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --quant fp8 \
  --modes hybrid --lengths 10,128,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 5 --no-plot \
  --out $L/bench --stem fp8_default > $L/fp8_default.log 2>&1
echo "=== fp8 default rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|128|500) \| 64' $L/fp8_default.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
snap
