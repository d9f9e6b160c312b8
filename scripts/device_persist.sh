#!/bin/bash
# nvidia-h200-x2 call for the looping quantized GEMVs (QuantPlan.persist) and the custom all-reduce, parallel tracks
# (logs in one tarball under $OUT):
# GPU 0: quantized GEMV tests, half2 path; then 7B decode A/B of persist 0 / 1 per format (one process each);
# GPU 1: quantized GEMV tests, fp32 path; then bench_quant --sweep (warps, unroll, ksplit, hacc, persist);
# both:  the custom all-reduce tests, its nccl / custom A/B on 7B TP2, the TP suite on the default backend.
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
OUT=${OUT:-/tmp/out}; L=/tmp/persist; mkdir -p "$OUT" $L/bench; T0=$(date +%s)
t() { f=$1; s=$2; shift 2; timeout "$s" python3 -m pytest -q -x -m "gpu and not big" -p no:cacheprovider tests/"$f" "$@" \
        > $L/"${f%.py}$TAG".log 2>&1; echo "=== $f $TAG: $(tail -1 $L/"${f%.py}$TAG".log) [$(( $(date +%s) - T0 )) s]"
      grep -E "^(FAILED|ERROR)|^E  " $L/"${f%.py}$TAG".log | head -10; }
( export CUDA_VISIBLE_DEVICES=0 TAG=_h2
  t test_quant_gpu.py 220 -k h2acc
  for p in 0 1; do timeout 75 python3 - $p > $L/e2e_p$p.log 2>&1 <<'PY'
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
p = int(sys.argv[1])
for f in list(g.QUANT_PLANS):
    g.QUANT_PLANS[f] = dataclasses.replace(g.QUANT_PLANS[f], persist=p)
from cugraphllm.cli import main
for q in ("int4", "int8", "fp8"):
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,500",
          "--new-tokens", "64", "--reps", "2", "--warmup", "1", "--ttft-reps", "3", "--quant", q,
          "--out", "/tmp/persist/bench", "--stem", f"e2e_{q}_persist{p}", "--no-plot"])
PY
    echo "persist $p (int4, int8, fp8):"; grep -E "^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_p$p.log; done
) > $L/gpu0.txt 2>&1 &
( export CUDA_VISIBLE_DEVICES=1 TAG=_f32
  t test_quant_gpu.py 220 -k f32acc
  timeout 200 python3 -m scripts.bench_quant --sweep shapes --out $L/bench/quant_gemv_sweep.json > $L/sweep.log 2>&1
  grep -E "GEMVs per token" $L/sweep.log ) > $L/gpu1.txt 2>&1 &
( TAG= t test_allreduce_gpu.py 150
  timeout 150 python3 -m scripts.bench_allreduce --preset llama-2-7b --tp 2 --out $L/bench/allreduce_ab_7b.json \
    > $L/allreduce_ab.log 2>&1; grep -v "^\[bench_allreduce" $L/allreduce_ab.log | tail -10
  TAG= t test_tp_gpu.py 170 ) > $L/tp.txt 2>&1 &
wait
cat $L/gpu0.txt $L/gpu1.txt $L/tp.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/persist.tgz" -C /tmp persist
