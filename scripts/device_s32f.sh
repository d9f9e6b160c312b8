#!/bin/bash
# Twenty-fourth session, call f (nvidia-h200): persist_probe with a producer warp (full / empty mbarriers, one
# cp.async.bulk a chunk, no consumer turn waits on an issue); s32e's ring without it: about 32 us a layer + 0.28 us a
# chunk for the bare stream, 74.5 us with products.
source scripts/device_lib.sh s32f
LIMIT=240
nvidia-smi -L
persist 200
echo "total $(( $(date +%s) - T0 )) s"
