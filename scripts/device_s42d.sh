#!/bin/bash
# Thirty-fourth session, call s42d (nvidia-h200, ~6 min). s42c: 16 bytes of static shared memory ahead of the prefill
# attention's dynamic region cost up to 24% (512 rows at position 0 0.651 vs 0.526 ms), 128 or 1024 bytes nothing:
# the dynamic region's 128-byte alignment. 1) does `extern __shared__ __align__(128)` restore it (SMEM_ALIGN probe)?
# 2) the decode GEMVs whose static shared memory leaves their dynamic region off 128 bytes (gemv_residual_ss 16 B,
# quantized residual_ss 32 / 64 B: wo and w2): bis/al = HEAD with `__align__(128)` on gemv.cu's and gemv_quant.cu's
# extern declarations, against bis/main = HEAD; 7B decode at prompt 10, int4 (2 rounds) / fp8, alternating (fp16's
# GEMVs take no dynamic shared memory: GEMV_XSMEM 0).
source scripts/device_lib.sh s42d
LIMIT=${LIMIT:-400}
timeout 60 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300 --buckets 64,512 --probe NOPAD=1 \
  --probe STATIC_PAD=16 --probe STATIC_PAD=16,SMEM_ALIGN=128 --out $L/align.json > $L/align.log 2>&1
echo "=== align rc $?"; python3 -c "
import json
for r in json.load(open('$L/align.json'))['prefill']:
    print(r['M'], r['pos'], ' '.join(f'{k[6:-15]}:{v:.3f}' for k, v in r.items() if k.startswith('probe')))"; snap
B="--backend cuda --preset llama-2-7b --modes hybrid --lengths 10 --new-tokens 64 --reps 3 --warmup 1 --ttft-reps 2 --no-plot --out $L/bench"
for q in int4 fp8; do for tree in bis/main bis/al $([ $q = int4 ] && echo bis/main bis/al); do s=${q}_$(basename $tree)_$(( $(date +%s) - T0 ))
  Q=$([ $q = fp16 ] && echo "" || echo "--quant $q")
  fits 50 $s && (cd $tree && timeout 50 python3 -m cugraphllm bench $B $Q --stem $s > $L/$s.log 2>&1; echo "=== $s rc $?: $(bench_rows $L/$s.log | head -1)")
done; snap; done
