#!/bin/bash
# Thirty-fifth session, call s43e (nvidia-h200, ~4 min): the prefill attention's BN 32 build for buckets of >= 2048
# rows (LONG_ROWS; the MT 2 build is gone). 1) prefill attention (the BN 32 build on every case, the dispatch) +
# engine GPU tests; 2) the kernel alone, both builds in one process (--long), 16-2048 rows from 0 / 300 / 1024 / 1852;
# 3) 7B fp16 TTFT at 1000 / 2000 / 3900 tokens (--prefill-rows 2048) with the long build off / on, alternating.
source scripts/device_lib.sh s43e
LIMIT=${LIMIT:-400}
t prefill 170 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py; snap
fits 60 kernel && timeout 60 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024,1852 \
  --buckets 16,64,128,512,1024,2048 --long --out $L/kernel.json > $L/kernel.log 2>&1
echo "=== kernel rc $?: $(python3 -c "import json; d=json.load(open('$L/kernel.json')); print(' '.join(
  f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}/{r['long_ms_32_layers']:.3f}\" for r in d['prefill']), d['kernel'])")"
snap
long() {  # STEM LONG_ROWS
  fits 60 $1 || return
  CUGRAPHLLM_PREFILL_LONG_ROWS=$2 timeout 60 python3 -m cugraphllm bench --backend cuda --modes hybrid \
    --preset llama-2-7b --lengths 1000,2000,3900 --new-tokens 16 --reps 2 --warmup 1 --ttft-reps 8 --no-plot \
    --prefill-rows 2048 --max-seq-len 4096 --out $L/bench --stem $1 > $L/$1.log 2>&1
  echo "=== $1 (long rows $2) rc $?"; bench_rows $L/$1.log
}
for r in 1 2; do long off_$r 0; long on_$r 2048; snap; done
