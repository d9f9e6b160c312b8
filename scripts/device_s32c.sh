#!/bin/bash
# Record: ran with scripts/persist_probe.py as of 9e88dd1 (now through device_lib.sh persist;
# benchmarks/results/twentyfourth_2026-12-02/s32c).
# Twenty-fourth session, call c (nvidia-h200): persist_probe with bulk-copy rings beside the cp.async ones (s32b: the
# cp.async ring streams at half the copy rate, 48 us a layer alone; s32a: half2 products 127 us a layer).
source scripts/device_lib.sh s32c
LIMIT=300
nvidia-smi -L
persist 240
echo "total $(( $(date +%s) - T0 )) s"
