#!/bin/bash
# Sampler v3 (branch sampler-v3, issue #13), nvidia-h200, one call (~6 min). 1) The sampler GPU tests: v3's
# workspace layout / fast-path flag (test_sampling_v3_gpu.py), v2 and v3 against v1 token for token with graph
# replay (test_sampling_v2_gpu.py), the default sampler (now v3) against NumPy, and the engine / decode-graph
# tests. 2) new (v3) vs v2 vs old (v1) graph-timed in one process (scripts/bench_sampler.py). 3) Nsight Compute on
# the v2 and v3 draw kernels (eager, caches not flushed between passes): duration, elapsed vs SM-active cycles.
# Results in $OUT/samp3.tgz, refreshed after each step.
source scripts/device_lib.sh samp3
which ncu >/dev/null || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
T0=$(date +%s)
snap() { tar -czf "$OUT/samp3.tgz" -C /tmp samp3; echo "[at $(( $(date +%s) - T0 )) s]"; }
t samp3_tests 200 -n 8 tests/test_sampling_v3_gpu.py tests/test_sampling_v2_gpu.py tests/test_sampling_gpu.py \
  tests/test_decode_graph_gpu.py tests/test_engine_gpu.py; snap
timeout 90 python3 -m scripts.bench_sampler --samplers new,v2,old --out $L/sampler.json > $L/sampler.log 2>&1
echo "=== sampler rc $?"; grep -v "^$" $L/sampler.log | tail -n 40; snap
for v in v2 new; do
  CUGRAPHLLM_SAMPLER=$v timeout 100 ncu --clock-control none --cache-control none -k regex:sample_ --launch-count 8 \
    --section SpeedOfLight --section WarpStateStats --section SourceCounters -f -o $L/ncu_$v \
    python3 -m scripts.ncu_decode --no-gemv --sample --reps 2 > $L/ncu_run_$v.log 2>&1
  echo "=== ncu $v rc $?"
  ncu -i $L/ncu_$v.ncu-rep --page details > $L/ncu_details_$v.txt 2>&1
  grep -E "^  [a-z_0-9]+ \(|Duration|Elapsed Cycles|SM Active Cycles" $L/ncu_details_$v.txt | head -40
  rm -f $L/ncu_$v.ncu-rep
done; snap
