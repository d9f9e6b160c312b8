#!/bin/bash
# One nvidia-h200-x2 call for programmatic dependent launch (gpu/pdl.py) and the mixed int4 plan (tensor-core tiles
# on wqkv / w13 / LM head). GPU 0: PDL, engine, 16-bit GEMV and int4 tensor-core GEMV tests. GPU 1: 7B decode per
# format with PDL off and on (one process each, same call): fp16, int4 (half2), int4 (+mma), int8, fp8.
source scripts/device_lib.sh pdl
( export CUDA_VISIBLE_DEVICES=0
  t pdl 150 tests/test_pdl_gpu.py
  t engine 200 tests/test_engine_gpu.py
  t gemv16 100 tests/test_gemv_gpu.py tests/test_fused_norm_gpu.py
  t quant_mma_int4 120 tests/test_quant_gpu.py -k "mma and int4"
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  for P in 0 1; do
    CUGRAPHLLM_PDL=$P timeout 270 python3 - $P > $L/e2e_pdl$P.log 2>&1 <<'PY'
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
P = sys.argv[1]
keep = g.QUANT_PLANS["int4"]
for q, mma in (("fp16", 0), ("int4", 0), ("int4", 1), ("int8", 0), ("fp8", 0)):
    g.QUANT_PLANS["int4"] = dataclasses.replace(keep, mma=mma)
    quant = [] if q == "fp16" else ["--quant", q]
    print(f"### {q} mma={mma} pdl={P}", flush=True)
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,500",
          "--new-tokens", "64", "--reps", "2", "--warmup", "1", "--ttft-reps", "3", *quant,
          "--out", "/tmp/pdl/bench", "--stem", f"e2e_{q}_mma{mma}_pdl{P}", "--no-plot"])
PY
    grep -E "^### |^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_pdl$P.log; grep -E "Error|error" $L/e2e_pdl$P.log | head -5
  done ) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/pdl.tgz" -C /tmp pdl
