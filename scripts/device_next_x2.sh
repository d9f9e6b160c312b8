#!/bin/bash
# Prepared for the next session that gets nvidia-h200-x2, not yet run: test_allreduce_gpu.py's
# test_7b_width_logits_custom_against_nccl as fixed after the twenty-first session's last call (lamport's bitwise
# comparison with f32 prefill partials, its 16-bit default against NCCL within tolerance), then the rest of the
# two-GPU suite (all-reduce, TP, TP quantized, the prologue under TP); then, if the limit allows, 7B TP2 decode at
# prompt 10 / 100 with the early K/V loads on the <= 128-key buckets (DECODE_KNOBS early 4, the one-GPU default since
# the twenty-sixth session) against early 3 (key-split plans only), one process each.
source scripts/device_lib.sh next_x2
LIMIT=${LIMIT:-520}
nvidia-smi -L
t fixed 90 -rfE --tb=short tests/test_allreduce_gpu.py -k test_7b_width_logits_custom_against_nccl; snap
REST=$(( LIMIT - $(date +%s) + T0 - 135 ))
t suite $REST -rfE --tb=short tests/test_allreduce_gpu.py tests/test_allreduce_lamport_gpu.py tests/test_tp_gpu.py \
  tests/test_tp_quant.py tests/test_quant_prologue_tp_gpu.py; snap
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
for v in "0:-" "0:early=3"; do
  attn_bench tp7s_$(( $(date +%s) - T0 )) 60 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --tp 2 --lengths 10,100; done
snap; echo "total $(( $(date +%s) - T0 )) s"
