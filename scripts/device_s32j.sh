#!/bin/bash
# Prepared, not run (no device time was left in the twenty-fourth session).
# Twenty-fourth session, call j (nvidia-h200): persist_probe with 3 and 4 slots in flight beside 8 (s32i: the fence
# is not what the stagings cost; do their loads queue behind the ring's copies on the SM's return path?).
source scripts/device_lib.sh s32j
LIMIT=140
nvidia-smi -L
{ timeout 120 python3 -m scripts.persist_probe --out $L/persist.json --variants \
    bare_s3,stream_s3,bare_s4,stream_s4,stream_s8,s4 > $L/persist.log 2>&1
  echo "=== persist rc $?"; tail -12 $L/persist.log; snap; }
echo "total $(( $(date +%s) - T0 )) s"
