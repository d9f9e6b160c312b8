#!/bin/bash
# Twentieth session, call g (nvidia-h200): 70B / 7B int4 wo and w2 on the tiles (today: half2) with the
# tile-contiguous addressing (knockout bit 64: the access pattern alone, on row-major bytes) under three tile configs
source scripts/device_lib.sh s28g
LIMIT=300
nvidia-smi -L
for m in 70b 7b; do
  for c in 16,8 8,8 8,4; do
    ko_int4 ko_${m}_${c/,/_} 60 $m 0,64 --matrices wo+ss,w2+ss --plan mma_min_pairs=0,warps=${c%,*},ksplit=${c#*,}
  done; snap
done
echo "total $(( $(date +%s) - T0 )) s"
