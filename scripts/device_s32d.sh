#!/bin/bash
# Record: needs the tree of 78faeb0 (persist_probe as it was then; benchmarks/results/twentyfourth_2026-12-02/s32d).
# Twenty-fourth session, call d (nvidia-h200): persist_probe's bare stream (no waits, no products) at 1, 2 and 3 blocks
# an SM, bulk and cp.async rings (s32c: 46-50 us a layer at one block an SM against a 25 us floor).
source scripts/device_lib.sh s32d
LIMIT=200
nvidia-smi -L
{ timeout 150 python3 -m scripts.persist_probe --out $L/persist.json --variants \
    bulk_stream,bulk_stream_x1_128,bulk_stream_x2,bulk_stream_x3,stream,stream_x2,bulk_stream > $L/persist.log 2>&1
  echo "=== persist rc $?"; tail -12 $L/persist.log; snap; }
echo "total $(( $(date +%s) - T0 )) s"
