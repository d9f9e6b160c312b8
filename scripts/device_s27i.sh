#!/bin/bash
# Nineteenth session, call 9 (nvidia-h200): QG_PARK's compile-time rule: the 70B int4 wo / w2 (unparked now) and
# 7B int4 / int8 matrices under the default, the quantized engine GPU tests.
source scripts/device_lib.sh s27i
LIMIT=200
nvidia-smi -L
timeout 60 python3 -m scripts.quant_knockout --preset llama-2-70b --formats int4 --matrices wo+ss,w2+ss --kos 0 \
  --jobs 14 --out $L/ko_70b.json > $L/ko_70b.log 2>&1; echo "=== ko 70b rc $?"; tail -n 2 $L/ko_70b.log
timeout 60 python3 -m scripts.quant_knockout --preset llama-2-7b --formats int4,int8 --kos 0 \
  --jobs 14 --out $L/ko_7b.json > $L/ko_7b.log 2>&1; echo "=== ko 7b rc $?"; tail -n 8 $L/ko_7b.log; snap
t quant_engine 80 -rfE --tb=short -n 6 tests/test_quant_engine_gpu.py; snap
echo "total $(( $(date +%s) - T0 )) s"
