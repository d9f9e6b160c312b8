#!/bin/bash
# Twentieth session, call i (nvidia-h200): the int4 tile configs of 13B / 70B again under the tile-contiguous access
# pattern (knockout bit 64; --plan warps / ksplit with mma_shapes emptied): us per matrix, ko 0 / 64, one
# quant_knockout process per config
source scripts/device_lib.sh s28i
LIMIT=300
nvidia-smi -L
ko() {  # MODEL MATRICES WARPS,KSPLIT
  local f=$L/ko_$1_${3/,/_}_${2//[+,]/_}
  fits 40 "ko $*" && timeout 40 python3 -m scripts.quant_knockout --preset llama-2-$1 --formats int4 --matrices $2 \
    --kos 64 --plan mma_min_pairs=0,warps=${3%,*},ksplit=${3#*,} --jobs 14 --out $f.json > $f.log 2>&1
  echo "=== $1 $3: $(tail -n +2 $f.log | grep int4 | awk '{print $2, $NF}' | tr '\n' ' ')"
}
ko 13b wqkv+norm,w13+norm,wo+ss,w2+ss 16,8
ko 13b wqkv+norm,w13+norm,wo+ss,w2+ss 8,8
ko 13b wqkv+norm,w13+norm,wo+ss,w2+ss 16,4
ko 13b wqkv+norm,w13+norm,wo+ss,w2+ss 8,4
ko 13b wqkv+norm,w13+norm,wo+ss,w2+ss 16,2
ko 13b wqkv+norm,w13+norm,wo+ss,w2+ss 8,2
snap
ko 70b wqkv+norm,w13+norm 16,4
ko 70b wqkv+norm,w13+norm 8,4
ko 70b wqkv+norm,w13+norm 16,2
ko 70b wqkv+norm,w13+norm 8,2
ko 70b wqkv+norm,w13+norm 16,8
snap
timeout 60 python3 -m scripts.quant_knockout --preset llama-2-13b --formats int4 --kos 0,64 --jobs 14 \
  --out $L/ko_13b_default.json > $L/ko_13b_default.log 2>&1; tail -n 5 $L/ko_13b_default.log
timeout 60 python3 -m scripts.quant_knockout --preset llama-2-70b --formats int4 --kos 0,64 --jobs 14 \
  --out $L/ko_70b_default.json > $L/ko_70b_default.log 2>&1; tail -n 5 $L/ko_70b_default.log
snap
echo "total $(( $(date +%s) - T0 )) s"
