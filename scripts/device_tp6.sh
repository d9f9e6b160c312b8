#!/bin/bash
# Sixth session (2026-11-30), nvidia-h200-x2: issue 11's TP table re-measured on today's main (custom all-reduce
# fused with the residual update, PDL everywhere; the last TP2 figures for 13B / 70B were NCCL-era), and the new row
# 70B int4 TP2 (plus 7B int4 TP2). `bench --tp 2`, hybrid, greedy, 128 new tokens, prompts 128 / 500, dummy
# weights. Outputs under $OUT: tp_bench.json (one bench document per run), tp_bench.md, tp6.log.
# Usage: bash scripts/device_tp6.sh
source scripts/device_lib.sh tp6
B=$L/bench; T0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/tp6.log"
bench() {  # bench <seconds> <preset> <stem> [extra bench args]
  local s=$1 p=$2 stem=$3; shift 3
  timeout "$s" python3 -m cugraphllm bench --backend cuda --preset "$p" --tp 2 --modes hybrid --lengths 128,500 \
    --new-tokens 128 --reps 2 --warmup 1 --out "$B" --stem "$stem" --no-plot "$@" >> "$OUT/tp6.log" 2>&1
  echo "[$stem rc $? at $(( $(date +%s) - T0 )) s]" | tee -a "$OUT/tp6.log"
}
bench 70 llama-2-7b tp2_7b
bench 80 llama-2-13b tp2_13b
bench 150 llama-2-70b tp2_70b
bench 150 llama-2-70b tp2_70b_int4 --quant int4
bench 80 llama-2-7b tp2_7b_int4 --quant int4
python3 -m scripts.tp_bench_summary "$B" "$OUT"
echo "total $(( $(date +%s) - T0 )) s"
