#!/bin/bash
# Record: needs the tree of 07cfd84 (persist_probe as it was then; benchmarks/results/twentyfourth_2026-12-02/s32a).
# Twenty-fourth session, call a (nvidia-h200): scripts/persist_probe.py (the int4 GEMVs of 32 7B layers in one
# persistent kernel, grid-wide counters, the weight ring running ahead of the dependencies) in every variant; beside
# it in the same call chain_probe's int4 rows (today's design's floor) and 7B int4 decode through the engine.
source scripts/device_lib.sh s32a
LIMIT=480
nvidia-smi -L
{ timeout 200 python3 -m scripts.persist_probe --out $L/persist.json > $L/persist.log 2>&1
  echo "=== persist rc $?"; cat $L/persist.log | tail -12; snap; }
{ timeout 120 python3 -m scripts.chain_probe --formats int4 --out $L/chain.json > $L/chain.log 2>&1
  echo "=== chain rc $?"; tail -16 $L/chain.log; snap; }
fits 150 "engine int4" && { timeout 150 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --quant int4 \
  --modes hybrid --prompt-lens 10 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench \
  --stem int4_7b > $L/int4.log 2>&1; tpot $? int4 "engine int4 7B"; snap; }
echo "total $(( $(date +%s) - T0 )) s"
