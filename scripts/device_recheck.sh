#!/bin/bash
# One nvidia-h200-x2 call for what session 9 fixed after its last GPU run (see its closing note), in parallel tracks:
# GPU 0: the single-GPU test files not yet re-run after the fixes, then the server overhead with its timeline;
# GPU 1: the quantized-GEMV tests (slow float64 70B references), then the int8 / int4 7B TTFT with the new prefill
# default (own / dequant); both GPUs: the TP tests. Logs in one tarball under $OUT (the device returns 8 files).
# Needs .device/ as in scripts/device_final_tests.sh, plus wheels of starlette, uvicorn, h11, click, sniffio, anyio
# (and httptools) in .device/whl/. Usage: bash scripts/device_recheck.sh
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
OUT=${OUT:-/tmp/out}; L=/tmp/recheck; mkdir -p "$OUT" $L/bench
t() { f=$1; s=$2; shift 2; timeout "$s" python3 -m pytest -q -m gpu -p no:cacheprovider tests/"$f" "$@" > $L/"${f%.py}".log 2>&1
      echo "=== $f: $(tail -1 $L/"${f%.py}".log)"; grep -E "^(FAILED|ERROR)" $L/"${f%.py}".log | head -6; }
( export CUDA_VISIBLE_DEVICES=0
  t test_memory_gpu.py 120; t test_engine_gpu.py 80; t test_server_gpu.py 40; t test_quant_engine_gpu.py 60
  timeout 100 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
    --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 4 \
    --out $L/bench/server_7b.json > $L/server.log 2>&1; tail -4 $L/server.log ) > $L/gpu0.txt 2>&1 &
( export CUDA_VISIBLE_DEVICES=1
  t test_quant_gpu.py 360 -k "not 70B"
  for q in int8 int4; do timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
    --prompt-lens 10,500 --new-tokens 128 --reps 2 --warmup 1 --ttft-reps 5 --quant $q --out $L/bench \
    --stem fmt_$q --no-plot > $L/fmt_$q.log 2>&1; grep -E "TTFT" $L/fmt_$q.log | tail -2; done ) > $L/gpu1.txt 2>&1 &
( t test_tp_gpu.py 200 ) > $L/tp.txt 2>&1 &
wait
cat $L/gpu0.txt $L/gpu1.txt $L/tp.txt
tar -czf "$OUT/recheck.tgz" -C /tmp recheck
