#!/bin/bash
# Thirty-fifth session, call s43g (nvidia-h200, ~1 min): on whatever machine this is, the MT 2 build of a4e9fad
# (bis/mt2 = git archive a4e9fad, --mt2: MT 1 and MT 2 in one process) beside this tree's --long (BN 64 and BN 32 in
# one process) and bis/bn32all (BN 32 alone), 1024 / 2048 rows from 0 / 1852, 2 rounds: s43d's machine ran BN 32
# 6% faster than BN 64 at 2048 rows, s43e / s43f's 7-13% slower; MT 2 was faster on every machine it met (s43a-s43d).
source scripts/device_lib.sh s43g
LIMIT=${LIMIT:-150}
ab() { prefill_ab $1 $2 40 0,1852 1024,2048 ${3:-}; }  # TREE STEM [ARG]
for r in 1 2; do ab bis/mt2 mt2_$r --mt2; ab . long_$r --long; ab bis/bn32all all_$r; done; snap
