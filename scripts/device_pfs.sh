#!/bin/bash
# One nvidia-h200-x2 call for the L2 prefetch-ahead of the quantized GEMVs (QuantPlan.pfs). GPU 0: the PDL chain
# tests (fixed), then bench_quant --sweep pfs (each format's default plan first). GPU 1: 7B decode, one process,
# plans swapped between runs: int4 (+mma) pfs 0 / 2 / 4, int4 half2 pfs 0 / 2, int8 and fp8 pfs 0 / 2.
source scripts/device_lib.sh pfs
( export CUDA_VISIBLE_DEVICES=0
  timeout 90 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_pdl_gpu.py > $L/pdl.log 2>&1
  echo "=== pdl: $(tail -1 $L/pdl.log)"; grep -E "^(FAILED|ERROR)" $L/pdl.log | head
  timeout 330 python3 -m scripts.bench_quant --formats int4,int8,fp8 --sweep pfs --no-table \
    --out $L/bench/quant_gemv_sweep_pfs.json > $L/sweep.log 2>&1; tail -1 $L/sweep.log
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 420 python3 - > $L/e2e.log 2>&1 <<'PY'
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
keep = dict(g.QUANT_PLANS)
for q, mma, pfs in (("int4", 1, 0), ("int4", 1, 2), ("int4", 1, 4), ("int4", 0, 0), ("int4", 0, 2),
                    ("int8", 0, 0), ("int8", 0, 2), ("fp8", 0, 0), ("fp8", 0, 2)):
    g.QUANT_PLANS[q] = dataclasses.replace(keep[q], mma=mma, pfs=pfs)
    print(f"### {q} mma={mma} pfs={pfs}", flush=True)
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,500",
          "--new-tokens", "64", "--reps", "2", "--warmup", "1", "--ttft-reps", "3", "--quant", q,
          "--out", "/tmp/pfs/bench", "--stem", f"e2e_{q}_mma{mma}_pfs{pfs}", "--no-plot"])
    g.QUANT_PLANS[q] = keep[q]
PY
  grep -E "^### |^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e.log; grep -E "Error|error" $L/e2e.log | head -5
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
python3 - <<'PY'
import json, collections
d = json.load(open("/tmp/pfs/bench/quant_gemv_sweep_pfs.json"))
rows = collections.defaultdict(list)
for r in d["sweep"]:
    if "us" in r:
        rows[(r["format"], r["matrix"])].append("%s:%.1f" % ("D" if "default" in r else ("m" if r.get("mma") else "h") + str(r.get("pfs")), r["us"]))
for k, v in rows.items():
    print(k[0], k[1], " ".join(v))
PY
tar -czf "$OUT/pfs.tgz" -C /tmp pfs
