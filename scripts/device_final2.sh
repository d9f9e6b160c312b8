#!/bin/bash
# Session 10's last nvidia-h200-x2 call, parallel tracks (logs in one tarball under $OUT):
# GPU 0: quantized GEMV tests on the half2 path, quantized engine tests, the server's HTTP overhead, then the 7B
#        decode A/B of looping (persist) vs one-block-per-pair quantized GEMVs per format, in one process each;
# GPU 1: quantized GEMV tests on the fp32 path, then the torch int8 / int4 peers;
# both:  the custom all-reduce tests, its nccl / custom A/B on 7B TP2, the TP suite on the default backend.
set -u
bash .device/prep.sh && export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl 2>/dev/null
export PYTHONUNBUFFERED=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 CUGRAPHLLM_SHARED=$PWD/.device/shared
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
OUT=${OUT:-/tmp/out}; L=/tmp/final2; mkdir -p "$OUT" $L/bench; T0=$(date +%s)
t() { f=$1; s=$2; shift 2; timeout "$s" python3 -m pytest -q -m "gpu and not big" -p no:cacheprovider tests/"$f" "$@" \
        > $L/"${f%.py}$TAG".log 2>&1; echo "=== $f $TAG: $(tail -1 $L/"${f%.py}$TAG".log) [$(( $(date +%s) - T0 )) s]"
      grep -E "^(FAILED|ERROR)" $L/"${f%.py}$TAG".log | head -8; }
( export CUDA_VISIBLE_DEVICES=0 TAG=_h2
  t test_quant_gpu.py 230 -k h2acc; TAG= t test_quant_engine_gpu.py 60; TAG= t test_server_gpu.py 40
  timeout 70 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
    --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 8 \
    --out $L/bench/server_7b.json > $L/server.log 2>&1; grep -E "TTFT median|server side|parser|loop" $L/server.log | tail -6
  for p in 0 1; do timeout 70 python3 - $p > $L/e2e_p$p.log 2>&1 <<'PY'
import dataclasses, sys
from cugraphllm.gpu import gemv_plan as g
p = int(sys.argv[1])
for f in list(g.QUANT_PLANS):
    g.QUANT_PLANS[f] = dataclasses.replace(g.QUANT_PLANS[f], persist=p)
from cugraphllm.cli import main
for q in ("int4", "int8", "fp8"):
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,500",
          "--new-tokens", "64", "--reps", "2", "--warmup", "1", "--ttft-reps", "3", "--quant", q,
          "--out", "/tmp/final2/bench", "--stem", f"e2e_{q}_persist{p}", "--no-plot"])
PY
    echo "persist $p:"; grep -E "^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_p$p.log; done
) > $L/gpu0.txt 2>&1 &
( export CUDA_VISIBLE_DEVICES=1 TAG=_f32
  t test_quant_gpu.py 230 -k f32acc
  timeout 200 python3 -m scripts.bench_peers --systems gptfast-int8,gptfast-int4 --prompt-lens 10,128,500 \
    --new-tokens 128 --reps 3 --ttft-reps 10 --budget-s 190 --out $L/bench --stem peers_quant_7b > $L/peers.log 2>&1
  tail -12 $L/peers.log ) > $L/gpu1.txt 2>&1 &
( TAG= t test_allreduce_gpu.py 150
  timeout 150 python3 -m scripts.bench_allreduce --preset llama-2-7b --tp 2 --out $L/bench/allreduce_ab_7b.json \
    > $L/allreduce_ab.log 2>&1; grep -v "^\[bench_allreduce" $L/allreduce_ab.log | tail -8
  TAG= t test_tp_gpu.py 170 ) > $L/tp.txt 2>&1 &
wait
cat $L/gpu0.txt $L/gpu1.txt $L/tp.txt; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/final2.tgz" -C /tmp final2
