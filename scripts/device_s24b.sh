#!/bin/bash
# Record: ran at 7d2817b (the prefill PDL change, reverted after s24c: no faster at 16 rows); re-running it here
# times the code without it.
# Sixteenth session, call 2 (nvidia-h200): the prefill chain launched with PDL (pdl.PREFILL; kernels/gemm.cu's own
# GEMMs issue their first weight loads before pdl_enter): the prefill GPU tests, then 7B fp16 prefill graphs A/B
# (scripts/prefill_ab.py) PDL off / on / on with w2 on the own 16-row kernel, alternating, 16 / 128 / 512 rows.
source scripts/device_lib.sh s24b
nvidia-smi -L
t prefill 230 -rfE --tb=short -n 4 tests/test_gemm_gpu.py tests/test_engine_gpu.py tests/test_attention_prefill_gpu.py \
  tests/test_prefill_rows_gpu.py tests/test_norm_gpu.py tests/test_decode_graph_gpu.py tests/test_gemm_tune_gpu.py; snap
timeout 250 python3 -m scripts.prefill_ab --buckets 16,128,512 --reps 20 --rounds 3 \
  --order "pdl.PREFILL=False,pdl.PREFILL=True,pdl.PREFILL=True;gemm.AUTO_RESIDUAL_MAX_K=11008,pdl.PREFILL=False,pdl.PREFILL=True" \
  --out $L/prefill_ab_pdl.json > $L/prefill_ab_pdl.log 2>&1
echo "=== ab rc $?"; grep -E "setting|prefill_ms" $L/prefill_ab_pdl.log | head -20; tail -3 $L/prefill_ab_pdl.log; snap
echo "total $(( $(date +%s) - T0 )) s"
