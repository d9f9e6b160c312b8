#!/bin/bash
# Twenty-fourth session, call e (nvidia-h200): persist_probe with chunks of two and three tiles a warp (s32d: about 22 us
# a layer plus 0.5 us a chunk; is the cost a chunk's?).
source scripts/device_lib.sh s32e
LIMIT=200
nvidia-smi -L
persist 150 bulk_stream,bulk_stream_t2,bulk_stream_t3,stream_t2,bulk_t2,bulk,bulk_stream
echo "total $(( $(date +%s) - T0 )) s"
