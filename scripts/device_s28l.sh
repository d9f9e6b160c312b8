#!/bin/bash
# Twentieth session, call l (nvidia-h200): what a staging without the |x| max pass and without the staging pass would
# save under the tile-contiguous pattern (knockouts 64 / 72 no staging pass / 80 no max pass / 88 neither), 13B, 70B
# and 7B int4: the bound on a raw-x staging (no scale, no conversion; only the iteration sums left)
source scripts/device_lib.sh s28l
LIMIT=150
nvidia-smi -L
for m in 13b 70b 7b; do
  ko_int4 ko_$m 45 $m 64,72,80,88
done
snap
echo "total $(( $(date +%s) - T0 )) s"
