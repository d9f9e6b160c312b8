#!/bin/bash
# Record: run in the twenty-third session (twentythird_2026-12-02/s31a); both switches lost and were removed, so
# this script needs the tree at 3ba9afd. Prepared in the twenty-second session (nvidia-h200, < 5 min). The 16-row
# prefill's attention costs 0.2-0.28 ms in the step, half of it the kernel boundary (twentysecond_2026-12-01/s30a,
# s30b). PDL on that boundary only (the sixteenth session's whole-chain PDL lost 0.03 ms): 1) the switches'
# bit-identity tests and the gemm / prefill attention tests with both on; 2) 7B fp16 16-row prefill graphs (token 0
# and random ids) with attention_prefill.PDL_ATTN, gemm.PDL_RESIDUAL, both, interleaved with the default.
source scripts/device_lib.sh next_prefill_pdl
nvidia-smi -L
t pdl 150 -n 6 -rfE --tb=short tests/test_prefill_pdl_gpu.py; snap
CUGRAPHLLM_PDL_PREFILL_ATTN=1 CUGRAPHLLM_PDL_PREFILL_RESIDUAL=1 \
  t both 150 -n 8 -rfE --tb=short tests/test_gemm_gpu.py tests/test_attention_prefill_gpu.py tests/test_prefill_norm_gpu.py
snap
A=attention_prefill.PDL_ATTN; R=gemm.PDL_RESIDUAL
timeout 150 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16 --reps 30 --rounds 5 --random \
  --order "tune1,tune1;$A=True,tune1;$R=True,tune1;$A=True;$R=True,tune1,tune1;$A=True;$R=True,tune1;$A=True" \
  --out $L/ab_pdl.json > $L/ab_pdl.log 2>&1
echo "=== ab pdl rc $?"; grep setting $L/ab_pdl.log | cut -c1-300; grep -E "Error|Trace" $L/ab_pdl.log | head; snap
echo "total $(( $(date +%s) - T0 )) s"
