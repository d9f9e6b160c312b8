#!/bin/bash
# Eighteenth session, call 4 (nvidia-h200): the int4 wgmma prefill kernel with group values loaded only when the
# group changes, under 2 / 3 / 4 consumer warpgroups (4: a register-giving producer warpgroup), 7B shapes at 512
# rows; and the SASS of the 3-warpgroup store kernel.
source scripts/device_lib.sh s26d
nvidia-smi -L
timeout 300 python3 -m scripts.w4_wgmma_probe --rows 512 --splits 1 --out $L/w4_probe.json --configs \
  wg2:bt128,wg3:bt128,wg3:bt128:pw1,wg4:bt128:pw1,wg4:bt128:pw1:ovl0,wg3:bt128:pr2,wg4:bt128:pw1:pr2 \
  > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-900 $L/w4_probe.log | tail -6; snap
/usr/local/cuda/bin/cuobjdump -sass .device/k_wg3.cubin > $L/wg3.sass 2>&1; grep -c "^ */\*[0-9a-f]*\*/" $L/wg3.sass
snap
echo "total $(( $(date +%s) - T0 )) s"
