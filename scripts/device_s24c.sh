#!/bin/bash
# Record: ran at 5b8c792 (the prefill PDL change, reverted after s24c: no faster at 16 rows); re-running it here
# times the code without it.
# Sixteenth session, call 3 (nvidia-h200): 16-row prefill with PDL, the own GEMMs' x through L1 again (s24b had it
# through L2, __ldcg: 16-row graphs 5.46-5.75 ms); 7B fp16 prefill graphs, alternating: PDL off / on / on with x
# through L2 (gemm.XCG=1) / on with w2 on the own kernel; then the prefill GPU tests; then bench TTFT at 10 tokens.
source scripts/device_lib.sh s24c
nvidia-smi -L
timeout 200 python3 -m scripts.prefill_ab --buckets 16,128 --reps 20 --rounds 3 \
  --order "pdl.PREFILL=False,pdl.PREFILL=True,pdl.PREFILL=True;gemm.XCG=1,pdl.PREFILL=True;gemm.AUTO_RESIDUAL_MAX_K=11008,pdl.PREFILL=False,pdl.PREFILL=True" \
  --out $L/prefill_ab_pdl.json > $L/prefill_ab_pdl.log 2>&1
echo "=== ab rc $?"; grep -E "setting" $L/prefill_ab_pdl.log | cut -c1-200; tail -2 $L/prefill_ab_pdl.log; snap
t prefill 200 -rfE --tb=short -n 4 tests/test_gemm_gpu.py tests/test_engine_gpu.py tests/test_attention_prefill_gpu.py \
  tests/test_prefill_rows_gpu.py tests/test_norm_gpu.py tests/test_decode_graph_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
