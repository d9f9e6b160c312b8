#!/bin/bash
# Fourteenth session, call 3 (nvidia-h200, < 4 min): scripts/chain_probe.py (dependent weight-streaming kernels:
# register first round vs shared-memory prefetch before griddepcontrol.wait, beside independent PDL reads).
source scripts/device_lib.sh s22c
nvidia-smi -L
timeout 200 python3 -m scripts.chain_probe ${SET:+--set $SET} --out $L/chain${SET:-}.json > $L/chain${SET:-}.log 2>&1
echo "=== chain rc $?"; cat $L/chain${SET:-}.log | tail -32; snap
echo "total $(( $(date +%s) - T0 )) s"
