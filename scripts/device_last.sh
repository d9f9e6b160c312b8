#!/bin/bash
# A short nvidia-h200 call: the looping-grid GEMV test (its vector case had a test bug: head_dim 25), and the
# server's HTTP overhead with the timeline split into read / parsed / tokenized (variants default, onewrite).
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
OUT=${OUT:-/tmp/out}; L=/tmp/last; mkdir -p "$OUT" $L
timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_quant_gpu.py -k looping_grid > $L/looping.log 2>&1
tail -3 $L/looping.log
timeout 130 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
  --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 8 --warmup 3 \
  --variants default,onewrite --out $L/server_7b.json > $L/server.log 2>&1; grep -vE "^\[" $L/server.log | tail -16
tar -czf "$OUT/last.tgz" -C /tmp last
