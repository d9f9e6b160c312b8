#!/bin/bash
# Last nvidia-h200 call of 2026-11-30's fifth session (~5 minutes of device time left): the default server timed
# after the library (no --interleave), 60 requests a length, a second sample of server_7b_2026-11-30l; then the
# 13B sharded-folder proof of issue 11 (scripts/mem_13b.py, its child now run as a module).
source scripts/device_lib.sh last5
T=.device/shared/models/llama2-tokenizer/tokenizer.model
timeout 120 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 --tokenizer $T \
  --new-tokens 16 --reps 60 --warmup 5 --out "$L/bench/server_7b_seq2.json" > "$L/server_7b_seq2.log" 2>&1
echo "=== sequential exit $?"; grep -E "TTFT (median|less)" "$L/server_7b_seq2.log"
tar -czf "$OUT/last5.tgz" -C /tmp last5
timeout 170 python3 -m scripts.mem_13b --out /tmp/llama13b --json $L/bench/mem_13b.json > $L/mem_13b.log 2>&1
echo "=== mem_13b exit $?"; tail -n 4 $L/mem_13b.log
tar -czf "$OUT/last5.tgz" -C /tmp last5
