#!/bin/bash
# Prepared in the twenty-ninth session (nvidia-h200, ~3-4 min), not yet run: is the rise of 7B fp8 / int8 TTFT at
# 500 tokens since 2026-11-30 / 12-01 (fp8 7.7-7.9 ms in the thirteenth session, 9.4-9.5 since 12-02; int8 12.4-12.6
# up to the twentieth session's s28e, 14.1-15.8 since) code or machine? s37f found no change among the trees from
# 0e4c32e on, but the last good figures were measured on older trees, and back to back, where prefills drift up
# under the GPU's power management (s37h). This times each tree from idle (scripts/prefill_drift.py --gap-ms 100,
# 20 samples a process), one process a (tree, format), alternating. Set up the trees first (untracked folders):
#   for c in b091c5a 576f146; do mkdir -p bis/$c && git archive $c cugraphllm kernels setup.cfg | tar -x -C bis/$c \
#     && mkdir -p bis/$c/scripts && cp scripts/__init__.py scripts/prefill_drift.py bis/$c/scripts/; done
# b091c5a: the thirteenth session's tree (fp8 7.7-7.9 ms); 576f146: before the twentieth session's tile-contiguous
# int4 change (int8 12.4 in s28e).
source scripts/device_lib.sh next_ttft500
LIMIT=${LIMIT:-500}
one() {  # TREE FORMAT
  local s=${1//[.\/]/}; s=${s:-head}_$2_$(( $(date +%s) - T0 ))
  fits 45 $s || return
  (cd $1 && timeout 90 python3 -m scripts.prefill_drift --quant $2 --length 500 --samples 20 --gap-ms 100 \
    --out $L/$s.json > $L/$s.log 2>&1)
  echo "=== $1 $2 rc $?: $(python3 -c "import json; d=json.load(open('$L/$s.json')); print(d['median_all'], d['series'][:8])" 2>&1)"
  grep -E "Error|Traceback" $L/$s.log | head -3
}
for r in 1 2; do for t in bis/b091c5a bis/576f146 .; do for q in fp8 int8; do one $t $q; done; done; done
snap; echo "total $(( $(date +%s) - T0 )) s"
