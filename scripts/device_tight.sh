#!/bin/bash
# One nvidia-h200 call (2026-11-30, fifth session). 1) HTTP overhead again (default server only, 60 interleaved
# requests a length): a second sample of the figure device_http3.sh gave. 2) The int4 tiles' shared memory sized
# to their half staging (QuantPlan.tight): the quantized GEMV GPU tests (int4), the 70B GEMVs under tight 1 / 0
# and the row-pair path (bench_quant --sweep tight), 7B int4 decode tight 1 / 0 (one process each), 70B int4
# decode with the new default.
source scripts/device_lib.sh tight
T=.device/shared/models/llama2-tokenizer/tokenizer.model
timeout 150 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 --tokenizer $T \
  --new-tokens 16 --reps 60 --warmup 5 --interleave --out "$L/bench/server_7b_i60.json" > "$L/server_7b_i60.log" 2>&1
echo "=== bench_server exit $?"; grep -E "TTFT (median|less)" "$L/server_7b_i60.log"
t quant 150 -n 8 tests/test_quant_gpu.py -k int4
timeout 90 python3 -m scripts.bench_quant --preset llama-2-70b --formats int4 --sweep tight --no-table \
  --out "$L/bench/quant_gemv_sweep_tight_70b.json" > "$L/sweep.log" 2>&1; echo "=== sweep exit $?"; grep "^sweep" $L/sweep.log
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4"
for tt in 1 0 1; do
  timeout 45 python3 - > $L/e2e_7b_tight$tt.log 2>&1 <<PY
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["int4"] = dataclasses.replace(g.QUANT_PLANS["int4"], tight=$tt)
main("$E2E --preset llama-2-7b --prompt-lens 10,500 --stem e2e_7b_int4_tight$tt".split())
PY
  echo "=== 7b tight $tt: $(grep -E '^\| cugraphllm-hybrid \| (10|500) \| 64' $L/e2e_7b_tight$tt.log | tr '\n' ' ')"
done
timeout 170 python3 -m cugraphllm $E2E --preset llama-2-70b --prompt-lens 10,128 --stem one_70b_int4 > $L/one_70b_int4.log 2>&1
echo "=== 70b int4 exit $?: $(grep -E '^\| cugraphllm-hybrid \| (10|128) \| 64' $L/one_70b_int4.log | tr '\n' ' ')"; tail -3 $L/one_70b_int4.log
tar -czf "$OUT/tight.tgz" -C /tmp tight
