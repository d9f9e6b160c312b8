#!/bin/bash
# Twenty-eighth session, s36e (nvidia-h200, ~7 min): a request's host-written inputs in one copy (state.Scratch.ctl)
# against the tree before it (ab_old/, an untracked `git archive` of 0eb553a's cugraphllm + kernels): GPU tests of the
# engine paths, then 7B fp16 bench processes old / new / old / new (TTFT at 10 / 128 tokens, 30 samples each).
source scripts/device_lib.sh s36e
LIMIT=${LIMIT:-540}
t ctl 200 -n 8 -rfE --tb=short tests/test_engine_gpu.py tests/test_decode_graph_gpu.py tests/test_sampling_gpu.py \
  tests/test_robustness_gpu.py tests/test_ux_gpu.py tests/test_prefill_rows_gpu.py tests/test_quant_engine_gpu.py \
  tests/test_pdl_gpu.py; snap
t ctl_mem 90 -rfE --tb=short tests/test_memory_gpu.py; snap
ab() {  # ab TREE STEM: one bench process from TREE (. or ab_old)
  fits 70 "$2" || return
  (cd $1 && timeout 70 python3 -m cugraphllm bench --backend cuda --modes hybrid --new-tokens 32 --reps 2 --warmup 1 \
    --ttft-reps 30 --no-plot --out $L/bench --stem $2 --preset llama-2-7b --lengths 10,128 > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+' $L/$2.log | cut -d'|' -f3,5,6,7 | tr '\n' ' ')"
  grep -E "Error|Traceback" $L/$2.log | head -3
}
ab ab_old old1; ab . new1; ab ab_old old2; ab . new2
snap; echo "total $(( $(date +%s) - T0 )) s"
