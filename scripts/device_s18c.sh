#!/bin/bash
# Session 18 call 3 (nvidia-h200-x2, branch s18c = main + prologue-fix (QG_LDCG on) + gemv-early-epi (GEMV_EARLY
# bits, default 1) + dedup-greedy-exit + lt-search + prefill-chunk).
# GPU 0: tests/test_prefill_rows_gpu.py, then 7B fp16 TTFT at 1000 / 2000 / 3900 tokens with --prefill-rows 512 /
#        2048 / 512 / 2048 (one process each).
# GPU 1: the sampler GPU tests (dedup-greedy-exit), the GEMV_EARLY bit-identity tests, tests/test_lt_search_gpu.py,
#        then scripts/lt_algo_search (cuBLASLt configurations beyond the heuristic, 7B prefill shapes, 128 / 512 rows).
# Both, from ~330 s: 7B TP2 decode (prompts 128 / 500, 128 new tokens) with GEMV_EARLY 0 / 1 / 1 / 0.
source scripts/device_lib.sh s18c
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
snap() { tar -czf "$OUT/s18c.tgz" -C /tmp s18c; }
( export CUDA_VISIBLE_DEVICES=0
  t rows 160 -rfE --tb=short tests/test_prefill_rows_gpu.py
  for n in 512 2048 512 2048; do
    [ $(( $(el) + 70 )) -gt 330 ] && { echo "=== rows $n skipped at $(el) s"; continue; }
    stem=long_rows${n}_$(el)
    timeout 70 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
      --lengths 1000,2000,3900 --new-tokens 8 --reps 1 --warmup 1 --ttft-reps 3 --max-seq-len 4096 \
      --prefill-rows $n --no-plot --out $L/bench --stem $stem > $L/$stem.log 2>&1
    echo "=== rows $n rc $? at $(el) s: TTFT $(grep -E '^\| cugraphllm-hybrid \| (1000|2000|3900) \| 8 ' \
      $L/$stem.log | cut -d'|' -f3,5,6 | tr '\n' ' ')"
  done ) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  t samp 120 -n 6 -rfE --tb=short tests/test_sampling_gpu.py tests/test_sampling_v2_gpu.py tests/test_sampling_v3_gpu.py \
    tests/test_gemv_early_gpu.py
  t lt 60 -rfE --tb=short tests/test_lt_search_gpu.py
  timeout $(( 320 - $(el) )) python3 -m scripts.lt_algo_search --seconds 12 --out $L/lt_algo_search.json \
    > $L/lt_search.log 2>&1
  echo "=== lt search rc $? at $(el) s"; tail -n 24 $L/lt_search.log ) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0; wait $P1
cat $L/gpu0.txt $L/gpu1.txt; snap
for e in 0 1 1 0; do
  [ $(( $(el) + 75 )) -gt 560 ] && { echo "=== tp2 e$e skipped at $(el) s"; continue; }
  stem=tp2_7b_e${e}_$(el)
  CUGRAPHLLM_GEMV_EARLY=$e timeout 75 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --tp 2 \
    --modes hybrid --lengths 128,500 --new-tokens 128 --reps 2 --warmup 1 --out $L/bench --stem $stem --no-plot \
    > $L/$stem.log 2>&1
  echo "=== tp2 7b GEMV_EARLY=$e rc $? at $(el) s: $(grep -E '^\| cugraphllm-hybrid-tp2 \| (128|500) ' $L/$stem.log \
    | cut -d'|' -f3,5,7 | tr '\n' ' ')"
done
echo "total $(el) s"; snap
