#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2. The quantized GEMV prologue in one load round (branch prologue,
# merged) against main before it (.device/old = commit ffa666f), one process each: GPU 0 7B decode int4 (two
# rounds), fp8, int8, and 13B int4, prompt 10 / 500, 64 new tokens; GPU 1 meanwhile the quantized GPU tests on the
# new code. Results in $OUT/prologue.tgz.
source scripts/device_lib.sh prologue
T0=$(date +%s)
ab() {  # ab <tree: old|new> <tag> <seconds> <bench args...>
  local tree=$1 tag=$2 s=$3; shift 3
  local dir=$PWD; [ "$tree" = old ] && dir=$PWD/.device/old
  (cd $dir && timeout "$s" python3 -m cugraphllm bench --backend cuda --modes hybrid --no-plot --out $L/bench \
     --stem ${tag}_$tree "$@" > $L/${tag}_$tree.log 2>&1)
  echo "=== $tag $tree rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|500) ' $L/${tag}_$tree.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
}
( export CUDA_VISIBLE_DEVICES=0
  for r in 1 2; do for tree in old new; do ab $tree 7b_int4_r$r 60 --preset llama-2-7b --quant int4 --lengths 10,500 \
      --new-tokens 64 --reps 2 --warmup 1; done; done
  for f in fp8 int8; do for tree in old new; do ab $tree 7b_$f 60 --preset llama-2-7b --quant $f --lengths 10,500 \
      --new-tokens 64 --reps 2 --warmup 1; done; done
  for tree in old new; do ab $tree 13b_int4 90 --preset llama-2-13b --quant int4 --lengths 10,500 --new-tokens 64 \
      --reps 2 --warmup 1; done
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  t quant_prologue 150 -n 6 tests/test_quant_prologue_gpu.py
  t quant_tests 200 -n 6 tests/test_quant_gpu.py tests/test_quant_engine_gpu.py
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/prologue.tgz" -C /tmp prologue
