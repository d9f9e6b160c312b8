#!/bin/bash
# Session 10's last nvidia-h200-x2 call, parallel tracks (logs in one tarball under $OUT):
# GPU 0: the quantized GEMV tests scripts/device_persist.sh did not reach (node ids in .device/rest_h2.txt), the
#        quantized prefill slab tests, quantized engine and server tests, the server's HTTP overhead, int4 / int8
#        7B with the dequant slabs overlapped or not (one process per setting);
# GPU 1: the rest of the fp32-path GEMV tests (.device/rest_f32.txt), the torch int8 / int4 peers, then an ncu
#        profile of one int4 GEMV (if ncu is installed).
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
OUT=${OUT:-/tmp/out}; L=/tmp/final2; mkdir -p "$OUT" $L/bench; T0=$(date +%s)
( sleep 520; pkill -f "python3 -"; pkill -f "ncu --"; pkill -f "bench_server" ) > /dev/null 2>&1 &  # tar still runs
WD=$!
t() { n=$1; s=$2; shift 2; timeout "$s" python3 -m pytest -q -m "gpu and not big" -p no:cacheprovider "$@" \
        > $L/$n.log 2>&1; echo "=== $n: $(tail -1 $L/$n.log) [$(( $(date +%s) - T0 )) s]"
      grep -E "^(FAILED|ERROR)|^E  " $L/$n.log | head -10; }
( export CUDA_VISIBLE_DEVICES=0
  t quant_gpu_rest_h2 200 $(cat .device/rest_h2.txt)
  t quant_prefill_slabs 90 tests/test_quant_prefill_gpu.py -k "dequant_slabs or graph_replay or (residual and 512)"
  t quant_engine 60 tests/test_quant_engine_gpu.py; t server_gpu 40 tests/test_server_gpu.py
  timeout 150 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
    --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 8 --warmup 3 \
    --variants default,h11 --out $L/bench/server_7b.json > $L/server.log 2>&1; grep -vE "^\[" $L/server.log | tail -16
  for p in 0 1; do timeout 90 python3 - $p > $L/e2e_pipe$p.log 2>&1 <<'PY'
import sys
from cugraphllm.gpu import quant_slabs
quant_slabs.PIPE = bool(int(sys.argv[1]))
from cugraphllm.cli import main
for q in ("int4", "int8"):
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,128,500",
          "--new-tokens", "32", "--reps", "1", "--warmup", "1", "--ttft-reps", "5", "--quant", q,
          "--out", "/tmp/final2/bench", "--stem", f"e2e_{q}_pipe{sys.argv[1]}", "--no-plot"])
PY
    echo "pipe $p (int4, int8):"; grep -E "^\| cugraphllm-hybrid \| [0-9]+ \| 32" $L/e2e_pipe$p.log; done
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  t quant_gpu_rest_f32 200 $(cat .device/rest_f32.txt)
  timeout 200 python3 -m scripts.bench_peers --systems gptfast-int8,gptfast-int4 --prompt-lens 10,128,500 \
    --new-tokens 128 --reps 3 --ttft-reps 10 --budget-s 190 --out $L/bench --stem peers_quant_7b > $L/peers.log 2>&1
  tail -14 $L/peers.log
  if command -v ncu > /dev/null; then timeout 90 ncu --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section WarpStateStats --section Occupancy -k regex:qgemv_silu_norm -c 1 python3 -m scripts.bench_quant \
      --formats int4 > $L/ncu_int4_w13.log 2>&1; grep -E "Throughput|Stall|Occupancy|Duration" $L/ncu_int4_w13.log | head -30
  else echo "no ncu on this machine"; fi
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1; kill $WD 2>/dev/null
cat $L/gpu0.txt $L/gpu1.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/final2.tgz" -C /tmp final2
