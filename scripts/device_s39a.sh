#!/bin/bash
# Thirty-first session, s39a (nvidia-h200, ~9 min): two changes in one call.
# 1. GEMV_PFL2, the 16-bit decode GEMVs' L2 bulk prefetch of each row pair before pdl_enter (CUGRAPHLLM_GEMV_PFL2
#    bits: 1 wo, 2 w2, 4 qkv, 8 w13, 16 LM head; default 0): 7B fp16 decode, one bench process per setting,
#    alternating (0, 1, 31, 7) x 3, prompts 10 / 500, 128 new tokens; its GPU tests with every bit set (GEMV,
#    fused norms, PDL, decode graphs; the prefetch changes no arithmetic).
# 2. The RMSNorm row kernels in registers (5e0ca77) against the tree before them (bis/e7b52c7: git archive e7b52c7
#    cugraphllm kernels setup.cfg + scripts/__init__.py, scripts/prefill_ab.py): norm GPU tests, then the 7B fp16
#    prefill graphs at 128 / 512 rows from idle with random ids, one process a tree, two rounds.
LIMIT=${LIMIT:-560}
source scripts/device_lib.sh s39a
E="--preset llama-2-7b --lengths 10,500 --new-tokens 128 --reps 3"
for r in 1 2 3; do
  for v in 0 1 31 7; do env_bench pf${v}_r$r pf$v 60 CUGRAPHLLM_GEMV_PFL2=$v $E; done; snap
done
fits 100 pf_tests && (export CUGRAPHLLM_GEMV_PFL2=31; t pf_tests 100 -n 8 -rfE --tb=short tests/test_gemv_gpu.py \
  tests/test_fused_norm_gpu.py tests/test_pdl_gpu.py tests/test_decode_graph_gpu.py); snap
ab() {  # TREE STEM
  (cd $1 && timeout 60 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 128,512 --reps 10 --rounds 2 \
    --gap-ms 100 --random --order tune1 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(grep -E '"prefill_ms"' $L/$2.log | grep -o '"prefill_ms": {[^}]*}')"
}
fits 90 norm_tests && t norm_tests 90 -n 8 -rfE --tb=short tests/test_norm_gpu.py tests/test_fp8_actq_gpu.py \
  tests/test_prefill_norm_gpu.py; snap
for r in 1 2; do fits 60 new$r && ab . new$r; fits 60 old$r && ab bis/e7b52c7 old$r; snap; done
