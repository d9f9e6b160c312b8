#!/bin/bash
# RECORD: run at the commit its results index row names; the A/B knobs batch_combine / lean_fence / early3 /
# split_all were folded into the default in 06e1cbd (bench_attention no longer has those variants).
# Twenty-fifth session, call c (nvidia-h200): the key-split decode attention's A/B knobs after s33b's knockouts (the
# ticket combine costs 2.5 us a launch at 1024-4096 keys; early loads before the PDL wait gained 0.7-2.2 us in
# bench_attention at 256 blocks): their GPU tests against the float64 reference (tests/test_attention_gpu.py, the
# new PLANS / GQA_PLANS rows), bench_attention per bucket, then 7B fp16 decode at prompt 2000 / 3900 with
# early=3,batch_combine=1,lean_fence=1 against the default, one process each, alternating.
source scripts/device_lib.sh s33c
LIMIT=${LIMIT:-540}
E2E="--backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 1 --no-plot --out $L/bench"
nvidia-smi -L
t attn 150 -rfE --tb=short tests/test_attention_gpu.py -k "other_plans or gqa_split or bucket_edges"; snap
attn_variants attention 120 batch_combine,lean_fence,early3,split_all
for v in "0:-" "0:early=3,batch_combine=1,lean_fence=1" "0:-" "0:early=3,batch_combine=1,lean_fence=1"; do
  attn_bench p_$(( $(date +%s) - T0 )) 80 ${v%%:*} ${v#*:} $E2E --preset llama-2-7b --lengths 2000,3900; done; snap
echo "total $(( $(date +%s) - T0 )) s"
