#!/bin/bash
# One nvidia-h200 call: the HTTP TTFT overhead of 2026-12's server path (first chunk written by the engine thread,
# generation POSTs past Starlette's router) against the old path (variant legacy), with one change undone
# (nodirect) and one candidate (releasefirst: the job released just before the headers), all servers up at once
# and every prompt timed through each side in a random order (--interleave: one 7B dummy model per server, ~70 GB);
# then the same pair with a client that sends headers and body in one write. Setup as scripts/device_server.sh.
# Not run yet: the server start-up (dummy weights, graphs) sets the time; up to ~9 minutes.
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T=.device/shared/models/llama2-tokenizer/tokenizer.model
B="python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 --tokenizer $T"
timeout 330 $B --new-tokens 16 --reps 30 --warmup 3 --interleave --variants default,legacy,nodirect,releasefirst \
  --out "$OUT/server_7b_ab.json" > "$OUT/server_7b_ab.log" 2>&1
echo "exit $?"; grep -E "TTFT (median|less)|server side" "$OUT/server_7b_ab.log"
timeout 200 $B --new-tokens 16 --reps 30 --warmup 3 --interleave --variants default+onewrite,legacy+onewrite \
  --out "$OUT/server_7b_ab_onewrite.json" > "$OUT/server_7b_ab_onewrite.log" 2>&1
echo "exit $?"; grep -E "TTFT (median|less)" "$OUT/server_7b_ab_onewrite.log"
