#!/bin/bash
# Nineteenth session, call 2 (nvidia-h200): the GPU tests of the serial split-sum default (its park fallback at
# 384 rows included), then where the int4 decode GEMVs of the 13B / 70B shapes lose their time against the read of
# their bytes (quant_knockout --preset: prologue / products / epilogue knocked out; loads alone), and whether more
# loads in flight a lane (unroll 4) change it.
source scripts/device_lib.sh s27b
LIMIT=540
nvidia-smi -L
t quant_default 150 -rfE --tb=short -n 4 tests/test_quant_prefill_gpu.py tests/test_quant_engine_gpu.py -k "int4 or int8"; snap
for p in llama-2-70b llama-2-13b; do
  fits 120 "ko $p" && timeout 150 python3 -m scripts.quant_knockout --preset $p --formats int4 --jobs 12 \
    --out $L/ko_$p.json > $L/ko_$p.log 2>&1; echo "=== ko $p rc $?"; tail -n 5 $L/ko_$p.log; snap
done
for u in 4 1; do
  fits 100 "ko unroll $u" && timeout 120 python3 -m scripts.quant_knockout --preset llama-2-70b --formats int4 \
    --kos 0,7 --plan unroll=$u --jobs 12 --out $L/ko_70b_u$u.json > $L/ko_70b_u$u.log 2>&1
  echo "=== ko 70b unroll $u rc $?"; tail -n 5 $L/ko_70b_u$u.log; snap
done
echo "total $(( $(date +%s) - T0 )) s"
