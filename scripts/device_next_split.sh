#!/bin/bash
# Prepared in the thirty-first session (nvidia-h200, ~5 min); its kernel-alone and chat-turn parts ran in the
# thirty-second session (s40f, one round; the decode edge in s40c), the rest not yet: what the key split
# costs where nothing is split, inside one tree (CUGRAPHLLM_PREFILL_SPLIT caps the splits: 8 the default, 4 fewer
# empty blocks, 0 every launch on the plain kernel), and where decode's last tokens of a 128-token run lose time.
# 1) its GPU tests; 2) the 7B fp16 prefill graphs of
# 16 / 64 / 128 rows from position 0 (prefill_ab, random ids, 100 ms idle), caps 8 / 4 / 0 alternating; 3) the
# kernel alone and the chat-turn TTFT, caps 8 / 4 / 0, one process each; 4) itl_drift after a 120-token prompt
# (positions 120-247 cross the 128-key bucket edge early; the s39c runs after 10 tokens took 3.36 ms in their last
# eighth against 3.30).
LIMIT=${LIMIT:-520}
source scripts/device_lib.sh next_split
t tests 80 -n 8 -rfE --tb=short tests/test_attention_prefill_gpu.py tests/test_attention_prefill_split_cpu.py; snap
S=CUGRAPHLLM_PREFILL_SPLIT
fits 120 ab && { timeout 120 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,64,128 --reps 20 \
  --rounds 3 --gap-ms 100 --random --order "tune1,tune1;$S=4,tune1;$S=0" --out $L/ab.json > $L/ab.log 2>&1
  echo "=== ab rc $?"; grep -E "setting|prefill_ms" $L/ab.log | cut -c1-200; snap; }
for r in 1 2; do
  for c in 8 4 0; do CUGRAPHLLM_PREFILL_SPLIT=$c attn_prefill_ab . attn_cap${c}_r$r 40; done
  for c in 8 4 0; do CUGRAPHLLM_PREFILL_SPLIT=$c turn_ab . turn_cap${c}_r$r 60; done; snap
done
fits 60 itl && { timeout 60 python3 -m scripts.itl_drift --runs 3 --prompt-len 120 --out $L/itl120.json \
  > $L/itl120.log 2>&1; echo "=== itl120 rc $?"; snap; }
