#!/bin/bash
# Seventh session (2026-11-30), nvidia-h200-x2. GPU 0: the prefill GEMMs of 7B (one GPU) and of 13B / 70B per GPU
# under TP2, cuBLAS GemmEx against each cuBLASLt heuristic algorithm, with their read / compute floors
# (scripts/bench_gemm_lt.py). GPU 1 meanwhile: Nsight Compute source counters (stall samples per SASS instruction)
# of the int4 decode GEMVs of one 7B layer (scripts/ncu_decode.py). Then both GPUs: NCCL all-reduce time at the
# prefill sizes, f32 and fp16 (scripts/bench_nccl_sizes.py). Logs, JSON and the ncu report in $OUT/lt.tgz.
source scripts/device_lib.sh lt
T0=$(date +%s)
which ncu >/dev/null || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1:/usr/local/cuda/bin
( export CUDA_VISIBLE_DEVICES=0
  timeout 300 python3 -m scripts.bench_gemm_lt --sets 7b,70b-tp2,13b-tp2 --ms 128,512,256 --algos 10 \
    --out $L/gemm_lt.json > $L/gemm_lt.log 2>&1
  echo "[gemm_lt rc $? at $(( $(date +%s) - T0 )) s]"; grep -vE "^\s+lt[0-9]" $L/gemm_lt.log | tail -45
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 200 ncu --clock-control none -k regex:qgemv_ --launch-count 8 --section SourceCounters \
    --section WarpStateStats --section SpeedOfLight --section Occupancy -f -o $L/int4src \
    python3 -m scripts.ncu_decode --format int4 --reps 2 > $L/ncu_run.log 2>&1
  echo "[ncu rc $? at $(( $(date +%s) - T0 )) s]"; tail -3 $L/ncu_run.log
  ncu -i $L/int4src.ncu-rep --page source --csv --print-source sass > $L/int4_sass.csv 2> $L/ncu_src.err
  echo "[source page rc $? $(wc -l < $L/int4_sass.csv) lines]"; head -c 600 $L/ncu_src.err
  ncu -i $L/int4src.ncu-rep --page details > $L/int4_details.txt 2>&1
  grep -E "qgemv|Duration|DRAM Throughput|Warp Cycles Per Issued|Achieved Occupancy" $L/int4_details.txt | head -40
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
timeout 120 python3 -m scripts.bench_nccl_sizes --rows 16,128,512 --dims 4096,5120,8192 --out $L/nccl_sizes.json \
  > $L/nccl.log 2>&1; echo "[nccl rc $? at $(( $(date +%s) - T0 )) s]"
cat $L/gpu0.txt $L/gpu1.txt $L/nccl.log; echo "total $(( $(date +%s) - T0 )) s"
tar -czf "$OUT/lt.tgz" -C /tmp lt
