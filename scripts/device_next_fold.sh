#!/bin/bash
# Done in the thirty-fifth session as call s43a (scripts/device_s43a.sh): the landed form passed its GPU tests, folding
# every grid lost at 1024 / 2048 rows; the 500-token TTFT from idle was not rerun (the fold moves 512 rows by ~0.05 ms).
# Prepared in the thirty-fourth session (its device time was spent), for the next session with device time (~5 min):
# the prefill attention's folded tile order (b978051) landed for grids of <= 8 query tiles after one kernel-alone
# round (s42e) and 15 prefill attention GPU tests of the unguarded form; this call checks the landed form and what
# the fold does beyond 8 tiles.
#   rm -rf bis && mkdir -p bis/before bis/foldall
#   git archive f8f1cb0 cugraphllm kernels setup.cfg scripts/__init__.py scripts/bench_attention_prefill.py \
#     scripts/bench_attention.py scripts/prefill_drift.py | tar -x -C bis/before
#   git archive HEAD cugraphllm kernels setup.cfg scripts/__init__.py scripts/bench_attention_prefill.py \
#     scripts/bench_attention.py | tar -x -C bis/foldall
#   sed -i 's/^#define FOLD_TILES 8 /#define FOLD_TILES 64/' bis/foldall/kernels/attention_prefill.cu
#   bash scripts/device_next_fold.sh
# 1) prefill attention + engine GPU tests on this tree; 2) the kernel alone at 512 / 2048 rows from positions 0 /
# 1024 / 1852 in this tree, bis/before (heaviest first everywhere) and bis/foldall (folded at every size), 2 rounds;
# 3) 7B fp16 GPU prefill of 500 tokens from 100 ms idle, this tree vs bis/before, 2 rounds.
source scripts/device_lib.sh next_fold
LIMIT=${LIMIT:-420}
t prefill 150 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_engine_gpu.py; snap
ab() {  # TREE STEM
  fits 45 $2 || return
  (cd $1 && timeout 45 python3 -m scripts.bench_attention_prefill --no-numba --positions 0,1024,1852 \
    --buckets 512,2048 --out $L/$2.json > $L/$2.log 2>&1)
  echo "=== $2 rc $?: $(python3 -c "import json; print(' '.join(f\"{r['M']}@{r['pos']}:{r['ours_ms_32_layers']:.3f}\"
    for r in json.load(open('$L/$2.json'))['prefill']))" 2>&1 | tail -1)"
}
for r in 1 2; do ab . main_$r; ab bis/before before_$r; ab bis/foldall foldall_$r; done; snap
for r in 1 2; do for tree in bis/before .; do s=pf_$([ $tree = . ] && echo main || echo before)_$r
  fits 45 $s || continue
  (cd $tree && timeout 60 python3 -m scripts.prefill_drift --length 500 --samples 20 --gap-ms 100 --out $L/$s.json \
    > $L/$s.log 2>&1)
  echo "=== $s rc $?: $(python3 -c "import json; d=json.load(open('$L/$s.json')); print(d['median_all'], d['series'][:6])" 2>&1)"
done; done; snap
