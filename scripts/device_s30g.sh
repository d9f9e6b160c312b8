#!/bin/bash
# Twenty-second session, call 8 (nvidia-h200, < 4 min). The fused prefill norms as kept (the consumers read ss from
# L2 after their main loop; the shared-memory copy is gone): 1) the prefill norm, gemm and engine GPU tests;
# 2) 7B fp16 16-row prefill graphs, token 0 and random ids, PREFILL_NORM off / on interleaved.
source scripts/device_lib.sh s30g
nvidia-smi -L
t pnorm 150 -n 8 -rfE --tb=short tests/test_prefill_norm_gpu.py tests/test_gemm_gpu.py tests/test_engine_gpu.py; snap
P=ops.PREFILL_NORM
timeout 100 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16 --reps 30 --rounds 5 --random \
  --order "tune1;$P=False,tune1;$P=True,tune1;$P=False,tune1;$P=True,tune1;$P=False,tune1;$P=True" \
  --out $L/ab_pnorm.json > $L/ab_pnorm.log 2>&1
echo "=== ab pnorm rc $?"; grep setting $L/ab_pnorm.log | cut -c1-300; grep -E "Error|Trace" $L/ab_pnorm.log | head; snap
echo "total $(( $(date +%s) - T0 )) s"
