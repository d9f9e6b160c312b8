#!/bin/bash
# Fourteenth session, call 7 (nvidia-h200, < 2 min): the probes after their shared-setup refactor (boundary_probe,
# chain_probe base set), same kernels and rows as s22b / s22c.
source scripts/device_lib.sh s22g
timeout 100 python3 -m scripts.boundary_probe --out $L/boundary.json > $L/boundary.log 2>&1; echo "=== boundary rc $?"
timeout 100 python3 -m scripts.chain_probe --formats int4 --out $L/chain.json > $L/chain.log 2>&1; echo "=== chain rc $?"
tail -12 $L/boundary.log; tail -14 $L/chain.log; snap
