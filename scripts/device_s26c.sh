#!/bin/bash
# Eighteenth session, call 3 (nvidia-h200): what bounds the int4 wgmma prefill kernel: bench-only variants without
# loads after the first fill (pr1) or without wgmma (pr2), 64-token tiles (wave fill), and Nsight Compute's stall
# reasons on w2 / w13 at 512 rows.
source scripts/device_lib.sh s26c
nvidia-smi -L
timeout 300 python3 -m scripts.w4_wgmma_probe --rows 512 --splits 1 --out $L/w4_probe.json --configs \
  wg2:bt128,wg2:bt128:pr1,wg2:bt128:pr2,wg3:bt128,wg3:bt128:pr1,wg3:bt128:pr2,wg3:bt64,wg2:bt64,wg3:bt64:pw1 \
  > $L/w4_probe.log 2>&1
echo "=== probe rc $?"; cut -c1-900 $L/w4_probe.log | tail -6; snap
which ncu || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
timeout 200 ncu --clock-control none -k regex:w4_wgmma --launch-skip 1 --launch-count 3 --section WarpStateStats \
  --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active.ratio \
  python3 -m scripts.w4_ncu --cases w2:wg2:bt128,w13:wg3:bt128 > $L/ncu_stall.txt 2>&1
echo "=== ncu rc $?"
grep -E "w4_wgmma|stalled" $L/ncu_stall.txt | awk '{ if ($NF+0 > 0.05 || /w4_wgmma/) print }' | cut -c1-140 | head -80
snap
echo "total $(( $(date +%s) - T0 )) s"
