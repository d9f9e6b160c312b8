#!/bin/bash
# Sixth session (2026-11-30), nvidia-h200-x2, the two GPUs side by side: GPU 0 our 7B fp16 paper protocol (hybrid;
# 100 TTFT samples and 3 runs of 128 tokens per paper length: issue 13's table, P99 / P50 included), then the
# prefill anatomy per bucket (scripts/prefill_breakdown.py, rows 16 / 128 / 512); GPU 1 the compiled-torch peer
# (gpt-fast style, torch.compile decode + prefill) under the same protocol. Logs and JSON in $OUT/paper6.tgz.
source scripts/device_lib.sh paper6
T0=$(date +%s)
( export CUDA_VISIBLE_DEVICES=0
  timeout 300 python3 -m cugraphllm bench --backend cuda --paper --modes hybrid --new-tokens 128 --reps 3 \
    --warmup 1 --out $L/bench --stem bench_7b_paper6 --no-plot > $L/paper.log 2>&1
  echo "[paper rc $? at $(( $(date +%s) - T0 )) s]"; grep -E "^\| cugraphllm" $L/paper.log
  timeout 120 python3 -m scripts.prefill_breakdown --rows 16,128,512 > $L/prefill_breakdown.json 2> $L/prefill_breakdown.log
  echo "[breakdown rc $? at $(( $(date +%s) - T0 )) s]"; tail -c 1500 $L/prefill_breakdown.json
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 420 python3 -m scripts.bench_peers --systems gptfast-prefill --paper --reps 3 --budget-s 380 \
    --out $L/bench --stem peers_7b_paper6 --no-plot > $L/peers.log 2>&1
  echo "[peers rc $? at $(( $(date +%s) - T0 )) s]"; tail -14 $L/peers.log
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/paper6.tgz" -C /tmp paper6
