#!/bin/bash
# Fourteenth session, call 12 (nvidia-h200, < 5 min): the decode step's anatomy on today's main (7B fp16, positions
# 10 / 500 / 3900: us per kernel, bytes, % of copy, step graph, idle time; scripts/decode_anatomy.py).
source scripts/device_lib.sh s22l
timeout 270 python3 -m scripts.decode_anatomy --dtypes float16 --pos 10,500,3900 --out $L/anatomy.json > $L/anatomy.log 2>&1
echo "=== anatomy rc $?"; tail -40 $L/anatomy.log; snap
