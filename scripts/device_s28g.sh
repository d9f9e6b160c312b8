#!/bin/bash
# Twentieth session, call g (nvidia-h200): 70B / 7B int4 wo and w2 on the tiles (today: half2) with the
# tile-contiguous addressing (knockout bit 64: the access pattern alone, on row-major bytes) under three tile configs
source scripts/device_lib.sh s28g
LIMIT=300
nvidia-smi -L
for m in 70b 7b; do
  for c in 16,8 8,8 8,4; do
    fits 60 "ko $m $c" && timeout 60 python3 -m scripts.quant_knockout --preset llama-2-$m --formats int4 \
      --matrices wo+ss,w2+ss --kos 0,64 --plan mma_min_pairs=0,warps=${c%,*},ksplit=${c#*,} --jobs 14 \
      --out $L/ko_${m}_${c/,/_}.json > $L/ko_${m}_${c/,/_}.log 2>&1
    echo "=== ko $m tiles $c rc $?"; tail -n 2 $L/ko_${m}_${c/,/_}.log
  done; snap
done
echo "total $(( $(date +%s) - T0 )) s"
