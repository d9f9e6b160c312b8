#!/bin/bash
# Twenty-fourth session, call i (nvidia-h200): persist_probe's counters as release / acquire atomics without
# MEMBAR.GPU (FENCE 0) beside __threadfence (s32h: the stagings and counters added 15 us a layer to the bare stream
# even without waiting, as if each fence drained the ring's copies in flight).
source scripts/device_lib.sh s32i
LIMIT=240
nvidia-smi -L
persist 200 stream_s8,stream_s8_rel,noprod_s8,noprod_s8_rel,s8,s8_rel,s4_nt512,s4_nt512_rel,bare_s8
echo "total $(( $(date +%s) - T0 )) s"
