#!/bin/bash
# Thirty-fourth session, call s42c (nvidia-h200, ~1 min): why the split entry's ticket in a static shared word cost
# 10-13% even where the tail never runs (64 rows at position 0: 0.156 vs 0.136 ms). 1) the plain entry with
# STATIC_PAD bytes of static shared memory (16 / 128 / 1024) beside itself (NOPAD); 2) the SASS of the split entry
# before (bis/old = git archive 4c06c89 kernels) and after c2878c9: do the main loops differ?
source scripts/device_lib.sh s42c
LIMIT=${LIMIT:-150}
timeout 80 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,300,1024 --buckets 16,64,128,512 \
  --probe NOPAD=1 --probe STATIC_PAD=16 --probe STATIC_PAD=128 --probe STATIC_PAD=1024 --out $L/pad.json > $L/pad.log 2>&1
echo "=== pad rc $?"; python3 -c "
import json
for r in json.load(open('$L/pad.json'))['prefill']:
    print(r['M'], r['pos'], ' '.join(f'{k[6:-15]}:{v:.3f}' for k, v in r.items() if k.startswith('probe')), 'ours', round(r['ours_ms_32_layers'], 3))"
NV=/usr/local/cuda/bin
for t in old new; do k=kernels; [ $t = old ] && k=bis/old/kernels
  $NV/nvcc -arch=sm_90 -cubin -DHD=128 -DN_REP=1 -I$k -o $L/ap_$t.cubin $k/attention_prefill.cu && \
  $NV/cuobjdump -sass -fun attention_prefill_split $L/ap_$t.cubin | grep -E '^\s+/\*[0-9a-f]{4}\*/' \
    | sed -E 's|/\*[0-9a-f]+\*/||; s|;.*||' > $L/sass_$t.txt; echo "=== sass $t: $(wc -l < $L/sass_$t.txt) lines"
done
diff $L/sass_old.txt $L/sass_new.txt > $L/sass.diff; echo "=== sass diff lines: $(grep -c '^[<>]' $L/sass.diff)"
head -30 $L/sass.diff; snap
