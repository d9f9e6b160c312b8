#!/bin/bash
# Thirty-third session, call s41e (nvidia-h200, ~3 min): bench --paper (hybrid, 7B fp16, 128 new tokens, 3 runs,
# 100 TTFT samples a length) in bis/main (72d0b5a, the tree before the session) and bis/new (be581bf), alternating,
# 2 rounds: s41d's 3.29-3.40 ms/token against the earlier sessions' 3.46-3.57, same tree or same machine state?
source scripts/device_lib.sh s41e
LIMIT=${LIMIT:-330}
B="--backend cuda --preset llama-2-7b --modes hybrid --no-plot --out $L/bench"
for r in 1 2; do for t in main new; do
  (cd bis/$t && run_bench paper_${t}_$r 75 --paper --new-tokens 128 --reps 3); done; done; snap
