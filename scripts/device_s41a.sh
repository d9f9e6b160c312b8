#!/bin/bash
# Thirty-third session, call s41a (nvidia-h200, ~9 min): bis/main = the tree before (HEAD 72d0b5a).
# 1) where the block scheduler puts the prefill attention's working blocks (scripts/probe_smid.py); 2) GPU tests of
# the one-trip 256-key decode plan and the split grid (n_split, H, tiles); 3) 7B fp16 decode at prompt 130 (every
# step in the 256-key bucket) and 10 (control: plans unchanged), both trees alternating, 2 rounds; 4) the prefill
# attention alone and chat-turn TTFT, both trees.
source scripts/device_lib.sh s41a
LIMIT=${LIMIT:-560}
timeout 60 python3 -m scripts.probe_smid --out $L/smid.json 2>&1 | tail -8; snap
t attn 200 -n 0 -rfE --tb=short tests/test_attention_gpu.py; snap
t prefill 90 -n 4 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_attention_cpu.py; snap
B="--backend cuda --modes hybrid --new-tokens 64 --reps 3 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench --preset llama-2-7b"
for r in 1 2; do
  (cd bis/main && run_bench main130_$r 45 --lengths 130); run_bench new130_$r 45 --lengths 130; done; snap
(cd bis/main && run_bench main10 45 --lengths 10); run_bench new10 45 --lengths 10; snap
attn_prefill_ab . attn_new 45; attn_prefill_ab bis/main attn_main 45; snap
turn_ab . turn_new 45; turn_ab bis/main turn_main 45; snap
