#!/bin/bash
# Twenty-ninth session, s37a (nvidia-h200, ~3 min): wave balance of the short prefill's own GEMMs
# (scripts/balance_probe.py) at 10 and 16 rows.
source scripts/device_lib.sh s37a
timeout 400 python3 -m scripts.balance_probe --ms 10,16 --out $L/balance.json > $L/balance.log 2>&1
echo "rc $?"; cat $L/balance.log | cut -c1-400
snap
