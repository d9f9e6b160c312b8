#!/bin/bash
# Thirty-fifth session, call s43f (nvidia-h200, ~2 min): why the BN 32 build ran 2048 rows in 11.0 ms (s43d, a tree
# whose default BN was 32) but 12.65 in s43e (the same PTX as this tree's long build, timed beside the BN 64 one in
# one process). bis/bn32all = this tree with the default BN 32; each process times 1024 / 2048 rows from 0 / 1852:
# bis/bn32all alone, this tree with --long (both builds, alternating per row), this tree with every bucket on the long
# build (CUGRAPHLLM_PREFILL_LONG_ROWS=1, its BN 64 module loaded but unused); 2 rounds.
source scripts/device_lib.sh s43f
LIMIT=${LIMIT:-200}
ab() { (export ${3:-X=1}; prefill_ab $1 $2 40 0,1852 1024,2048 ${4:-}); }  # TREE STEM [ENV=VALUE] [--long]
for r in 1 2; do ab bis/bn32all all_$r; ab . both_$r X=1 --long; ab . envlong_$r CUGRAPHLLM_PREFILL_LONG_ROWS=1; done; snap
