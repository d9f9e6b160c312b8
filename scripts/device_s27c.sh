#!/bin/bash
# Nineteenth session, call 3 (nvidia-h200): the 70B / 13B half2 GEMV shapes (wo, w2: on the half2 row-pair path in
# the engine) in ring_probe: the register loop against a per-warp cp.async ring, each with loads only, and each
# phase alone (--set ko), beside a linear read of the same bytes.
source scripts/device_lib.sh s27c
LIMIT=400
nvidia-smi -L
timeout 200 python3 -m scripts.ring_probe --formats int4 --shapes wo_70b,w2_70b,w2_13b --out $L/ring.json \
  > $L/ring.log 2>&1; echo "=== ring rc $?"; grep -v "^$" $L/ring.log | cut -c1-160 | tail -n 60; snap
fits 100 "ko set" && timeout 120 python3 -m scripts.ring_probe --formats int4 --shapes w2_70b --set ko \
  --out $L/ring_ko.json > $L/ring_ko.log 2>&1; echo "=== ring ko rc $?"; cut -c1-160 $L/ring_ko.log | tail -n 20; snap
echo "total $(( $(date +%s) - T0 )) s"
