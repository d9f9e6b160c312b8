#!/bin/bash
# Twentieth session, call c (nvidia-h200): the int4 tiles with the tile-contiguous addressing (QG_KO 64: the access
# pattern only, on row-major bytes) against today's, whole kernel (ko 0 / 64) and loads only (ko 7 / 71)
source scripts/device_lib.sh s28c
LIMIT=500
nvidia-smi -L
for m in 7b 13b 70b; do
  ko_int4 ko_$m 150 $m 0,64,7,71; snap
done
echo "total $(( $(date +%s) - T0 )) s"
