#!/bin/bash
# One nvidia-h200-x2 call for the tensor-core GEMV path (QuantPlan.mma, kernels/gemv_quant_mma.cuh). GPU 0: the
# quantized GEMV tests under it, then the 16-bit GEMV / fused-norm tests (shared helpers changed in d92008e).
# GPU 1: bench_quant --sweep mma (each format's default plan first: the A/B of the same process), then 7B decode
# per format, default plan vs mma, one process each. Logs in one tarball under $OUT.
source scripts/device_lib.sh mma
( export CUDA_VISIBLE_DEVICES=0
  timeout 330 python3 -m pytest -q -m "gpu and not big" -p no:cacheprovider tests/test_quant_gpu.py -k "mma" > $L/tests_mma.log 2>&1
  echo "=== test_quant_gpu mma: $(tail -1 $L/tests_mma.log)"; grep -E "^(FAILED|ERROR)|Error|assert" $L/tests_mma.log | head -30
  timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gemv_gpu.py tests/test_fused_norm_gpu.py > $L/tests_16.log 2>&1
  echo "=== 16-bit gemv + fused norm: $(tail -1 $L/tests_16.log)"; grep -E "^(FAILED|ERROR)" $L/tests_16.log | head -12
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 220 python3 -m scripts.bench_quant --formats int4,int8,fp8 --sweep mma --no-table \
    --out $L/bench/quant_gemv_sweep_mma.json > $L/sweep.log 2>&1; tail -2 $L/sweep.log
  for m in 0 1; do
    timeout 150 python3 - $m > $L/e2e_$m.log 2>&1 <<'PY'
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
m = int(sys.argv[1])
for f in list(g.QUANT_PLANS):
    g.QUANT_PLANS[f] = dataclasses.replace(g.QUANT_PLANS[f], mma=m)
from cugraphllm.cli import main
for q in ("int4", "int8", "fp8"):
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,500",
          "--new-tokens", "64", "--reps", "2", "--warmup", "1", "--ttft-reps", "3", "--quant", q,
          "--out", "/tmp/mma/bench", "--stem", f"e2e_{q}_mma{m}", "--no-plot"])
PY
    echo "mma $m:"; grep -E "^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_$m.log; grep -E "Error|error" $L/e2e_$m.log | head -5
  done ) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
python3 - <<'PY'
import json, collections
d = json.load(open("/tmp/mma/bench/quant_gemv_sweep_mma.json"))
best = collections.defaultdict(list)
for r in d["sweep"]:
    if "us" in r:
        best[(r["format"], r["matrix"])].append((r["us"], {k: v for k, v in r.items() if k in ("default", "warps", "unroll", "ksplit")}))
for k, v in best.items():
    dflt = [u for u, c in v if "default" in c]
    print(k, "default %.2f" % dflt[0] if dflt else "", "best %.2f %s" % min(v, key=lambda x: x[0]))
PY
tar -czf "$OUT/mma.tgz" -C /tmp mma
