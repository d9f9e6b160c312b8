#!/bin/bash
# Eleventh session, third call (nvidia-h200, < 9.5 minutes, quiet GPU), with the int4 cursor loop the default:
#  1) int4 tiles on the matrices below mma_min_pairs (bench_quant --sweep small): 7B wo / w2, 70B wqkv / wo / w2,
#     each beside the default plan (the half2 path there) in the same process;
#  2) 13B int4 decode at prompt 10 / 500 and 70B int4 at 10 / 128 (targets 2.3 and 11 ms/token);
#  3) where time is left, the same sweep on 13B's wo / w2.
source scripts/device_lib.sh s19c
T0=$(date +%s)
snap() { tar -czf "$OUT/s19c.tgz" -C /tmp s19c; echo "[at $(( $(date +%s) - T0 )) s]"; }
fits() { [ $(( $(date +%s) - T0 + $1 )) -le 560 ] || { echo "=== skipped ($2): would pass 560 s"; false; }; }
sw() {  # preset matrices secs
  fits $3 "sweep $1" || return
  timeout $3 python3 -m scripts.bench_quant --preset $1 --formats int4 --sweep small --no-table --matrices $2 \
    --out $L/sweep_small_$1.json > $L/sweep_$1.log 2>&1
  echo "=== sweep $1 rc $?"; grep "^sweep" $L/sweep_$1.log | sed 's/^sweep int4  //'
  snap
}
E2E="bench --backend cuda --modes hybrid --new-tokens 64 --reps 2 --warmup 1 --ttft-reps 3 --no-plot --out $L/bench --quant int4"
e2e() {  # preset lens secs
  fits $3 "e2e $1" || return
  timeout $3 python3 -m cugraphllm $E2E --preset $1 --lengths $2 --stem e2e_$1_int4 > $L/e2e_$1.log 2>&1
  echo "=== e2e $1 rc $?: $(grep -E '^\| cugraphllm-hybrid \| [0-9]+ \| 64' $L/e2e_$1.log | cut -d'|' -f3,7 | tr '\n' ' ')"
  snap
}
nvidia-smi -L
sw llama-2-7b wo+ss,w2+ss 110
sw llama-2-70b wqkv+norm,wo+ss,w2+ss 150
e2e llama-2-13b 10,500 80
e2e llama-2-70b 10,128 170
sw llama-2-13b wo+ss,w2+ss 100
echo "total $(( $(date +%s) - T0 )) s"
