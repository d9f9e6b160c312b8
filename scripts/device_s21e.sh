#!/bin/bash
# Thirteenth session, call 5 (nvidia-h200, < 3 min): ring_probe --set ko, each phase of the half2 row-pair GEMV alone
# (loads only, products only on made-up weights) and more warps an SM, int4 and fp8 on the 7B shapes.
source scripts/device_lib.sh ringko
timeout 300 python3 -m scripts.ring_probe --set ko --out $L/ring_ko.json > $L/ring_ko.log 2>&1; echo "=== probe rc $?"
grep -v "^\s*$" $L/ring_ko.log | grep -v "same bits" | sed 's/"pf128": 0, //; s/"ring": 0, //' | cut -c1-120; snap
