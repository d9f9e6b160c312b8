#!/bin/bash
# Twenty-first session, call 4 (nvidia-h200-x2, last of the session). 1) The lamport wide / packed kernels' tests on
# grids of 512 and 1024 blocks; 2) 70B TP2 prefill graphs under 16-bit partials with ar_lamport_wide's grid
# (CUGRAPHLLM_ALLREDUCE_WIDE_BLOCKS) 128 / 256 / 512 / 1024, interleaved; 3) the two-GPU tests not run in s29b
# (the flag protocol, TP quantized, the prologue under TP); 4) 7B / 13B TP2 bench at prompt 128 / 500.
source scripts/device_lib.sh s29c
LIMIT=${LIMIT:-540}
nvidia-smi -L
t wide 90 -rfE --tb=short tests/test_allreduce_lamport_gpu.py -k "wide512 or wide1024"; snap
W=CUGRAPHLLM_ALLREDUCE_WIDE_BLOCKS
timeout 170 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,512 --reps 5 --rounds 2 --random \
  --order "tune1;$W=128,tune1;$W=256,tune1;$W=512,tune1;$W=1024,tune1;$W=512,tune1;$W=128" \
  --out $L/ab_70b_wide.json > $L/ab_70b_wide.log 2>&1
echo "=== ab 70b wide rc $?"; grep setting $L/ab_70b_wide.log | cut -c1-250; snap
t rest 150 -rfE --tb=short tests/test_allreduce_gpu.py tests/test_quant_prologue_tp_gpu.py tests/test_tp_quant.py; snap
for p in 7b 13b; do
  fits 60 "bench $p" && { timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-$p --tp 2 \
    --modes hybrid --lengths 128,500 --new-tokens 32 --reps 2 --warmup 1 --ttft-reps 5 --out $L/bench \
    --stem tp2_$p --no-plot > $L/tp2_$p.log 2>&1; echo "=== tp2 $p rc $?"
    grep -E '^\| cugraphllm-hybrid-tp2 \| (128|500) \| [0-9]+ \|' $L/tp2_$p.log | cut -d'|' -f3,5,6,7; }
done; snap
echo "total $(( $(date +%s) - T0 )) s"
