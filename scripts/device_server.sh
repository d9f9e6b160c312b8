#!/bin/bash
# One nvidia-h200 call: what HTTP streaming adds to TTFT / inter-token latency over the library (7B dummy weights),
# the default server next to the variants that undo one latency choice each (scripts/serve_variant.py): early
# (the engine starts a stream before its headers are written), onewrite (the client sends headers and body in one
# write), h11 (no httptools). Alone on the machine: the thread hand-offs measured suffer from CPU contention.
# Needs .device/ as in scripts/device_final_tests.sh, with wheels of starlette, uvicorn, h11, click, sniffio, anyio
# and httptools (cp312 manylinux) in .device/whl/. ~3 minutes. Usage: bash scripts/device_server.sh
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -c "import httptools, uvloop; print('httptools', httptools.__version__, 'uvloop', uvloop.__version__)"
timeout 480 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
  --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 10 --warmup 4 \
  --variants default,early,onewrite,h11 --out "$OUT/server_7b.json" > "$OUT/server_7b.log" 2>&1
echo "exit $?"; grep -vE "^\[" "$OUT/server_7b.log" | tail -40
