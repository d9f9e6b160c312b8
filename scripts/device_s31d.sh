#!/bin/bash
# Record: needs the tree of 62ef9f6 (in main's history, reverted by e19da68); the code it measures was not merged
# (benchmarks/results/twentythird_2026-12-02/s31d). Twenty-third session, call d (nvidia-h200): where the fused
# short-prefill attention loses (s31c: 7B GPU prefill at 10 tokens 4.07-4.09 ms fused vs 3.92-3.93 unfused). One
# bench process a variant, alternating, TTFT at 10 tokens (position 0): unfused; fused (acq_rel fence + relaxed
# atomics now); fused KO 1 (the count, no attention); fused KO 2 (no tail: no attention anywhere). KO rows compute
# wrong tokens; their times still count the work left.
source scripts/device_lib.sh s31d
nvidia-smi -L
t qattn 120 -n 8 -rfE --tb=short tests/test_qkv_attn_gpu.py -k "not engine"; snap
v() {  # v NAME ATTN KO
  env CUGRAPHLLM_QKV_ATTN=$2 CUGRAPHLLM_QKV_ATTN_KO=$3 timeout 60 python3 -m cugraphllm bench --backend cuda \
    --modes hybrid --new-tokens 8 --reps 1 --warmup 1 --ttft-reps 30 --no-plot --out $L/bench --stem $1_$(( $(date +%s) - T0 )) \
    --preset llama-2-7b --lengths 10 > $L/$1.log 2>&1
  echo "=== $1 rc $?: $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+' $L/$1.log | cut -d'|' -f3,5,6 | tr '\n' ' ')"
  grep -E "Error|Traceback" $L/$1.log | head -3
}
for r in 1 2; do v unfused 0 0; v fused 1 0; v ko1 1 1; v ko2 1 2; done
snap; echo "total $(( $(date +%s) - T0 )) s"
