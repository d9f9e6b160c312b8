#!/bin/bash
# Twentieth session, call b (nvidia-h200): the int4 tile loads alone under padded row pitches (scripts/pitch_probe.py)
source scripts/device_lib.sh s28b
nvidia-smi -L
timeout 300 python3 -m scripts.pitch_probe --out $L/pitch.json > $L/pitch.log 2>&1; echo "=== pitch rc $?"
cat $L/pitch.log | grep -v "^compiled"; snap
echo "total $(( $(date +%s) - T0 )) s"
