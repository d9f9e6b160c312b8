#!/bin/bash
# Record: needs the tree of 43229a2 (persist_probe as it was then; benchmarks/results/twentyfourth_2026-12-02/s32b).
# Twenty-fourth session, call b (nvidia-h200): persist_probe with tensor-core products and the tile layout (s32a's
# half2 products and per-chunk 64-bit slice arithmetic ran at 127 us a layer, its bare stream at 70).
source scripts/device_lib.sh s32b
LIMIT=300
nvidia-smi -L
{ timeout 240 python3 -m scripts.persist_probe --out $L/persist.json > $L/persist.log 2>&1
  echo "=== persist rc $?"; tail -12 $L/persist.log; snap; }
echo "total $(( $(date +%s) - T0 )) s"
