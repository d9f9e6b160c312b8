#!/bin/bash
# Eighth session (2026-11-30), nvidia-h200-x2, first call. A) GPU 0: 7B fp16 long prompts (1000 / 2000 / 3900
# tokens: TTFT and decode at ~3900 cached tokens); GPU 1 meanwhile: the single-GPU tests of code not yet run on a
# GPU (gemm_tune's buffer handling, the gemm rings move, GEMV shape overrides). B) GPU 0 alone: the paper protocol
# (100 TTFT samples, 3 runs of 128 tokens per paper length) for the P99 / P50 ratios. C) Both GPUs: the all-reduce
# and TP tests (lone-rank refactor, allreduce_layout split). D) 70B TP2 prefill graphs with token 0 vs random ids
# in their rows, and generate()'s GPU prefill, with SM clocks / power logged. Results in $OUT/floor8.tgz.
source scripts/device_lib.sh floor8
T0=$(date +%s)
nvidia-smi --query-gpu=timestamp,index,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv -lms 250 \
  > $L/clocks.csv 2>&1 &
SMI=$!
snap() { tar -czf "$OUT/floor8.tgz" -C /tmp floor8; }
( export CUDA_VISIBLE_DEVICES=0
  timeout 170 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --lengths 1000,2000,3900 \
    --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 5 --no-plot --out $L/bench --stem long_7b > $L/long.log 2>&1
  echo "=== long rc $? at $(( $(date +%s) - T0 )) s"; grep -E '^\| cugraphllm' $L/long.log ) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  t single 170 -n 6 tests/test_gemm_tune_gpu.py tests/test_gemv_gpu.py tests/test_gemm_gpu.py tests/test_pdl_gpu.py
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0; cat $L/gpu0.txt; wait $P1; cat $L/gpu1.txt  # not a bare wait: the clock logger never exits
echo "[A done at $(( $(date +%s) - T0 )) s]"; snap
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
  --paper --new-tokens 128 --reps 3 --warmup 1 --no-plot --out $L/bench --stem paper_7b > $L/paper.log 2>&1
echo "=== paper rc $? at $(( $(date +%s) - T0 )) s"; grep -E '^\| cugraphllm' $L/paper.log | head -20; snap
t peer 150 tests/test_allreduce_lamport_gpu.py tests/test_allreduce_gpu.py tests/test_tp_gpu.py
echo "[C done at $(( $(date +%s) - T0 )) s]"; snap
timeout 120 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,512 --reps 5 --rounds 3 \
  --random --partial 12 --order tune1 --out $L/gap_70b.json > $L/gap_70b.log 2>&1
echo "=== 70b gap rc $? at $(( $(date +%s) - T0 )) s"; grep setting $L/gap_70b.log
kill $SMI; echo "total $(( $(date +%s) - T0 )) s"
snap
