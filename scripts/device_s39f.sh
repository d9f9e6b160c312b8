#!/bin/bash
# Thirty-first session, s39f (nvidia-h200, ~4 min): the key split as its own entry (attention_prefill_split, ranges
# of >= 8 key tiles; the plain kernel as before for every other launch) against the tree before (bis/d924c8e, set
# up as in device_s39e.sh): its GPU tests first, then the kernel alone and the chat-turn TTFT, one process a tree.
LIMIT=${LIMIT:-330}
source scripts/device_lib.sh s39f
O=bis/d924c8e
t tests 80 -n 8 -rfE --tb=short tests/test_attention_prefill_gpu.py; snap
attn() {  # TREE STEM
  fits 40 $2 || return
  (cd $1 && timeout 40 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024,1852 \
    --buckets 16,64,128,512 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(python3 -c "import json; print(' '.join(f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\"
    for r in json.load(open('$L/$2.json'))['prefill']))" 2>&1 | tail -1)"
}
turn() {  # TREE STEM
  fits 60 $2 || return
  (cd $1 && timeout 60 python3 -m scripts.turn_ttft --contexts 0,300,1000,1900,3800 --reps 20 --out $L/$2.json \
    > $L/$2.log 2>&1)
  echo "=== $2 rc $?"; grep '"context"' $L/$2.log | cut -c1-140
}
attn . attn_new; attn $O attn_old; snap
turn $O turn_old_r1; turn . turn_new_r1; turn $O turn_old_r2; turn . turn_new_r2; snap
