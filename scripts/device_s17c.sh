#!/bin/bash
# Ninth session, call 3 (nvidia-h200-x2): 1) the two-GPU tests again after the stream fixes (all-reduce, TP);
# then benchmarks on GPU 0 with GPU 1 idle, each A/B inside this call:
#  2) the samplers graph-timed (v3 = new, v2, v1 = old; scripts/bench_sampler.py);
#  3) 7B fp16 decode sampled (T 0.8, top-p 0.9) vs greedy end to end, v3 (scripts/sample_vs_greedy.py);
#  4) 7B fp8 bench TTFT at 128 / 500 with the fused activation quantization off (0) and on (2), twice, alternating.
# Results in $OUT/s17c.tgz after each step.
source scripts/device_lib.sh s17c
T0=$(date +%s)
snap() { tar -czf "$OUT/s17c.tgz" -C /tmp s17c; echo "[at $(( $(date +%s) - T0 )) s]"; }
nvidia-smi -L
t peer 230 -rfE --tb=short tests/test_allreduce_lamport_gpu.py tests/test_allreduce_gpu.py tests/test_tp_gpu.py
snap
export CUDA_VISIBLE_DEVICES=0
timeout 80 python3 -m scripts.bench_sampler --samplers new,v2,old --out $L/sampler.json > $L/sampler.log 2>&1
echo "=== sampler rc $?"; grep -v "^$" $L/sampler.log | tail -n 24; snap
timeout 110 python3 -m scripts.sample_vs_greedy --lengths 10,500 --rounds 3 --out $L/sample_vs_greedy.json \
  > $L/svg.log 2>&1
echo "=== sample_vs_greedy rc $?"; tail -n 3 $L/svg.log; snap
for r in 1 2; do for m in 0 2; do
  CUGRAPHLLM_FP8_FUSE_ACTQ=$m timeout 45 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b \
    --quant fp8 --modes hybrid --lengths 128,500 --new-tokens 16 --reps 1 --warmup 1 --ttft-reps 10 --no-plot \
    --out $L/bench --stem fp8_fuse${m}_r$r > $L/fp8_fuse${m}_r$r.log 2>&1
  echo "=== fp8 fuse=$m round $r rc $?: $(grep -E '^\| cugraphllm-hybrid \| (128|500) \| 16' $L/fp8_fuse${m}_r$r.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
done; done; snap
