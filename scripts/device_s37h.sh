#!/bin/bash
# Twenty-ninth session, s37h (nvidia-h200, ~2 min): 7B GPU prefill at 500 tokens sample after sample
# (scripts/prefill_drift.py, 60 samples a process): int4 with fresh prompts, the same prompt, fresh with 100 ms idle
# between samples, three processes with fresh prompts (is the state per process?); int8 twice and fp16 fresh. Why bench's TTFT at 500 moves with its sample count (int4 12.25 ms with 5
# samples in s37e, 15.51 with 30 in s37g).
source scripts/device_lib.sh s37h
LIMIT=${LIMIT:-420}
run() {  # STEM ARGS..
  local s=$1; shift
  fits 60 $s || return
  timeout 90 python3 -m scripts.prefill_drift --length 500 --samples 60 --out $L/$s.json "$@" > $L/$s.log 2>&1
  echo "=== $s rc $?"; python3 -c "import json; d=json.load(open('$L/$s.json')); print(d['median_first5'], d['median_all'], d['series'])" 2>&1 | cut -c1-700
  grep -E "Error|Traceback" $L/$s.log | head -3
}
run int4_fresh_a --quant int4
run int4_same --quant int4 --order same
run int4_fresh_b --quant int4
run int4_gap --quant int4 --gap-ms 100
run int8_fresh_a --quant int8
run int4_fresh_c --quant int4
run int8_fresh_b --quant int8
run fp16_fresh
snap; echo "total $(( $(date +%s) - T0 )) s"
