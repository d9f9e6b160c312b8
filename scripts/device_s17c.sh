#!/bin/bash
# Ninth session, benchmarks (nvidia-h200), everything A/B in this one call:
#  1) the samplers graph-timed (v3 = new, v2, v1 = old; scripts/bench_sampler.py);
#  2) 7B fp16 decode sampled (T 0.8, top-p 0.9) vs greedy end to end, v3 then v2 (scripts/sample_vs_greedy.py);
#  3) 7B fp8 prefill graphs with the fused activation quantization 0 / 1 / 2 interleaved (scripts/prefill_ab.py);
#  4) 7B fp8 bench TTFT at 10 / 128 / 500 with the fusion 0 and 2, two rounds (the x2gap protocol);
#  5) (optional, $S17_EXTRA) more lines appended below.
# Results in $OUT/s17c.tgz after each step.
source scripts/device_lib.sh s17c
T0=$(date +%s)
snap() { tar -czf "$OUT/s17c.tgz" -C /tmp s17c; echo "[at $(( $(date +%s) - T0 )) s]"; }
nvidia-smi -L
timeout 100 python3 -m scripts.bench_sampler --samplers new,v2,old --out $L/sampler.json > $L/sampler.log 2>&1
echo "=== sampler rc $?"; grep -v "^$" $L/sampler.log | tail -n 24; snap
for s in new v2; do
  CUGRAPHLLM_SAMPLER=$s timeout 110 python3 -m scripts.sample_vs_greedy --lengths 10,500 --rounds 3 \
    --out $L/sample_vs_greedy_$s.json > $L/svg_$s.log 2>&1
  echo "=== sample_vs_greedy $s rc $?"; tail -n 3 $L/svg_$s.log
done; snap
A=CUGRAPHLLM_FP8_FUSE_ACTQ
timeout 150 python3 -m scripts.prefill_ab --quant fp8 --buckets 128,512 --partial 12 --reps 5 --rounds 3 \
  --order "tune1;$A=0,tune1;$A=1,tune1;$A=2,tune1;$A=0,tune1;$A=1,tune1;$A=2" \
  --out $L/fuse_prefill_ab.json > $L/fuse_prefill_ab.log 2>&1
echo "=== fuse prefill_ab rc $?"; grep setting $L/fuse_prefill_ab.log; snap
for r in 1 2; do for m in 0 2; do
  CUGRAPHLLM_FP8_FUSE_ACTQ=$m timeout 60 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b \
    --quant fp8 --modes hybrid --lengths 10,128,500 --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 5 --no-plot \
    --out $L/bench --stem fp8_fuse${m}_r$r > $L/fp8_fuse${m}_r$r.log 2>&1
  echo "=== fp8 fuse=$m round $r rc $?: $(grep -E '^\| cugraphllm-hybrid \| (10|128|500) \| 64' $L/fp8_fuse${m}_r$r.log | cut -d'|' -f3,5,7 | tr '\n' ' ')"
done; done; snap
