#!/bin/bash
# Last call of the seventh session (2026-11-30), nvidia-h200-x2, one GPU per track. GPU 0: the engine, decode-graph
# and quantized-engine GPU tests on this main. GPU 1: 7B fp16 TTFT at 10 tokens with the own prefill GEMM's configs
# at 16 rows as they are vs the sweep's picks (qkv 2x4x2 + L2 prefetch hint 128 B, silu 2x2x2 + 256 B, residual
# 1x8x2 with one reduction barrier), two rounds, one process each; then 7B int8 with the quantized GEMV prologue
# (main) vs the commit before it (.device/old), two rounds. Results in $OUT/final7.tgz.
source scripts/device_lib.sh final7
T0=$(date +%s)
( export CUDA_VISIBLE_DEVICES=0
  t engine_tests 230 -n 6 tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_quant_engine_gpu.py
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  for r in 1 2; do for c in old new; do
    timeout 60 python3 - > $L/m16_${c}_$r.log 2>&1 <<PY
from cugraphllm.gpu import gemm
from cugraphllm.cli import main
if "$c" == "new":
    gemm.OWN_CONFIG.update({("qkv", 2): (2, 4, 2, 1, 0, 1), ("silu", 2): (2, 2, 2, 1, 0, 2),
                            ("residual", 2): (1, 8, 2, 1, 0, 0, 0, 1)})
main("bench --backend cuda --preset llama-2-7b --modes hybrid --lengths 10,16 --new-tokens 16 --reps 2 --ttft-reps 20 --warmup 1 --no-plot --out $L/bench --stem m16_${c}_$r".split())
PY
    echo "=== m16 $c round $r rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|16) ' $L/m16_${c}_$r.log | cut -d'|' -f3,4,5 | tr '\n' ' ')"
  done; done
  for r in 1 2; do for tree in old new; do
    dir=$PWD; [ $tree = old ] && dir=$PWD/.device/old
    (cd $dir && timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --quant int8 --modes hybrid \
       --lengths 10,500 --new-tokens 64 --reps 2 --warmup 1 --no-plot --out $L/bench --stem int8_${tree}_$r \
       > $L/int8_${tree}_$r.log 2>&1)
    echo "=== int8 $tree round $r rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|500) ' $L/int8_${tree}_$r.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
  done; done
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/final7.tgz" -C /tmp final7
