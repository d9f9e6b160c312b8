#!/bin/bash
# Prepared for the next session (nvidia-h200), not yet run. The nineteenth session measured the int4 tile staging's
# second pass at 5.9 us of 13B w2's 20.4 (s27f) although it now reads the activation from shared memory (QG_PARK):
# its compute, one 4-level shuffle tree a chunk, would take ~1.2 us at one instruction an issue slot. Here: the
# shuffle trees knocked out (bit 32) beside the whole staging pass (8), then QG_STAGEN 2 / 3 (2 / 3 chunks a round,
# trees interleaved; bit-identical by construction) on 13B / 7B int4, their bit-identity GPU tests, 13B decode A/B.
source scripts/device_lib.sh next_stage
LIMIT=540
nvidia-smi -L
timeout 100 python3 -m scripts.quant_knockout --preset llama-2-13b --formats int4 --kos 0,8,32 --jobs 14 \
  --out $L/ko13.json > $L/ko13.log 2>&1; echo "=== ko 13b rc $?"; tail -n 4 $L/ko13.log
for n in 2 3; do
  CUGRAPHLLM_QG_STAGEN=$n timeout 100 python3 -m scripts.quant_knockout --preset llama-2-13b --formats int4 --kos 0 \
    --jobs 14 --out $L/ko13_n$n.json > $L/ko13_n$n.log 2>&1; echo "=== ko 13b stagen $n rc $?"; tail -n 4 $L/ko13_n$n.log
done; snap
t stage 150 -rfE --tb=short -n 6 tests/test_qg_stage_gpu.py; snap
for n in 1 2 1; do
  env_bench e2e_13b_int4_n$n 13b_int4_n$n 75 CUGRAPHLLM_QG_STAGEN=$n --preset llama-2-13b --quant int4 \
    --prompt-lens 10,500
done; snap
echo "total $(( $(date +%s) - T0 )) s"
