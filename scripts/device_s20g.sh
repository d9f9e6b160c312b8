#!/bin/bash
# Twelfth session (2026-11-30), nvidia-h200, < 3 minutes: is 7B fp16 decode slower than in the eighth session (s20f:
# 3.54 / 3.59 ms/token at prompt 10 / 500 under the paper protocol vs 3.33 / 3.45 at bd71b24)? The tree of bd71b24
# (cugraphllm/ and kernels/, carried in .device/old) against today's, alternating new / old / old / new, one
# process each, prompt 10 / 500, 128 new tokens.
source scripts/device_lib.sh s20g
run() {  # tag dir
  (cd $2 && timeout 45 python3 -m cugraphllm bench --backend cuda --preset llama-2-7b --modes hybrid --new-tokens 128 \
     --reps 3 --warmup 1 --ttft-reps 5 --lengths 10,500 --no-plot --out $L/bench --stem fp16_$1_$(( $(date +%s) - T0 )) \
     > $L/$1_$(( $(date +%s) - T0 )).log 2>&1
   echo "=== $1 rc $?: $(grep -hE '^\| cugraphllm-hybrid \| [0-9]+ \| 128' $L/$1_*.log | tail -2 | cut -d'|' -f3,7,8 | tr '\n' ' ')")
}
run new $PWD; run old $PWD/.device/old; run old $PWD/.device/old; run new $PWD
tar -czf "$OUT/s20g.tgz" -C /tmp s20g; echo "total $(( $(date +%s) - T0 )) s"
