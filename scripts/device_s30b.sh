#!/bin/bash
# Twenty-second session, call 2 (nvidia-h200). The 16-row prefill's attention costs 0.28 ms of 4.05 in the step
# (s30a ko:attn) against ~0.11 ms for 32 launches in isolation (H100, 2026-11-23): is it the shared-memory carveout
# switch between the own GEMMs (48 KB static) and the attention (80 KB dynamic)? Prefill graphs of 16 / 128 rows
# with every cuda_kernels kernel's carveout preference at 100 (max shared), interleaved with the default and ko:attn;
# then the prefill attention alone (bench_attention_prefill, pos 0).
source scripts/device_lib.sh s30b
nvidia-smi -L
C=cuda_kernels.CARVEOUT
timeout 200 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,128 --reps 20 --rounds 3 \
  --order "tune1,tune1;$C=100,tune1;ko:attn,tune1;$C=100;ko:attn,tune1,tune1;$C=100" \
  --out $L/ab_carve.json > $L/ab_carve.log 2>&1
echo "=== ab carve rc $?"; grep setting $L/ab_carve.log | cut -c1-250; grep -E "Error|Trace" $L/ab_carve.log | head; snap
timeout 120 python3 -m scripts.bench_attention_prefill --positions 0 --out $L/attn_prefill.json > $L/attn_prefill.log 2>&1
echo "=== attn prefill rc $?"; tail -n 12 $L/attn_prefill.log; snap
echo "total $(( $(date +%s) - T0 )) s"
