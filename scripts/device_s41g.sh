#!/bin/bash
# Thirty-third session, call s41g (nvidia-h200, ~1 min): where the prefill attention's split entry loses time when
# nothing splits (s40f / next_split_plain: 16 rows after 300 keys 0.333 ms against the plain kernel's 0.287, with
# the plain block's code in the split entry no faster). bench_attention_prefill --plain-z N also times the plain
# kernel (compiled with PLAIN_Z_EXIT) on a (H, tiles, N) grid whose z > 0 blocks return at once: if that is as slow
# as the split entry, the idle blocks cost; if as fast as the plain kernel, the split entry's binary does.
# CUGRAPHLLM_PREFILL_SPLIT 8 / 2 / 1 (1: "ours" is the plain kernel), --plain-z 8 / 2 / 4.
source scripts/device_lib.sh s41g
LIMIT=${LIMIT:-170}
for cz in "8 8" "2 2" "1 4" "8 8"; do set -- $cz
  CUGRAPHLLM_PREFILL_SPLIT=$1 timeout 60 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024 \
    --buckets 16,64,128 --plain-z $2 --out $L/cap$1_z$2.json > $L/cap$1_z$2.log 2>&1
  echo "=== cap $1 plain-z $2 rc $?: $(python3 -c "import json; print(' '.join(f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}/{r['plain_z$2_ms_32_layers']:.3f}\"
    for r in json.load(open('$L/cap$1_z$2.json'))['prefill']))" 2>&1 | tail -1)"
done; snap
