#!/bin/bash
# NOT RUN YET: the first nvidia-h200-x2 call proposed for the next session (about 9 minutes). GPU 0: the cp.async
# tile variant's GEMV tests (QuantPlan.stages, gemv_quant_async.cuh), then the GPU tests this session's changes were
# not re-run against. GPU 1: bench_quant --sweep async (each format's default plan first), 7B int4 decode with
# stages 0 / 4 (plans swapped in-process), the HTTP overhead with one server at a time (the protocol of
# server_7b_2026-11-30d.json; the interleaved one of device_final3.sh was not usable on the GPU).
source scripts/device_lib.sh next
( export CUDA_VISIBLE_DEVICES=0
  t quant_async 200 tests/test_quant_gpu.py -k "mma_async"
  t rest 300 tests/test_decode_graph_gpu.py tests/test_sampling_gpu.py tests/test_server_gpu.py \
    tests/test_memory_gpu.py tests/test_quant_prefill_gpu.py tests/test_ux_gpu.py
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 150 python3 -m scripts.bench_quant --formats int4,int8,fp8 --sweep async --no-table \
    --out $L/bench/quant_gemv_sweep_async.json > $L/sweep.log 2>&1; grep "^sweep" $L/sweep.log | head -80
  timeout 100 python3 - > $L/e2e.log 2>&1 <<'PY'
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
keep = g.QUANT_PLANS["int4"]
for st in (0, 4):
    g.QUANT_PLANS["int4"] = dataclasses.replace(keep, stages=st)
    print(f"### int4 stages={st}", flush=True)
    main(["bench", "--backend", "cuda", "--preset", "llama-2-7b", "--modes", "hybrid", "--prompt-lens", "10,500",
          "--new-tokens", "64", "--reps", "2", "--warmup", "1", "--ttft-reps", "3", "--quant", "int4",
          "--out", "/tmp/next/bench", "--stem", f"e2e_int4_stages{st}", "--no-plot"])
PY
  grep -E "^### |^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e.log
  timeout 200 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
    --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 8 --warmup 3 \
    --variants default,legacy --out $L/bench/server_7b_seq.json > $L/server.log 2>&1
  grep -E "TTFT (median|less)" $L/server.log
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/next.tgz" -C /tmp next
