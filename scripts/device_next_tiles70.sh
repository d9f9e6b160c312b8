#!/bin/bash
# Prepared for the next session (nvidia-h200), not yet run. The nineteenth session found the 70B int4 half2 GEMVs
# (wo, w2: on the half2 path since the eleventh session's sweep, s19c) bound by their products: w2's products alone
# take 40.1 us against a 27.4 us read of its bytes (ring_probe, s27c), and the tiles' products cost ~0.6 instructions
# a weight against ~1.6. With the tiles' prologue now reading the activation once (QG_PARK), sweep the 70B wo / w2
# tile configs again beside today's default (bench_quant --sweep small), then 70B int4 decode (target 11 ms/token)
# and the knockouts of the best tile config (quant_knockout --plan).
source scripts/device_lib.sh next_tiles70
LIMIT=540
nvidia-smi -L
fits 160 "sweep" && timeout 160 python3 -m scripts.bench_quant --preset llama-2-70b --formats int4 --sweep small \
  --no-table --matrices wo+ss,w2+ss --out $L/sweep_small_70b.json > $L/sweep_70b.log 2>&1
echo "=== sweep rc $?"; grep "^sweep" $L/sweep_70b.log | sed 's/^sweep int4  //'; snap
fits 120 "ko tiles" && timeout 120 python3 -m scripts.quant_knockout --preset llama-2-70b --formats int4 \
  --matrices wo+ss,w2+ss --kos 0,1,2,7 --plan mma_min_pairs=0,warps=16,ksplit=8 --jobs 14 --out $L/ko_tiles.json \
  > $L/ko_tiles.log 2>&1; echo "=== ko tiles rc $?"; tail -n 3 $L/ko_tiles.log; snap
env_bench e2e_70b_int4 70b_int4 200 CUGRAPHLLM_QG_PARK=1 --preset llama-2-70b --quant int4 --prompt-lens 10,128
snap
echo "total $(( $(date +%s) - T0 )) s"
