#!/bin/bash
# Issue #10 (branch fp8-actq), nvidia-h200, one call (not yet run). 1) The fused fp8 activation quantization tests
# (bit-exact against the unfused path) and the fp8 prefill suites they must keep passing. 2) 7B fp8 prefill graphs at
# CUGRAPHLLM_FP8_FUSE_ACTQ=0 / 1 / 2, interleaved (scripts/prefill_ab.py: 128 / 512 rows, generate()'s GPU prefill
# of 116 / 500 tokens). 3) bench TTFT at 10 / 128 / 500 tokens, switch 0 and 2, two rounds. Results in $OUT/fuseactq.tgz.
source scripts/device_lib.sh fuseactq
T0=$(date +%s)
snap() { tar -czf "$OUT/fuseactq.tgz" -C /tmp fuseactq; echo "[at $(( $(date +%s) - T0 )) s]"; }
t actq_tests 200 -n 8 tests/test_fp8_actq_gpu.py tests/test_fp8_lt_gpu.py tests/test_quant_prefill_gpu.py; snap
A=CUGRAPHLLM_FP8_FUSE_ACTQ
timeout 150 python3 -m scripts.prefill_ab --quant fp8 --buckets 128,512 --partial 12 --reps 5 --rounds 3 \
  --order "tune1;$A=0,tune1;$A=1,tune1;$A=2,tune1;$A=0,tune1;$A=1,tune1;$A=2" \
  --out $L/fuse_prefill_ab.json > $L/fuse_prefill_ab.log 2>&1
echo "=== fuse prefill_ab rc $?"; grep setting $L/fuse_prefill_ab.log; snap
for r in 1 2; do for m in 0 2; do  # the protocol of device_x2gap.sh (README's 8.32-8.41 ms row)
  CUGRAPHLLM_FP8_FUSE_ACTQ=$m timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b \
    --quant fp8 --modes hybrid --lengths 10,128,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 5 --no-plot \
    --out $L/bench --stem fp8_fuse${m}_r$r > $L/fp8_fuse${m}_r$r.log 2>&1
  echo "=== fp8 fuse=$m round $r rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|128|500) \| 64' $L/fp8_fuse${m}_r$r.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
  snap
done; done
