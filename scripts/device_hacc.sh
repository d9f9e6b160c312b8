#!/bin/bash
# One nvidia-h200-x2 call for the quantized GEMVs' half2 path (QuantPlan.hacc): GPU 0 runs its kernel tests; GPU 1
# sweeps the launch shapes under both paths (bench_quant --sweep) and A/Bs 7B decode, fp32 vs half2 products, per
# format, in one process each. Logs in one tarball under $OUT. Usage: bash scripts/device_hacc.sh
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
OUT=${OUT:-/tmp/out}; L=/tmp/hacc; mkdir -p "$OUT" $L/bench
( export CUDA_VISIBLE_DEVICES=0
  timeout 420 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_quant_gpu.py -k "h2acc" -x > $L/tests_h2.log 2>&1
  echo "=== test_quant_gpu h2acc: $(tail -1 $L/tests_h2.log)"; grep -E "^(FAILED|ERROR)|Error|assert" $L/tests_h2.log | head -12
) > $L/gpu0.txt 2>&1 &
( export CUDA_VISIBLE_DEVICES=1
  timeout 240 python3 -m scripts.bench_quant --sweep shapes --out $L/bench/quant_gemv_sweep.json > $L/sweep.log 2>&1
  grep -E "GEMVs per token" $L/sweep.log
  for h in 0 1; do
    timeout 150 python3 - $h > $L/e2e_$h.log 2>&1 <<'PY'
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
h = int(sys.argv[1])
for f in list(g.QUANT_PLANS):
    g.QUANT_PLANS[f] = dataclasses.replace(g.QUANT_PLANS[f], hacc=h)
from cugraphllm.cli import main
for q in ("int4", "int8", "fp8"):
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,500",
          "--new-tokens", "64", "--reps", "2", "--warmup", "1", "--ttft-reps", "3", "--quant", q,
          "--out", "/tmp/hacc/bench", "--stem", f"e2e_{q}_h{h}", "--no-plot"])
PY
    echo "hacc $h:"; grep -E "^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_$h.log
  done ) > $L/gpu1.txt 2>&1 &
wait
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/hacc.tgz" -C /tmp hacc
