#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2. 1) The all-reduce GPU tests (lamport above the decode cap, the fused
# prefill add). 2) 70B TP2 prefill graphs: NCCL for the prefill all-reduces vs lamport (unfused, then fused with the
# residual add; the default), scripts/prefill_ab.py. 3) The TP2 table on this main (bench --tp 2, prompts 128 / 500,
# 128 new tokens). 4) The quantized GEMV prologue (main) against the commit before it (.device/old), one GPU per
# format with nothing else running: int4 on GPU 0, fp8 on GPU 1, two rounds. Results in $OUT/arbig.tgz.
source scripts/device_lib.sh arbig
T0=$(date +%s)
t allreduce_tests 170 tests/test_allreduce_lamport_gpu.py tests/test_allreduce_gpu.py
echo "[at $(( $(date +%s) - T0 )) s]"
timeout 150 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,512 --reps 5 \
  --order "CUGRAPHLLM_ALLREDUCE=nccl,CUGRAPHLLM_ALLREDUCE_FUSE=0,CUGRAPHLLM_ALLREDUCE_FUSE=1" \
  --out $L/ab_70b_ar.json > $L/ab_70b_ar.log 2>&1
echo "=== 70b prefill rc $? at $(( $(date +%s) - T0 )) s"; grep setting $L/ab_70b_ar.log
for p in llama-2-7b llama-2-13b llama-2-70b; do
  timeout 80 python3 -m cugraphllm bench --backend cuda --preset $p --tp 2 --modes hybrid --lengths 128,500 \
    --new-tokens 128 --reps 2 --warmup 1 --out $L/bench --stem tp2_$p --no-plot > $L/tp2_$p.log 2>&1
  echo "=== tp2 $p rc $? at $(( $(date +%s) - T0 )) s: $(grep -E '^\| cugraphllm-hybrid-tp2 \| (128|500) ' $L/tp2_$p.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
done
ab() {  # ab <tree: old|new> <tag> <bench args...>
  local tree=$1 tag=$2; shift 2
  local dir=$PWD; [ "$tree" = old ] && dir=$PWD/.device/old
  (cd $dir && timeout 60 python3 -m cugraphllm bench --backend cuda --modes hybrid --no-plot --out $L/bench \
     --stem ${tag}_$tree "$@" > $L/${tag}_$tree.log 2>&1)
  echo "=== $tag $tree rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|500) ' $L/${tag}_$tree.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
}
for g in 0 1; do
  ( export CUDA_VISIBLE_DEVICES=$g; f=$([ $g = 0 ] && echo int4 || echo fp8)
    for r in 1 2; do for tree in old new; do ab $tree 7b_${f}_r$r --preset llama-2-7b --quant $f --lengths 10,500 \
        --new-tokens 64 --reps 2 --warmup 1; done; done ) > $L/gpu$g.txt 2>&1 &
done
wait
cat $L/gpu0.txt $L/gpu1.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/arbig.tgz" -C /tmp arbig
