#!/bin/bash
# Record: needs the tree of caa6065 (in main's history, reverted by bf88c89; benchmarks/results/
# twentythird_2026-12-02/s31g).
# Twenty-third session, call g (nvidia-h200): the one-block sampler (kernels/sampling_v4.cuh, ops_select "one",
# the new default "auto" up to 32768 logits). The graph-timed sampler bench, one and new (v3) in one process, then its
# GPU tests and the sampler suites (v1 / v2 / v3 / one against each other and NumPy).
source scripts/device_lib.sh s31g
LIMIT=300
nvidia-smi -L
{ timeout 80 python3 -m scripts.bench_sampler --samplers one,new --out $L/sampler.json > $L/sampler.log 2>&1
  echo "=== bench rc $?"; tail -24 $L/sampler.log; snap; }
t sampler 170 -n 14 -rfE --tb=short tests/test_sampling_v4_gpu.py tests/test_sampling_v2_gpu.py \
  tests/test_sampling_gpu.py tests/test_sampling_v3_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
