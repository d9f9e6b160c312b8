#!/bin/bash
# Twenty-ninth session, s37f (nvidia-h200, ~5 min): bisect of the 7B int8 TTFT at 500 tokens (12.40-12.57 ms on
# 2026-12-01 up to the twentieth session, 15.83 in the twenty-sixth session's s34e, 15.71 in s37e). Needs untracked
# trees bis/<commit> (`git archive <commit> cugraphllm kernels setup.cfg`): 0e4c32e (twentieth session, after the
# tile-contiguous int4 change), 824cef0 (twenty-first), 6878090 (twenty-second), aa6b8ec (twenty-third), then this
# tree; one bench process each (int8 at 128 / 500, 5 TTFT samples), then the first and the last again.
source scripts/device_lib.sh s37f
LIMIT=${LIMIT:-540}
B="--backend cuda --modes hybrid --preset llama-2-7b --quant int8 --lengths 128,500 --new-tokens 8 --reps 1 --warmup 1 --ttft-reps 5 --no-plot --out $L/bench"
one() {  # TREE (a bis/ folder or .)
  local c=$1 s=${1//[.\/]/}; s=${s:-head}_$(( $(date +%s) - T0 ))
  fits 80 $s || return
  (cd $c && timeout 120 python3 -m cugraphllm bench $B --stem $s > $L/$s.log 2>&1)
  echo "=== $c rc $?: $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| [0-9]+' $L/$s.log | cut -d'|' -f3,5 | tr '\n' ' ')"
  grep -E "Error|Traceback" $L/$s.log | head -3
}
for c in bis/0e4c32e . bis/824cef0 bis/6878090 bis/aa6b8ec bis/0e4c32e .; do one $c; done
snap; echo "total $(( $(date +%s) - T0 )) s"
