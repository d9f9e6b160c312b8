#!/bin/bash
# Last call of the fourth session. GPU 0: 7B decode per format, one process each: the main before the GEMV
# change (.device/old) against this tree, and int8 / fp8 with the tensor-core tiles on every matrix swapped in;
# then Nsight Compute over the new int4 GEMVs (stall reasons, for the next step). GPU 1: the HTTP A/B (one server at a time), then the GPU
# tests of the changed code (quantized GEMV paths in parallel workers, PDL, engines, server).
source scripts/device_lib.sh final4
E2E="bench --backend cuda --preset llama-2-7b --modes hybrid --prompt-lens 10,500 --new-tokens 64 --reps 2 \
  --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
row() { grep -H -E "^\| cugraphllm-hybrid \| (10|500) \| 64" "$@"; }
( export CUDA_VISIBLE_DEVICES=0
  for f in int4 int8 fp8; do  # fp8's old / new A/B is device_pipe.sh's (its kernels have not changed since)
    [ $f = fp8 ] || (cd .device/old && timeout 60 python3 -m cugraphllm $E2E --quant $f --stem e2e_${f}_old \
      > $L/e2e_${f}_old.log 2>&1)
    timeout 60 python3 -m cugraphllm $E2E --quant $f --stem e2e_${f}_new > $L/e2e_${f}_new.log 2>&1
    row $L/e2e_${f}_*.log
  done
  for f in int8 fp8; do  # the tensor-core tiles on every matrix, pipelined, swapped in
    timeout 60 python3 - > $L/e2e_${f}_tiles.log 2>&1 <<PY
import dataclasses
from cugraphllm.gpu import gemv_plan as g
from cugraphllm.cli import main
g.QUANT_PLANS["$f"] = dataclasses.replace(g.QUANT_PLANS["$f"], mma=1, mma_min_pairs=0)
main("$E2E --quant $f --stem e2e_${f}_tiles".split())
PY
    row $L/e2e_${f}_tiles.log
  done
  NCU="ncu --clock-control none -k regex:qgemv --launch-skip 2 --launch-count 5 --section WarpStateStats \
    --section SchedulerStats --section SpeedOfLight --section SourceCounters --print-details all"
  which ncu > /dev/null || export PATH=$PATH:/opt/nvidia/nsight-compute/2025.3.1
  timeout 60 $NCU python3 -m scripts.ncu_decode --format int4 --reps 2 > $L/ncu_int4.txt 2>&1
  grep -E "^  qgemv|Duration|DRAM Throughput" $L/ncu_int4.txt | head -24
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  timeout 200 python3 -m scripts.bench_server --model dummy:llama-2-7b --backend cuda --prompt-lens 10,500 \
    --tokenizer .device/shared/models/llama2-tokenizer/tokenizer.model --new-tokens 64 --reps 8 --warmup 3 \
    --variants default,legacy --out $L/bench/server_7b_seq.json > $L/server.log 2>&1
  grep -E "TTFT (median|less)" $L/server.log
  t quant 170 -n 8 tests/test_quant_gpu.py -k "mma or h2acc or h2_nopipe or f32acc"
  t engine 90 tests/test_pdl_gpu.py tests/test_quant_engine_gpu.py tests/test_server_gpu.py
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/final4.tgz" -C /tmp final4
