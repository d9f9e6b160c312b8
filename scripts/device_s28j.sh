#!/bin/bash
# Twentieth session, call j (nvidia-h200): where the int4 tiles' time goes under the tile-contiguous access pattern
# (knockout bit 64 plus 1 prologue, 2 products, 4 epilogue, 7 all three): 13B and 70B with today's plan
source scripts/device_lib.sh s28j
LIMIT=200
nvidia-smi -L
for m in 13b 70b; do
  ko_int4 ko_$m 70 $m 64,65,66,68,71; snap
done
echo "total $(( $(date +%s) - T0 )) s"
