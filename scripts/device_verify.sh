#!/bin/bash
# One nvidia-h200-x2 call. GPU 0: the quantized GEMV tests on the half2 path (shared kernel helpers of d92008e, PDL),
# the engine tests (decode attention now triggers PDL). GPU 1: the quantized engine tests; int4 / int8 TTFT with
# dequant slabs of 32 / 12 / 6 MB (does a slab pair that fits in L2 save the HBM round trip?); more int4 tile
# shapes; 7B int4 decode (default plan: tiles) with PDL off and on, one process each.
source scripts/device_lib.sh verify
( export CUDA_VISIBLE_DEVICES=0
  t quant_h2 330 tests/test_quant_gpu.py -k "h2acc"
  t engine 120 tests/test_engine_gpu.py tests/test_pdl_gpu.py
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  t quant_engine 150 tests/test_quant_engine_gpu.py
  timeout 130 python3 - > $L/slabs.log 2>&1 <<'PY'
from cugraphllm.gpu import quant_slabs
from cugraphllm.cli import main
for q in ("int4", "int8"):
    for mb in (32, 12, 6):
        quant_slabs.SLAB_BYTES = mb << 20
        print(f"### {q} slab {mb} MB", flush=True)
        main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "128,500",
              "--new-tokens", "8", "--reps", "1", "--warmup", "1", "--ttft-reps", "5", "--quant", q,
              "--out", "/tmp/verify/bench", "--stem", f"slab_{q}_{mb}", "--no-plot"])
PY
  grep -E "^### |^\| cugraphllm-hybrid \| (128|500) \| 8 " $L/slabs.log; grep -E "Error" $L/slabs.log | head -3
  timeout 80 python3 -m scripts.bench_quant --formats int4 --sweep mma2 --no-table \
    --out $L/bench/quant_gemv_sweep_mma2.json > $L/sweep.log 2>&1; grep "^sweep" $L/sweep.log
  for P in 0 1; do
    CUGRAPHLLM_PDL=$P timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid \
      --prompt-lens 10,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --quant int4 --out $L/bench \
      --stem e2e_int4_pdl$P --no-plot > $L/e2e_$P.log 2>&1
    echo "int4 pdl=$P"; grep -E "^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_$P.log
  done
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/verify.tgz" -C /tmp verify
