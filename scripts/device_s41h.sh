#!/bin/bash
# Thirty-third session, call s41h (nvidia-h200, ~30 s after the start): s41g found the split entry's binary slower
# than the plain kernel on the same work (idle z blocks cost nothing). Two builds of the split entry beside it
# (bench_attention_prefill --split-probe): 1 without its tail (the merge code absent: timing only where one range
# suffices), 2 with the ticket broadcast by __syncthreads_or (no static shared memory).
source scripts/device_lib.sh s41h
LIMIT=${LIMIT:-100}
for p in 1 2; do
  timeout 40 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024 --buckets 16,64,128 \
    --split-probe $p --out $L/probe$p.json > $L/probe$p.log 2>&1
  echo "=== probe $p rc $?: $(python3 -c "import json; print(' '.join(f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}/{r['split_probe${p}_ms_32_layers']:.3f}\"
    for r in json.load(open('$L/probe$p.json'))['prefill']))" 2>&1 | tail -1)"
done; snap
