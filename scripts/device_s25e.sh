#!/bin/bash
# Seventeenth session, call 6 (nvidia-h200): the int4 wgmma probe software-pipelined: the next tile's loads and exact
# (q - z) made while the batch runs (not wgmma operands), only the scale products after it completes.
source scripts/device_lib.sh s25e
nvidia-smi -L
timeout 300 python3 -m scripts.w4_wgmma_probe --configs bt128,wg3:bt128,wg3:bt128:nodeq,bt64,bt192,bt256 \
  --splits 1,2 --rows 512,128 --out $L/w4_probe.json > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-800 $L/w4_probe.log | tail -14; snap
echo "total $(( $(date +%s) - T0 )) s"
