#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2: the prefill GEMM tuning (gpu/gemm_tune.py) off / on by the GPU time
# of the captured prefill graphs (scripts/prefill_ab.py, one engine per setting in one process): 7B on GPU 0 while
# 13B TP2 is not possible, then 70B TP2 on both GPUs. Tuned choices printed. Results in $OUT/tune2.tgz.
source scripts/device_lib.sh tune2
T0=$(date +%s)
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,64,128,256,512 \
  --order tune0,tune1,tune0,tune1 --out $L/ab_7b.json > $L/ab_7b.log 2>&1
echo "=== 7b rc $? at $(( $(date +%s) - T0 )) s"; cat $L/ab_7b.log | grep -v "^\s*$" | tail -60
timeout 200 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,256,512 --reps 5 \
  --order tune0,tune1 --out $L/ab_70b_tp2.json > $L/ab_70b.log 2>&1
echo "=== 70b tp2 rc $? at $(( $(date +%s) - T0 )) s"; cat $L/ab_70b.log | grep -v "^\s*$" | tail -40
tar -czf "$OUT/tune2.tgz" -C /tmp tune2
