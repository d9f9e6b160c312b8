#!/bin/bash
# Eighteenth session, call 2 (nvidia-h200): the int4 wgmma prefill kernel under ring depth (st), k-tiles a batch (kb),
# no in-batch overlap (ovl0) and a register-giving producer warpgroup (pw1), 7B shapes at 512 rows, each config
# checked against NumPy float64 first (scripts/w4_wgmma_probe.py).
# (Configs with the kb / ovl fields ran on that call's working tree; the probe no longer takes them.)
source scripts/device_lib.sh s26b
nvidia-smi -L
timeout 450 python3 -m scripts.w4_wgmma_probe --rows 512 --splits 1 --out $L/w4_probe.json --configs \
  wg2:bt128,wg2:bt128:st8,wg2:bt128:kb2:st8,wg2:bt128:kb2:st8:pw1,wg2:bt128:kb4:st8:pw1,wg3:bt128,wg3:bt128:st7,wg3:bt128:ovl0,wg3:bt128:st7:pw1,wg3:bt128:kb2:st7:pw1 \
  > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-900 $L/w4_probe.log | tail -16; snap
echo "total $(( $(date +%s) - T0 )) s"
