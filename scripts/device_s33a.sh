#!/bin/bash
# RECORD: run at the commit its results index row names; the A/B knobs batch_combine / lean_fence / early3 /
# split_all were folded into the default in 06e1cbd (bench_attention no longer has those variants).
# Twenty-fifth session, call a (nvidia-h200): where the v3 sampler's 13.8 us go (bench_sampler --ko: the draw stopped
# after each phase), the v3 sampler GPU tests with the knockout switch in the tree (default build unchanged), and
# decode attention knockouts per bucket (bench_attention --variants: the ticket combine skipped, the key walk skipped,
# both; the cluster combine and early loads forced on at 256 blocks; the ticket combine with batched loads), and the twenty-fourth session's prepared
# persist_probe rings of 3 / 4 slots (device_s32j.sh).
source scripts/device_lib.sh s33a
LIMIT=420
nvidia-smi -L
timeout 200 python3 -m scripts.bench_sampler --samplers new --ko 1,2,3,4,5 --out $L/sampler_ko.json > $L/sampler_ko.log 2>&1
echo "=== sampler_ko rc $?"; grep -E "V  +32000" $L/sampler_ko.log; snap
t samp3 90 tests/test_sampling_v3_gpu.py -x -n 4; snap
attn_variants attn_ko 200 ko_combine,ko_walk,ko_both,cluster_on,early_on,batch_combine
fits 130 persist && persist 120 bare_s3,stream_s3,bare_s4,stream_s4,stream_s8,s4
echo "total $(( $(date +%s) - T0 )) s"
