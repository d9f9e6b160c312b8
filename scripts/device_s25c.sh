#!/bin/bash
# Seventeenth session, calls 3-4 (nvidia-h200): the int4 wgmma probe with the 4-instruction dequantization (0x5400 /
# 0x6400 biases), 2 / 3 consumer warpgroups, BT 128 / 256; and the SASS of its main loop (one / two k-tiles a trip;
# cubins compiled here into tmp_sass/, since removed). Both runs stopped at a check failure: a race (below).
source scripts/device_lib.sh s25c
nvidia-smi -L
for f in tmp_sass/*.cubin; do cuobjdump -sass $f > $L/$(basename $f .cubin).sass; grep -c "HGMMA" $L/$(basename $f .cubin).sass; done
timeout 300 python3 -m scripts.w4_wgmma_probe --configs bt128:unr1,wg3:bt128:unr1,wg3:bt128:unr1:nodeq,bt256:unr1,wg3:bt64:unr1 \
  --splits 1,2 --rows 512,128 --out $L/w4_probe.json > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-700 $L/w4_probe.log | tail -14; snap
echo "total $(( $(date +%s) - T0 )) s"
