#!/bin/bash
# Thirtieth session, s38a (nvidia-h200, ~9 min): (1) scripts/device_next_ttft500.sh for ~4 min (7B fp8 / int8 TTFT
# at 500 tokens from idle on the thirteenth session's tree b091c5a, the twentieth's 576f146 and main: code or
# machine?); (2) the GPU tests of the twenty-ninth session's library edits (shared qkv checks, gemm.own_block_rows);
# (3) bench --idle-ms 0 vs 100 on 7B fp16 at 10 / 128 / 500 tokens (s37j's first half).
LIMIT=250 bash scripts/device_next_ttft500.sh
source scripts/device_lib.sh s38a
LIMIT=${LIMIT:-300}
t edits 200 -n 10 -rfE --tb=short tests/test_gemm_gpu.py tests/test_engine_gpu.py tests/test_quant_engine_gpu.py \
  tests/test_prefill_rows_gpu.py tests/test_prefill_norm_gpu.py tests/test_decode_graph_gpu.py; snap
B="--backend cuda --modes hybrid --preset llama-2-7b --lengths 10,128,500 --new-tokens 8 --reps 2 --warmup 1 --ttft-reps 30 --no-plot --out $L/bench"
for v in "fp16 0" "fp16 100" "int8 0" "int8 100"; do
  set -- $v; s=$1_idle$2; Q=""; [ $1 = fp16 ] || Q="--quant $1"
  fits 70 $s || continue
  timeout 70 python3 -m cugraphllm bench $B $Q --idle-ms $2 --stem $s > $L/$s.log 2>&1
  echo "=== $s rc $?: TTFT $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+ \|' $L/$s.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
  echo "    GPU prefill $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9.]+ / ' $L/$s.log | cut -d'|' -f3,4 | tr '\n' ' ')"
  grep -E "Error|Traceback" $L/$s.log | head -3
done
snap
