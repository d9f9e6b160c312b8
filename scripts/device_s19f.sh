#!/bin/bash
# Eleventh session, last call (nvidia-h200, < 5 minutes): the int4 tile matrices under the cursor loop against
# other tile configs (bench_quant --sweep mma: 8 / 16 warps, unroll 2 / 4, 2-8 warps a tile), 13B wqkv / w13
# first, then 7B wqkv / w13 / LM head: for the next session's mma_config (tuned before the cursor loop).
source scripts/device_lib.sh s19f
T0=$(date +%s)
snap() { tar -czf "$OUT/s19f.tgz" -C /tmp s19f; echo "[at $(( $(date +%s) - T0 )) s]"; }
sw() {  # preset matrices secs
  timeout $3 python3 -m scripts.bench_quant --preset $1 --formats int4 --sweep mma --no-table --matrices $2 \
    --out $L/sweep_mma_$1.json > $L/sweep_$1.log 2>&1
  echo "=== sweep $1 rc $?"; grep "^sweep" $L/sweep_$1.log | sed -e 's/^sweep int4  //' -e "s/'mma': 1, 'mma_min_pairs': 0, 'mma_shapes': (), //"
  snap
}
sw llama-2-13b wqkv+norm,w13+norm 110
sw llama-2-7b wqkv+norm,w13+norm,logits+norm 150
echo "total $(( $(date +%s) - T0 )) s"
