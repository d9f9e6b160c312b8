#!/bin/bash
# Thirty-first session, s39d (nvidia-h200, ~6 min): deeper K/V tile rings for the tensor-core prefill attention
# (CUGRAPHLLM_PREFILL_ATTN_RING="STAGES,BN"; default 2,64, double buffering). 1) its GPU tests (every ring against
# the float64 reference, fp16 / bf16, MHA / GQA, head dims 128 / 64); 2) the kernel alone (graphs of 32 layer
# launches, keys past L2) at 16 / 128 / 512 / 2048 query rows from positions 0 and 1852 (a 3900-token prompt's second
# 2048-row chunk), one process a ring, two rounds; 3) 7B fp16 TTFT at 500 / 1000 / 3900 tokens, default vs the
# ring given as $1 (default 3,64), one bench process each, alternating.
LIMIT=${LIMIT:-560}
source scripts/device_lib.sh s39d
R=${1:-3,64}
t ring_tests 150 -n 8 -rfE --tb=short tests/test_attention_prefill_gpu.py; snap
attn() {  # RING STEM
  fits 40 $2 || return
  CUGRAPHLLM_PREFILL_ATTN_RING=$1 timeout 40 python3 -m scripts.bench_attention_prefill --no-numba \
    --positions 0,1852 --buckets 16,128,512,2048 --out $L/$2.json > $L/$2.log 2>&1
  echo "=== $2 ($1) rc $?: $(python3 -c "import json; print(' '.join(f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\"
    for r in json.load(open('$L/$2.json'))['prefill']))" 2>&1 | tail -1)"
}
for r in 1 2; do for g in 2,64 3,64 4,32 6,32 4,64; do attn $g a${g/,/_}_r$r; done; snap; done
B="--backend cuda --preset llama-2-7b --modes hybrid --no-plot --out $L/bench --lengths 500,1000,3900 --new-tokens 4 --reps 1 --ttft-reps 10 --max-seq-len 4096"
for r in 1 2; do
  CUGRAPHLLM_PREFILL_ATTN_RING=2,64 run_bench ttft_def_r$r 70  # a prefix assignment reaches the function's children
  CUGRAPHLLM_PREFILL_ATTN_RING=$R run_bench ttft_${R/,/_}_r$r 70
  snap
done
