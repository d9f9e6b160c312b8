#!/bin/bash
# Follow-up of device_final4.sh (fourth session), after the register bound of the tile kernels (QG_MINB; their
# row-pair fallback had raised them to 84-128 registers). GPU 0: 7B decode, one process per setting: int4 old
# (.device/old) / new / new with the tiles on every matrix, int8 old / new, fp8 new. GPU 1: the HTTP A/B with
# the servers up at once and every prompt through each side in random order (--interleave), then the int4 GEMV
# tests of the default paths.
source scripts/device_lib.sh last4
E2E="bench --backend cuda --preset llama-2-7b --modes hybrid --prompt-lens 10,500 --new-tokens 64 --reps 2 \
  --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
row() { grep -H -E "^\| cugraphllm-hybrid \| (10|500) \| 64" "$@"; }
( export CUDA_VISIBLE_DEVICES=0
  for f in int4 int8; do
    (cd .device/old && timeout 40 python3 -m cugraphllm $E2E --quant $f --stem e2e_${f}_old > $L/e2e_${f}_old.log 2>&1)
    timeout 40 python3 -m cugraphllm $E2E --quant $f --stem e2e_${f}_new > $L/e2e_${f}_new.log 2>&1
  done
  timeout 40 python3 -m cugraphllm $E2E --quant fp8 --stem e2e_fp8_new > $L/e2e_fp8_new.log 2>&1
  timeout 40 python3 - > $L/e2e_int4_tilesall.log 2>&1 <<PY
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["int4"] = dataclasses.replace(g.QUANT_PLANS["int4"], mma_min_pairs=0)
main("$E2E --quant int4 --stem e2e_int4_tilesall".split())
PY
  row $L/e2e_*.log; grep -h -A4 "GPU prefill median" $L/e2e_*.log | grep "| 10 \|| 500 "
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 120 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
    --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 8 --warmup 3 \
    --interleave --variants default,legacy --out $L/bench/server_7b_interleave.json > $L/server.log 2>&1
  grep -E "TTFT (median|less)" $L/server.log
  t quant 90 -n 8 tests/test_quant_gpu.py -k "(mma or h2acc) and not mma_u2 and not nopipe and int4"
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/last4.tgz" -C /tmp last4
