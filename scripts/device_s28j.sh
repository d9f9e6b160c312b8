#!/bin/bash
# Twentieth session, call j (nvidia-h200): where the int4 tiles' time goes under the tile-contiguous access pattern
# (knockout bit 64 plus 1 prologue, 2 products, 4 epilogue, 7 all three): 13B and 70B with today's plan
source scripts/device_lib.sh s28j
LIMIT=200
nvidia-smi -L
for m in 13b 70b; do
  fits 70 "ko $m" && timeout 70 python3 -m scripts.quant_knockout --preset llama-2-$m --formats int4 \
    --kos 64,65,66,68,71 --jobs 14 --out $L/ko_$m.json > $L/ko_$m.log 2>&1; echo "=== ko $m rc $?"; tail -n 5 $L/ko_$m.log
  snap
done
echo "total $(( $(date +%s) - T0 )) s"
