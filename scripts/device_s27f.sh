#!/bin/bash
# Nineteenth session, call 6 (nvidia-h200): which part of the quantized GEMVs' prologue costs (new bench-only
# knockout bits: 8 the staging's second pass, 16 the |x| max pass; 1 the whole prologue): 13B and 70B int4 (the
# longest prologues, s27b), 7B int4 and int8.
source scripts/device_lib.sh s27f
LIMIT=400
nvidia-smi -L
ko() {  # ko NAME PRESET FORMATS [MATRICES]
  fits 70 "ko $1" || return
  timeout 120 python3 -m scripts.quant_knockout --preset $2 --formats $3 ${4:+--matrices $4} --kos 0,1,8,16,24 \
    --jobs 14 --out $L/ko_$1.json > $L/ko_$1.log 2>&1
  echo "=== ko $1 rc $?"; tail -n 6 $L/ko_$1.log; snap
}
ko 13b llama-2-13b int4
ko 70b llama-2-70b int4 wqkv+norm,w13+norm,w2+ss
ko 7b llama-2-7b int4,int8
echo "total $(( $(date +%s) - T0 )) s"
