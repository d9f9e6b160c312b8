#!/bin/bash
# One nvidia-h200-x2 call (2026-11-30, fifth session, last): GPU 0 runs every gpu-marked test but TP's (6
# workers), then the 70B-shape quantized GEMV tests (marker big: the default plan, whose int4 tiles now start
# at 6144 row pairs); GPU 1 meanwhile proves the sharded-checkpoint path of issue 11 with a 13B folder
# (scripts/mem_13b.py: 26 GB of seeded fp16 shards written, loaded in a fresh process, peak host RSS). Then the
# TP tests on both GPUs.
source scripts/device_lib.sh final5
( export CUDA_VISIBLE_DEVICES=0
  t all 330 -n 6 tests --ignore=tests/test_tp_gpu.py --ignore=tests/test_allreduce_gpu.py
  t big 150 -n 6 -m big tests/test_quant_gpu.py ) > $L/gpu0.txt 2>&1 &
( export CUDA_VISIBLE_DEVICES=1
  timeout 420 python3 -m scripts.mem_13b --out /tmp/llama13b --json $L/bench/mem_13b.json > $L/mem_13b.log 2>&1
  echo "=== mem_13b exit $?"; tail -n 12 $L/mem_13b.log ) > $L/gpu1.txt 2>&1 &
wait
cat $L/gpu0.txt $L/gpu1.txt
t tp 100 tests/test_tp_gpu.py tests/test_allreduce_gpu.py
tar -czf "$OUT/final5.tgz" -C /tmp final5
