#!/bin/bash
# Twenty-second session, call 7 (nvidia-h200, < 4 min). The fused prefill norms' consumers with ss copied to shared
# memory before the main loop (NORM_COPY 1, the default) or read from L2 after it (0): 1) the prefill norm GPU tests
# under 0; 2) 7B fp16 16-row prefill graphs, token 0 and bench's random ids (--random), 1 / 0 / ko:norm interleaved.
source scripts/device_lib.sh s30f
nvidia-smi -L
CUGRAPHLLM_PREFILL_NORM_COPY=0 t pnorm_copy0 120 -n 4 -rfE --tb=short tests/test_prefill_norm_gpu.py; snap
C=gemm.NORM_COPY
timeout 150 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16 --reps 30 --rounds 5 --random \
  --order "tune1;$C=1,tune1;$C=0,tune1;ops.PREFILL_NORM=False;ko:norm,tune1;$C=1,tune1;$C=0,tune1;$C=1,tune1;$C=0" \
  --out $L/ab_copy.json > $L/ab_copy.log 2>&1
echo "=== ab copy rc $?"; grep setting $L/ab_copy.log | cut -c1-300; grep -E "Error|Trace" $L/ab_copy.log | head; snap
echo "total $(( $(date +%s) - T0 )) s"
