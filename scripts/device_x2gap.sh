#!/bin/bash
# Eighth session (2026-11-30), nvidia-h200-x2, fourth call. 1) Both GPUs: the all-reduce and TP GPU tests (the
# lone-rank helper and allreduce_layout split of the seventh session's review, never run on a GPU). 2) 70B TP2
# prefill graphs with token 0 vs random ids in their rows, and generate()'s GPU prefill, SM clocks / power logged.
# 3) GPU 0: 7B fp8 end to end, the unscaled product everywhere (CUGRAPHLLM_FP8_OUTER_SCALE=0) vs the default
# (scaled from 384 rows), two rounds; GPU 1 meanwhile: Nsight Compute on the v2 sampler kernels (source counters).
# Results in $OUT/x2gap.tgz, refreshed after each step.
source scripts/device_lib.sh x2gap
which ncu >/dev/null || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
T0=$(date +%s)
snap() { tar -czf "$OUT/x2gap.tgz" -C /tmp x2gap; echo "[at $(( $(date +%s) - T0 )) s]"; }
t peer 150 tests/test_allreduce_lamport_gpu.py tests/test_allreduce_gpu.py tests/test_tp_gpu.py; snap
nvidia-smi --query-gpu=timestamp,index,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv -lms 200 \
  > $L/clocks_70b.csv 2>&1 &
SMI=$!
timeout 110 python3 -m scripts.prefill_ab --preset llama-2-70b --tp 2 --buckets 128,512 --reps 5 --rounds 3 \
  --random --partial 12 --order tune1 --out $L/gap_70b.json > $L/gap_70b.log 2>&1
echo "=== 70b gap rc $?"; grep setting $L/gap_70b.log; kill $SMI; snap
( export CUDA_VISIBLE_DEVICES=0
  for r in 1 2; do for s in 0 1; do
    CUGRAPHLLM_FP8_OUTER_SCALE=$s timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b \
      --quant fp8 --modes hybrid --lengths 10,128,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 5 --no-plot \
      --out $L/bench --stem fp8_outer${s}_r$r > $L/fp8_outer${s}_r$r.log 2>&1
    echo "=== fp8 outer=$s round $r rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|128|500) \| 64' $L/fp8_outer${s}_r$r.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
  done; done ) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 150 ncu --clock-control none -k regex:sample_ --launch-count 8 --section SourceCounters \
    --section WarpStateStats --section SpeedOfLight --section Occupancy -f -o $L/samp \
    python3 -m scripts.ncu_decode --no-gemv --sample --reps 2 > $L/ncu_run.log 2>&1
  echo "[ncu rc $?]"; tail -3 $L/ncu_run.log
  ncu -i $L/samp.ncu-rep --page source --csv --print-source sass > $L/samp_sass.csv 2> $L/ncu_src.err
  echo "[source page rc $? $(wc -l < $L/samp_sass.csv) lines]"; head -c 300 $L/ncu_src.err
  ncu -i $L/samp.ncu-rep --page details > $L/samp_details.txt 2>&1
  grep -E "^  [a-z_0-9]+ \(|Duration" $L/samp_details.txt | head -20 ) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0; cat $L/gpu0.txt; wait $P1; cat $L/gpu1.txt
rm -f $L/samp.ncu-rep.tmp; snap
