#!/bin/bash
# Prepared, not run (no device time was left in the twenty-fourth session).
# Twenty-fourth session, call j (nvidia-h200): persist_probe with 3 and 4 slots in flight beside 8 (s32i: the fence
# is not what the stagings cost; do their loads queue behind the ring's copies on the SM's return path?).
source scripts/device_lib.sh s32j
LIMIT=140
nvidia-smi -L
persist 120 bare_s3,stream_s3,bare_s4,stream_s4,stream_s8,s4
echo "total $(( $(date +%s) - T0 )) s"
