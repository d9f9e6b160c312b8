#!/bin/bash
# Thirty-second session, s40c (nvidia-h200, ~6 min): 1) GPU tests of the decode attention (the 256-key bucket now a
# 2-way key split), the prefill attention (its key split's ticket now last_ticket from common.cuh), the sampler and
# the engine; 2) decode alone across the 128-key edge (itl_drift, prompt 10, 128 tokens: s39c stepped from 3.30 to
# 3.36 ms there), this tree against TREE (argument 1, a bis/ tree of the commit before the plan change), 2 rounds.
source scripts/device_lib.sh s40c
LIMIT=${LIMIT:-540}
t attn 200 -n 8 -rfE --tb=short tests/test_attention_gpu.py tests/test_attention_prefill_gpu.py tests/test_decode_graph_gpu.py
snap
t engine 120 -n 6 -rfE --tb=short tests/test_engine_gpu.py tests/test_sampling_gpu.py tests/test_sampling_v3_gpu.py; snap
for r in 1 2; do for tree in . $1; do
  fits 60 itl_$r && (cd $tree && timeout 60 python3 -m scripts.itl_drift --runs 3 \
    --out $L/itl_${r}_$(basename $tree).json > $L/itl_${r}_$(basename $tree).log 2>&1)
  python3 -c "
import json, statistics as st
d = json.load(open('$L/itl_${r}_$(basename $tree).json'))
print('=== itl $r $(basename $tree):', ' | '.join('%.3f %.3f' % (st.median(x['itl_ms'][:110]), st.median(x['itl_ms'][120:]))
      for x in d['runs']))" 2>&1 | tail -1
done; done; snap
