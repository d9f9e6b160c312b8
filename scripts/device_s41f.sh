#!/bin/bash
# Thirty-third session, call s41f (nvidia-h200, ~1.5 min), the tree at be581bf: 7B fp16 decode at 3900 cached
# tokens and TTFT at 1000 / 2000 / 3900 tokens (--prefill-rows 2048), issue #13's long-context rows, on the day
# s41e's paper protocol ran at 3.29-3.40 ms/token with the tree before the session too.
source scripts/device_lib.sh s41f
LIMIT=${LIMIT:-200}
B="--backend cuda --preset llama-2-7b --modes hybrid --no-plot --out $L/bench"
run_bench long 150 --lengths 1000,2000,3900 --new-tokens 64 --reps 3 --ttft-reps 5 --prefill-rows 2048 --max-seq-len 4096; snap
