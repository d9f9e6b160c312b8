#!/bin/bash
# Record: ran with scripts/persist_probe.py as of 43229a2 (now through device_lib.sh persist;
# benchmarks/results/twentyfourth_2026-12-02/s32b).
# Twenty-fourth session, call b (nvidia-h200): persist_probe with tensor-core products and the tile layout (s32a's
# half2 products and per-chunk 64-bit slice arithmetic ran at 127 us a layer, its bare stream at 70).
source scripts/device_lib.sh s32b
LIMIT=300
nvidia-smi -L
persist 240
echo "total $(( $(date +%s) - T0 )) s"
