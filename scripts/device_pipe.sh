#!/bin/bash
# The quantized GEMVs with address cursors and pipelined loads (QuantPlan.pipe / mma_unroll), fourth session.
# GPU 0: bench_quant --sweep pipe for int4, then 7B decode A/B per format, one process each, the previous main
# (.device/old: `git archive` of the commit before the change) against this tree. GPU 1: the quantized GEMV
# tests under the three tile paths (mma, mma_u2, mma_nopipe), then the fp32 / half2 paths, the PDL and engine tests.
source scripts/device_lib.sh pipe
E2E="bench --backend cuda --preset llama-2-7b --modes hybrid --prompt-lens 10,500 --new-tokens 64 --reps 2 \
  --warmup 1 --ttft-reps 3 --no-plot --out $L/bench"
( export CUDA_VISIBLE_DEVICES=0
  timeout 130 python3 -m scripts.bench_quant --formats int4 --sweep pipe --no-table \
    --out $L/bench/quant_gemv_sweep_pipe_int4.json > $L/sweep4.log 2>&1; grep "^sweep" $L/sweep4.log
  for f in int4 int8 fp8; do
    (cd .device/old && timeout 60 python3 -m cugraphllm $E2E --quant $f --stem e2e_${f}_old > $L/e2e_${f}_old.log 2>&1)
    timeout 60 python3 -m cugraphllm $E2E --quant $f --stem e2e_${f}_new > $L/e2e_${f}_new.log 2>&1
    grep -H -E "^\| cugraphllm-hybrid \| (10|500) \| 64" $L/e2e_${f}_old.log $L/e2e_${f}_new.log
  done
) > $L/gpu0.txt 2>&1 &
P0=$!
( export CUDA_VISIBLE_DEVICES=1
  t quant_mma 260 tests/test_quant_gpu.py -k "mma"
  t quant_rest 150 tests/test_quant_gpu.py -k "f32acc or h2acc" -x
  t engine 100 tests/test_pdl_gpu.py tests/test_quant_engine_gpu.py
) > $L/gpu1.txt 2>&1 &
P1=$!
wait $P0 $P1
cat $L/gpu0.txt $L/gpu1.txt
tar -czf "$OUT/pipe.tgz" -C /tmp pipe
