#!/bin/bash
# Thirteenth session, call 6 (nvidia-h200, < 2 min): ring_probe --set cvt, fp8 products with the hardware e4m3
# convert (fp8) against integer ops (fp8i), alone and whole, on the 7B shapes.
source scripts/device_lib.sh cvt
timeout 200 python3 -m scripts.ring_probe --set cvt --formats fp8,fp8i --out $L/cvt.json > $L/cvt.log 2>&1
echo "=== probe rc $?"; grep -v "^\s*$" $L/cvt.log | grep -v "same bits" | sed 's/"pf128": 0, //; s/"ring": 0, //' | cut -c1-120; snap
