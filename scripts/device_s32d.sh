#!/bin/bash
# Record: ran with scripts/persist_probe.py as of 78faeb0 (now through device_lib.sh persist;
# benchmarks/results/twentyfourth_2026-12-02/s32d).
# Twenty-fourth session, call d (nvidia-h200): persist_probe's bare stream (no waits, no products) at 1, 2 and 3 blocks
# an SM, bulk and cp.async rings (s32c: 46-50 us a layer at one block an SM against a 25 us floor).
source scripts/device_lib.sh s32d
LIMIT=200
nvidia-smi -L
persist 150 bulk_stream,bulk_stream_x1_128,bulk_stream_x2,bulk_stream_x3,stream,stream_x2,bulk_stream
echo "total $(( $(date +%s) - T0 )) s"
