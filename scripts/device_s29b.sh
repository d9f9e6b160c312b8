#!/bin/bash
# Twenty-first session, call 3 (nvidia-h200-x2). The prefill residual all-reduces with 16-bit partial sums
# (lamport's packed wide kernel, CUGRAPHLLM_ALLREDUCE_T16): 1) 70B TP2 prefill graphs at 128 / 512 rows, T16 0 / 1
# (and 1 with 512 wide blocks), one engine each, interleaved; 2) 70B TP2 bench, prompt 128 / 500; 3) GPU tests:
# the lamport kernels (packed add, engines), TP2 against TP1, the TP partial GEMM.
source scripts/device_lib.sh s29b
LIMIT=570
nvidia-smi -L
timeout 200 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,512 --reps 5 --rounds 2 --random \
  --order "tune1;CUGRAPHLLM_ALLREDUCE_T16=0,tune1;CUGRAPHLLM_ALLREDUCE_T16=1,tune1;CUGRAPHLLM_ALLREDUCE_T16=1;CUGRAPHLLM_ALLREDUCE_WIDE_BLOCKS=512,tune1;CUGRAPHLLM_ALLREDUCE_T16=0,tune1;CUGRAPHLLM_ALLREDUCE_T16=1" \
  --out $L/ab_70b_t16.json > $L/ab_70b_t16.log 2>&1
echo "=== ab 70b rc $?"; grep setting $L/ab_70b_t16.log | cut -c1-260; snap
for v in 1 0; do
  fits 80 "bench $v" && { CUGRAPHLLM_ALLREDUCE_T16=$v timeout 80 python3 -m cugraphllm bench --backend cuda \
    --preset llama-2-70b --tp 2 --modes hybrid --lengths 128,500 --new-tokens 32 --reps 2 --warmup 1 --ttft-reps 5 \
    --out $L/bench --stem tp2_70b_t16_$v --no-plot > $L/tp2_70b_t16_$v.log 2>&1; echo "=== tp2 70b T16=$v rc $?"
    grep -E '^\| cugraphllm-hybrid-tp2 \| (128|500) \| [0-9]+ \|' $L/tp2_70b_t16_$v.log | cut -d'|' -f3,5,6,7; }
done; snap
REST=$(( LIMIT - $(date +%s) + T0 - 15 ))
t tests $REST -rfE --tb=short tests/test_allreduce_lamport_gpu.py tests/test_gemm_tune_gpu.py::test_matmul_partial_writes_the_whole_product \
  tests/test_tp_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
