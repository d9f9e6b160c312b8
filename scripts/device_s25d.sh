#!/bin/bash
# Seventeenth session, call 5 (nvidia-h200): the int4 wgmma probe, each batch completed before the next tile's fragments overwrite its
# registers (the race of calls 3-4); 2 / 3 consumer warpgroups, BT 128 / 64.
source scripts/device_lib.sh s25d
nvidia-smi -L

timeout 300 python3 -m scripts.w4_wgmma_probe --configs bt128,wg3:bt128,wg3:bt128:nodeq,wg3:bt64,bt64 \
  --splits 1,2 --rows 512,128 --out $L/w4_probe.json > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-700 $L/w4_probe.log | tail -14; snap
echo "total $(( $(date +%s) - T0 )) s"
