#!/bin/bash
# Twenty-fourth session, call h (nvidia-h200): persist_probe phase by phase on the ring whose bare stream ran at the
# copy floor in s32g (8 slots of one tile a warp: 24.0 us a layer), and 512 consumer threads on 4 slots.
source scripts/device_lib.sh s32h
LIMIT=240
nvidia-smi -L
persist 200 bare_s8,stream_s8,noprod_s8,nowait_s8,s8,bare_s8_nt512,s4_nt512,nt512,bare_s8
echo "total $(( $(date +%s) - T0 )) s"
