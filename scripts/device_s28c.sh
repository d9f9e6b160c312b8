#!/bin/bash
# Twentieth session, call c (nvidia-h200): the int4 tiles with the tile-contiguous addressing (QG_KO 64: the access
# pattern only, on row-major bytes) against today's, whole kernel (ko 0 / 64) and loads only (ko 7 / 71)
source scripts/device_lib.sh s28c
LIMIT=500
nvidia-smi -L
for m in 7b 13b 70b; do
  fits 150 "ko $m" && timeout 150 python3 -m scripts.quant_knockout --preset llama-2-$m --formats int4 \
    --kos 0,64,7,71 --jobs 14 --out $L/ko_$m.json > $L/ko_$m.log 2>&1; echo "=== ko $m rc $?"; tail -n 5 $L/ko_$m.log
  snap
done
echo "total $(( $(date +%s) - T0 )) s"
