#!/bin/bash
# Twentieth session, call l (nvidia-h200): what a staging without the |x| max pass and without the staging pass would
# save under the tile-contiguous pattern (knockouts 64 / 72 no staging pass / 80 no max pass / 88 neither), 13B, 70B
# and 7B int4: the bound on a raw-x staging (no scale, no conversion; only the iteration sums left)
source scripts/device_lib.sh s28l
LIMIT=150
nvidia-smi -L
for m in 13b 70b 7b; do
  fits 45 "ko $m" && timeout 45 python3 -m scripts.quant_knockout --preset llama-2-$m --formats int4 \
    --kos 64,72,80,88 --jobs 14 --out $L/ko_$m.json > $L/ko_$m.log 2>&1; echo "=== ko $m rc $?"; tail -n 5 $L/ko_$m.log
done
snap
echo "total $(( $(date +%s) - T0 )) s"
