#!/bin/bash
# Twentieth session, call a (nvidia-h200): the int4 tiles (parked staging since s27g) against the half2 default on
# wo / w2 of 7B, 13B and 70B (bench_quant --sweep small), then the tile staging's parts on 13B / 7B (knockout bits 8
# whole second pass, 32 its shuffle trees) and QG_STAGEN 2 / 3 (the first half of the nineteenth session's prepared
# device_next_stage.sh; both removed since).
source scripts/device_lib.sh s28a
LIMIT=560
nvidia-smi -L
for m in 7b 13b 70b; do
  fits 150 "sweep $m" && timeout 150 python3 -m scripts.bench_quant --preset llama-2-$m --formats int4 --sweep small \
    --no-table --matrices wo+ss,w2+ss --out $L/sweep_small_$m.json > $L/sweep_$m.log 2>&1
  echo "=== sweep $m rc $?"; grep "^sweep" $L/sweep_$m.log | sed 's/^sweep int4  //'; snap
done
for m in 13b 7b; do
  fits 90 "ko $m" && timeout 90 python3 -m scripts.quant_knockout --preset llama-2-$m --formats int4 --kos 0,8,32 \
    --jobs 14 --out $L/ko_$m.json > $L/ko_$m.log 2>&1; echo "=== ko $m rc $?"; tail -n 5 $L/ko_$m.log
  for n in 2 3; do
    fits 80 "ko $m stagen $n" && CUGRAPHLLM_QG_STAGEN=$n timeout 80 python3 -m scripts.quant_knockout --preset \
      llama-2-$m --formats int4 --kos 0 --jobs 14 --out $L/ko_${m}_n$n.json > $L/ko_${m}_n$n.log 2>&1
    echo "=== ko $m stagen $n rc $?"; tail -n 5 $L/ko_${m}_n$n.log
  done; snap
done
echo "total $(( $(date +%s) - T0 )) s"
