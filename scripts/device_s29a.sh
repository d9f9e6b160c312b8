#!/bin/bash
# Twenty-first session, call 2 (nvidia-h200-x2, the first x2 lent in five sessions). 1) Where 70B TP2 prefill time
# goes: its prefill graphs at 128 / 512 rows (token 0, and bench's random ids) with the residual all-reduces, the
# GEMMs or the attention knocked out (scripts/prefill_ab.py ko:*), one engine per setting. 2) The two-GPU tests on
# today's tree (tensor parallel, the all-reduces, TP quantized). 3) 70B fp16 TP2 TTFT / decode at prompt 128 / 500.
source scripts/device_lib.sh s29a
LIMIT=560
nvidia-smi -L
timeout 220 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,512 --reps 5 --rounds 2 --random \
  --order "tune1,tune1;ko:allreduce,tune1;ko:gemm,tune1;ko:attn,tune1" --out $L/ko_70b.json > $L/ko_70b.log 2>&1
echo "=== ko 70b rc $?"; grep setting $L/ko_70b.log | cut -c1-300; snap
t tp 200 -rfE --tb=short tests/test_tp_gpu.py tests/test_allreduce_gpu.py tests/test_allreduce_lamport_gpu.py \
  tests/test_quant_prologue_tp_gpu.py tests/test_tp_quant.py; snap
fits 90 "bench 70b tp2" && { timeout 90 python3 -m cugraphllm bench --backend cuda --preset llama-2-70b --tp 2 \
  --modes hybrid --lengths 128,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 5 --out $L/bench --stem tp2_70b \
  --no-plot > $L/tp2_70b.log 2>&1; echo "=== tp2 70b rc $?"; grep -E '^\| cugraphllm-hybrid-tp2 \| (128|500) ' $L/tp2_70b.log; }
snap; echo "total $(( $(date +%s) - T0 )) s"
