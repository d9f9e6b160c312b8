#!/bin/bash
# Ran at commit 77ffad0 (server/early.py and its variant noearly were removed after this call: no gain).
# One nvidia-h200 call (2026-11-30, fifth session). 1) HTTP overhead: the server with streams started from the
# parse (early.py, default) against noearly (started from the ASGI task), all up, 60 interleaved requests a
# length; then the default server alone, requests one after the other (no --interleave), 60 a length. 2) The
# server GPU tests. 3) 70B int4 decode with the tiles from 6144 row pairs (default) against 4096 (the previous
# default), one process each.
source scripts/device_lib.sh early
T=.device/shared/models/llama2-tokenizer/tokenizer.model
B="python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 --tokenizer $T --new-tokens 16 --reps 60 --warmup 5"
timeout 170 $B --interleave --variants default,noearly --out "$L/bench/server_7b_early.json" > "$L/server_7b_early.log" 2>&1
echo "=== interleaved exit $?"; grep -E "TTFT (median|less)|server side" "$L/server_7b_early.log"
timeout 110 $B --out "$L/bench/server_7b_seq.json" > "$L/server_7b_seq.log" 2>&1
echo "=== sequential exit $?"; grep -E "TTFT (median|less)|server side" "$L/server_7b_seq.log"
t server_gpu 60 tests/test_server_gpu.py
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4"
for mp in 6144 4096; do
  timeout 80 python3 - > $L/e2e_70b_mp$mp.log 2>&1 <<PY
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["int4"] = dataclasses.replace(g.QUANT_PLANS["int4"], mma_min_pairs=$mp)
main("$E2E --preset llama-2-70b --prompt-lens 10,128 --stem e2e_70b_int4_mp$mp".split())
PY
  echo "=== 70b int4 mma_min_pairs $mp: $(grep -E '^\| cugraphllm-hybrid \| (10|128) \| 64' $L/e2e_70b_mp$mp.log | tr '\n' ' ')"
done
tar -czf "$OUT/early.tgz" -C /tmp early
