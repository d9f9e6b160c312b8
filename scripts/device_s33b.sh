#!/bin/bash
# RECORD: run at the commit its results index row names; the A/B knobs batch_combine / lean_fence / early3 /
# split_all were folded into the default in 06e1cbd (bench_attention no longer has those variants).
# Twenty-fifth session, call b (nvidia-h200): the decode attention knockouts of device_s33a.sh again (its bench_attention
# run stopped in launch_overhead: fixed in the commit before this script).
source scripts/device_lib.sh s33b
LIMIT=400
attn_variants attn_ko 300 ko_combine,ko_walk,ko_both,cluster_on,early_on,batch_combine
