#!/bin/bash
# Eleventh session, fifth call (nvidia-h200-x2, < 9 minutes): after the 8-warps-a-tile fix (7B wo / w2 back on the
# half2 path; 13B wo / w2 and 70B wqkv on mma_shapes tiles): the int4 GPU files that failed or were not reached in
# s19d, split over both GPUs (GPU 0: the TP1 prologue variants, PDL, engine, knockout and cursor files; GPU 1:
# test_quant_gpu's int4 tiles and half2 paths), then the TP=2 quantized tests on both (the tp_engine change: gemm_quant
# buffers allocated once per GPU, and the pre-flight counting them), then a 7B int4 bench if time is left.
source scripts/device_lib.sh s19e
T0=$(date +%s)
snap() { tar -czf "$OUT/s19e.tgz" -C /tmp s19e; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le 520 ] || { echo "=== skipped ($2): would pass 520 s"; false; }; }
nvidia-smi -L
( export CUDA_VISIBLE_DEVICES=0; t one 280 -n 6 -rfE --tb=short tests/test_quant_prologue_tp_gpu.py tests/test_pdl_gpu.py \
    tests/test_quant_engine_gpu.py tests/test_quant_knockout_gpu.py tests/test_qg_cursor_gpu.py ) &
( export CUDA_VISIBLE_DEVICES=1; t quant 280 -n 6 -rfE --tb=short tests/test_quant_gpu.py -k "int4 and (mma or h2acc)" ) &
wait; snap
if fits 150 "tp2"; then t tp 150 -rfE --tb=short tests/test_tp_gpu.py -k "quantized"; snap; fi
if fits 45 "7b int4"; then
  CUDA_VISIBLE_DEVICES=0 timeout 45 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
    --lengths 10,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --quant int4 --no-plot --out $L/bench \
    --stem e2e_7b_int4 > $L/e2e_7b.log 2>&1
  echo "=== 7b int4 rc $?: $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| 64' $L/e2e_7b.log | cut -d'|' -f3,7 | tr '\n' ' ')"
  snap
fi
echo "total $(( $(date +%s) - T0 )) s"
