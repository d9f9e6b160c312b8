#!/bin/bash
# Session 18 call 1 (nvidia-h200-x2, branch prologue-fix): the int4 access-pattern probe on a quiet GPU 0 first
# (scripts/int4_pattern_probe.py, ~40 s), then scripts/device_prologue_fix.sh on the same clock.
export T0=$(date +%s)
source scripts/device_lib.sh s18a
CUDA_VISIBLE_DEVICES=0 timeout 120 python3 -m scripts.int4_pattern_probe --out $L/int4_pattern_probe.json > $L/probe.log 2>&1
echo "probe rc $?"; tail -n 30 $L/probe.log
tar -czf "$OUT/s18a.tgz" -C /tmp s18a
bash scripts/device_prologue_fix.sh
