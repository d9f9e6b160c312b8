#!/bin/bash
# Thirty-fifth session, call s43f (nvidia-h200, ~2 min): why the BN 32 build ran 2048 rows in 11.0 ms (s43d, a tree
# whose default BN was 32) but 12.65 in s43e (the same PTX as this tree's long build, timed beside the BN 64 one in
# one process). bis/bn32all = this tree with the default BN 32; each process times 1024 / 2048 rows from 0 / 1852:
# bis/bn32all alone, this tree with --long (both builds, alternating per row), this tree with every bucket on the long
# build (CUGRAPHLLM_PREFILL_LONG_ROWS=1, its BN 64 module loaded but unused); 2 rounds.
source scripts/device_lib.sh s43f
LIMIT=${LIMIT:-200}
ab() {  # TREE STEM [ENV=VALUE] [--long]
  (cd $1 && env ${3:-X=1} timeout 40 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,1852 \
    --buckets 1024,2048 --out $L/$2.json ${4:-} > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(python3 -c "import json; d=json.load(open('$L/$2.json')); print(' '.join(
    f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\" + (f\"/{r['long_ms_32_layers']:.3f}\"
    if 'long_ms_32_layers' in r else '') for r in d['prefill']), d['kernel'])" 2>&1 | tail -1)"
}
for r in 1 2; do ab bis/bn32all all_$r; ab . both_$r X=1 --long; ab . envlong_$r CUGRAPHLLM_PREFILL_LONG_ROWS=1; done; snap
