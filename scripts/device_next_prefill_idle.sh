#!/bin/bash
# Prepared in the twenty-ninth session (nvidia-h200, ~4 min), not yet run: where a 7B fp16 prefill from idle spends
# its time (#13: 11.1 ms at 500 tokens from idle, s37i, against 6.55 TFLOP / 790 TFLOP/s = 8.3 ms at the full clock
# and a 9.5 ms target). scripts/prefill_ab.py with --gap-ms 100 (each replay from pos 0 after 100 ms idle, timed
# alone): the 16 / 128 / 512-row graphs whole and with the GEMMs, the attention or the norms knocked out; then the
# same whole graphs back to back for the contrast.
source scripts/device_lib.sh next_prefill_idle
LIMIT=${LIMIT:-500}
timeout 300 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,128,512 --reps 10 --rounds 2 --gap-ms 100 \
  --order "tune1,tune1;ko:gemm,tune1;ko:attn,tune1;ko:norm,tune1" --out $L/idle.json > $L/idle.log 2>&1
echo "=== idle rc $?"; grep -E "setting|prefill_ms" $L/idle.log | cut -c1-300; grep -E "Error|Trace" $L/idle.log | head
snap
timeout 150 python3 -m scripts.prefill_ab --preset llama-2-7b --buckets 16,128,512 --reps 10 --rounds 2 \
  --order "tune1,tune1" --out $L/b2b.json > $L/b2b.log 2>&1
echo "=== back to back rc $?"; grep -E "setting|prefill_ms" $L/b2b.log | cut -c1-300
snap; echo "total $(( $(date +%s) - T0 )) s"
